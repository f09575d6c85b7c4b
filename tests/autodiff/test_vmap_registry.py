"""Every batching rule against a Python loop of the unbatched op, stacked with NumPy.

For each op with a rule (and each case in ``CASES``), a one-node graph is vmapped with
``vmap_graph`` over several batch placements (each input alone at its leading axis, each
input alone at its last axis, all inputs at once at different axes); the NumPy interpreter's
result must equal running the unbatched graph once per example and stacking (float64). The
op's VJP graph is then vmapped the same way (every input batched, and only the cotangent
batched: the jacobian case) and checked against its own loop.

Adding an op: plain ops whose inputs are tensors of one shape (float, else int, else bool)
need nothing; otherwise add ``CASES["op"] = [case(...), ...]`` with per-example inputs and
attrs. ``SCAN_OK`` lists ops whose rule may legitimately emit a scan (control flow).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest

import irflow as irf
from irflow.autodiff import vjp
from irflow.autodiff.vmap_transform import vmap_graph
from irflow.errors import IrflowError
from irflow.executors.numpy import Interpreter
from irflow.ir.dtypes import as_dtype
from irflow.ops.registry import LOOP, REGISTRY


@dataclass
class Case:
    make: Callable[[np.random.Generator], list]  # per-example inputs (arrays, or None for omitted)
    attrs: dict = field(default_factory=dict)
    grad: bool = True  # also check the VJP graph under vmap
    loop_inputs: tuple = ()  # inputs whose batching legitimately runs the op in a loop (a shape tensor)


def case(make: Callable, grad: bool = True, loop_inputs: tuple = (), **attrs: Any) -> Case:
    return Case(make, attrs, grad, loop_inputs)


def f64(*shape: int, positive: bool = False) -> Callable:
    def make(rng):
        a = rng.standard_normal(shape)
        return np.abs(a) + 0.5 if positive else a
    return make


def ins(*makers: Callable) -> Callable:
    return lambda rng: [m(rng) if m is not None else None for m in makers]


def boolean(*shape):
    return lambda rng: rng.random(shape) > 0.5


def ints(*shape, low=0, high=5):
    return lambda rng: rng.integers(low, high, shape).astype(np.int64)


_RED = [dict(axes=None, keepdims=False), dict(axes=(1,), keepdims=False), dict(axes=(0, 2), keepdims=True),
        dict(axes=(-1,), keepdims=False)]

CASES: dict[str, list[Case]] = {
    "cast": [case(ins(f64(3, 4)), dtype=as_dtype("float32"), grad=False), case(ins(f64(2, 3)), dtype=as_dtype("int64"), grad=False)],
    "clip": [case(ins(f64(3, 4)), min=-0.5, max=0.7)],
    "where": [case(ins(boolean(3, 4), f64(3, 4), f64(4))), case(ins(boolean(4), f64(3, 4), f64(3, 1)))],
    "relu_grad": [case(ins(f64(3, 4), f64(3, 4)))],
    "pow": [case(ins(f64(3, 4, positive=True), f64(3, 4)))],
    "log": [case(ins(f64(3, 4, positive=True)))],
    "sqrt": [case(ins(f64(3, 4, positive=True)))],
    "rsqrt": [case(ins(f64(3, 4, positive=True)))],
    "log1p": [case(ins(f64(3, 4, positive=True)))],
    "asin": [case(lambda rng: [rng.uniform(-0.9, 0.9, (3, 4))])],
    "acos": [case(lambda rng: [rng.uniform(-0.9, 0.9, (3, 4))])],
    "mod": [case(ins(f64(3, 4), f64(3, 4, positive=True)), grad=False)],
    "div": [case(ins(f64(3, 4), f64(4, positive=True)))],
    "bit_shift_left": [case(lambda rng: [rng.integers(0, 8, (3, 4)).astype(np.uint8), rng.integers(0, 3, (4,)).astype(np.uint8)])],
    "bit_shift_right": [case(lambda rng: [rng.integers(0, 200, (3, 4)).astype(np.uint8), rng.integers(0, 3, (4,)).astype(np.uint8)])],
    **{op: [case(ins(f64(2, 3, 4)), **a) for a in _RED]
       for op in ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "logsumexp")},
    "argmax": [case(ins(f64(2, 3, 4)), axis=1, keepdims=False), case(ins(f64(3, 4)), axis=-1, keepdims=True)],
    "argmin": [case(ins(f64(2, 3, 4)), axis=0, keepdims=False)],
    "cumsum": [case(ins(f64(3, 4)), axis=1, exclusive=False, reverse=False), case(ins(f64(2, 3, 4)), axis=0, exclusive=True, reverse=True)],
    "matmul": [case(ins(f64(3, 4), f64(4, 2))), case(ins(f64(4), f64(4, 2))), case(ins(f64(3, 4), f64(4))),
               case(ins(f64(4), f64(4))), case(ins(f64(2, 3, 4), f64(4, 5))), case(ins(f64(3, 4), f64(2, 4, 5))),
               case(ins(f64(2, 1, 3, 4), f64(5, 4, 2)))],
    "einsum": [case(ins(f64(3, 4), f64(4, 2)), equation="ij,jk->ik"), case(ins(f64(3, 3)), equation="ii->i"),
               case(ins(f64(2, 3), f64(3), f64(2)), equation="ij,j,i->"), case(ins(f64(3, 4)), equation="ij->ji")],
}



def _graph(name: str, in_types: list, fn: Callable) -> irf.Graph:
    """A small closed graph for control-flow attrs: fn(*symbolic inputs) -> outputs."""
    b = irf.GraphBuilder(name)
    xs = [b.input(f"{name}_in{i}", dt, shape) for i, (dt, shape) in enumerate(in_types)]
    with b:
        outs = fn(*xs)
        b.output(*(outs if isinstance(outs, tuple) else (outs,)))
    return b.build(verify=True)


_F3 = ("float64", (3,))
_F2 = ("float64", (2,))
_then = _graph("then", [_F3, _F3], lambda a, b: (a * b, irf.reduce_sum(a) + 1.0))
_else = _graph("else", [_F3, _F3], lambda a, b: (a - b, irf.reduce_sum(b) * 2.0))
_body = _graph("body", [_F2, _F2, _F2], lambda c, h, x: (irf.tanh(h * c + x), h * x))
_wcond = _graph("wcond", [("float64", ()), _F2], lambda lim, v: irf.reduce_sum(v) < lim)
_wbody = _graph("wbody", [("float64", ()), _F2], lambda lim, v: v * 1.5 + 0.1)
_called = _graph("called", [_F3, _F3], lambda x, y: (irf.tanh(x) * y, irf.exp(x)))
_fwd = _graph("fwd", [_F3], lambda x: x * x)
_bwd = _graph("bwd", [_F3, _F3], lambda x, ct: ct * 2.0 * x)

CASES.update({
    "cond": [case(lambda rng: [np.array(rng.random() > 0.5), rng.standard_normal(3), rng.standard_normal(3)],
                  then_branch=_then, else_branch=_else)],
    "scan": [case(ins(f64(2), f64(2), f64(4, 2)), body=_body, num_consts=1, num_carry=1, length=None, reverse=False),
             case(ins(f64(2), f64(2), f64(3, 2)), body=_body, num_consts=1, num_carry=1, length=None, reverse=True)],
    "while_loop": [case(lambda rng: [np.array(rng.uniform(2, 6)), np.abs(rng.standard_normal(2)) + 0.1],
                        cond_graph=_wcond, body_graph=_wbody, num_consts=1, max_iterations=None, grad=False),
                   case(lambda rng: [np.array(rng.uniform(2, 6)), np.abs(rng.standard_normal(2)) + 0.1],
                        cond_graph=_wcond, body_graph=_wbody, num_consts=1, max_iterations=8)],
    "call": [case(ins(f64(3), f64(3)), graph=_called)],
    "custom_call": [case(ins(f64(3)), fwd=_fwd, bwd=_bwd)],
})

# -- the shape, indexing, nn, conv and extra families ----------------------------------------------

CASES.update({
    "identity": [case(ins(f64(3, 4)))],
    "reshape": [case(ins(f64(2, 3, 4)), shape=(6, 4)), case(ins(f64(2, 3, 4)), shape=(-1, 2)),
                case(ins(f64(2, 3)), shape=(3, 1, 2)), case(ins(f64(1, 1)), shape=())],
    "reshape_like": [case(ins(f64(2, 6), f64(3, 4))), case(ins(f64(6), f64(2, 3)))],
    "expand_dims": [case(ins(f64(2, 3)), axes=(0,)), case(ins(f64(2, 3)), axes=(1, 3)), case(ins(f64(2, 3)), axes=(-1,)),
                    case(ins(f64(3)), axes=(0, 2))],
    "squeeze": [case(ins(f64(1, 3, 1))), case(ins(f64(1, 3, 1)), axes=(2,)), case(ins(f64(2, 1, 3)), axes=(-2,))],
    "transpose": [case(ins(f64(2, 3, 4))), case(ins(f64(2, 3, 4)), perm=(1, 2, 0)), case(ins(f64(2, 3)), perm=(0, 1))],
    "broadcast_to": [case(ins(f64(3, 1)), shape=(2, 3, 4)), case(ins(f64(4)), shape=(3, 4)), case(ins(f64(1)), shape=(2,))],
    "broadcast_like": [case(ins(f64(3, 1), f64(2, 3, 4))), case(ins(f64(4), f64(3, 4)))],
    "sum_to_like": [case(ins(f64(3, 4), f64(1, 4)), axes=(0,)), case(ins(f64(2, 3, 4), f64(2, 1, 1)), axes=(1, 2))],
    "concat": [case(ins(f64(2, 3), f64(1, 3)), axis=0), case(ins(f64(2, 3), f64(2, 2), f64(2, 1)), axis=-1),
               case(ins(f64(3)), axis=0)],
    "split": [case(ins(f64(4, 3)), sizes=(1, 3), num=None, axis=0), case(ins(f64(2, 6)), sizes=None, num=3, axis=-1)],
    "split_like": [case(ins(f64(5, 2), f64(2, 2), f64(3, 2)), axis=0), case(ins(f64(2, 4), f64(2, 1), f64(2, 3)), axis=1)],
    "stack": [case(ins(f64(2, 3), f64(2, 3)), axis=0), case(ins(f64(2, 3), f64(2, 3), f64(2, 3)), axis=2),
              case(ins(f64(3)), axis=-1)],
    "tile": [case(ins(f64(2, 3)), reps=(2, 1)), case(ins(f64(2, 3)), reps=(1, 3)), case(ins(f64(3)), reps=(0,))],
    "flip": [case(ins(f64(2, 3))), case(ins(f64(2, 3, 4)), axes=(0, 2)), case(ins(f64(2, 3)), axes=(-1,))],
    "slice": [case(ins(f64(5, 4)), starts=(1,), ends=(4,), axes=None, steps=None),
              case(ins(f64(5, 4)), starts=(-1, 0), ends=(-2**63, 4), axes=(0, 1), steps=(-2, 3)),
              case(ins(f64(2, 6)), starts=(1,), ends=(2**63 - 1,), axes=(-1,), steps=(2,))],
    "gather": [case(ins(f64(5, 3), ints(4, low=-5, high=5)), axis=0), case(ins(f64(2, 5, 3), ints(2, 2, high=5)), axis=1),
               case(ins(f64(3, 4), ints(high=4)), axis=-1),
               case(lambda rng: [rng.standard_normal((3, 4)), rng.integers(0, 3, (2,)).astype(np.int32)], axis=0)],
    "gather_nd": [case(ins(f64(3, 4, 2), ints(5, 2, high=3))), case(ins(f64(3, 4), ints(2, 2, 1, high=3))),
                  case(ins(f64(4, 3), ints(2, 2, low=-3, high=3)))],
    "scatter_add": [case(ins(f64(4, 3), ints(5, 1, high=4), f64(5, 3))), case(ins(f64(3, 4), ints(2, 2, high=3), f64(2)))],
    "one_hot": [case(ins(ints(3, low=-4, high=6)), depth=5, axis=-1, dtype=as_dtype("float64")),
                case(ins(ints(2, 3, high=4)), depth=4, axis=0, dtype=as_dtype("float64")),
                case(ins(ints(2, 3, high=4)), depth=4, axis=1, dtype=as_dtype("int64"))],
    "pad": [case(ins(f64(3, 4)), pads=(1, 0, 2, 3), mode="constant", value=1.5),
            case(ins(f64(3, 4)), pads=(2, 1, 1, 2), mode="reflect", value=0.0),
            case(ins(f64(3, 4)), pads=(0, 2, 1, 0), mode="edge", value=0.0)],
    "shape_of": [case(ins(f64(2, 3))), case(ins(f64()))],
    "range": [case(lambda rng: [np.int64(1), np.int64(7), np.int64(2)], start=None, limit=None, delta=None, dtype=None)],
    "full_like": [case(ins(f64(2, 3)), value=2.5, dtype=None), case(ins(f64(3)), value=1, dtype=as_dtype("int64"))],
    "gather_elements": [case(ins(f64(3, 4), ints(2, 4, high=3)), axis=0), case(ins(f64(3, 4), ints(3, 2, low=-4, high=4)), axis=-1)],
    "scatter_elements": [case(ins(f64(3, 4), ints(2, 4, high=3), f64(2, 4)), axis=0, reduction="add"),
                         case(lambda rng: [rng.standard_normal((3, 4)), np.stack([rng.permutation(4)[:2] for _ in range(3)]),
                                           rng.standard_normal((3, 2))], axis=1, reduction="none")],
    "scatter_nd": [case(lambda rng: [rng.standard_normal((4, 3)), rng.permutation(4)[:2].reshape(2, 1),
                                     rng.standard_normal((2, 3))], reduction="none"),
                   case(ins(f64(3, 4), ints(3, 2, high=3), f64(3)), reduction="max", grad=False)],
    "topk": [case(ins(f64(3, 5)), k=2, axis=-1, largest=True, sorted=True), case(ins(f64(4, 3)), k=3, axis=0, largest=False, sorted=True)],
    "reshape_dynamic": [case(lambda rng: [rng.standard_normal((2, 6)), np.array([0, 3, -1])], dims=(2, 3, 2), loop_inputs=(1,)),
                        case(lambda rng: [rng.standard_normal((2, 3)), np.array([6])], dims=(6,), loop_inputs=(1,)),
                        case(lambda rng: [rng.standard_normal((0, 4)), np.array([2, 0, 3])], dims=(2, 0, 3), allowzero=True,
                             loop_inputs=(1,))],
    "expand_dynamic": [case(lambda rng: [rng.standard_normal((3, 1)), np.array([2, 3, 4])], dims=(2, 3, 4), loop_inputs=(1,)),
                       case(lambda rng: [rng.standard_normal((4,)), np.array([1])], dims=(4,), loop_inputs=(1,))],
    "full_dynamic": [case(lambda rng: [np.array([2, 3])], value=np.array([1.5]), dims=(2, 3))],
    "slice_dynamic": [case(lambda rng: [rng.standard_normal((4, 5)), np.array([3, 0]), np.array([-9, 4]), np.array([0, -1]),
                                        np.array([-1, 2])], loop_inputs=(1, 2, 3, 4)),
                      case(lambda rng: [rng.standard_normal((4, 5)), np.array([1]), np.array([3])], loop_inputs=(1, 2))],
    "pad_dynamic": [case(lambda rng: [rng.standard_normal((3, 4)), np.array([1, 0, 2, 1]), np.array(0.5)],
                         mode="constant", loop_inputs=(1, 2)),
                    case(lambda rng: [rng.standard_normal((3, 4)), np.array([2, 1]), None, np.array([-1])],
                         mode="wrap", loop_inputs=(1, 2)),  # positions among the given inputs
                    case(lambda rng: [rng.standard_normal((3, 4)), np.array([1, 2, 0, 1])], mode="reflect", loop_inputs=(1,))],
    "split_dynamic": [case(lambda rng: [rng.standard_normal((3, 5)), np.array([2, 0, 3])], axis=-1, num=3, loop_inputs=(1,))],
    "tile_dynamic": [case(lambda rng: [rng.standard_normal((2, 3)), np.array([2, 1])], loop_inputs=(1,))],
    "topk_dynamic": [case(lambda rng: [rng.standard_normal((3, 5)), np.array([2])], axis=-1, largest=True, sorted=True,
                          loop_inputs=(1,))],
    "one_hot_dynamic": [case(lambda rng: [rng.integers(-3, 4, (2, 3)), np.array(4)], axis=1, dtype=as_dtype("float32"),
                             loop_inputs=(1,))],
    "softmax": [case(ins(f64(3, 4)), axis=-1), case(ins(f64(2, 3, 4)), axis=0)],
    "log_softmax": [case(ins(f64(3, 4)), axis=-1), case(ins(f64(2, 3, 4)), axis=1)],
    "sparse_softmax_cross_entropy": [case(ins(f64(3, 4), ints(3, high=4))), case(ins(f64(2, 3, 5), ints(2, 3, high=5))),
                                     case(ins(f64(4), ints(high=4)))],
    "layer_norm": [case(ins(f64(3, 4), f64(4), f64(4)), axis=-1, epsilon=1e-5),
                   case(ins(f64(2, 3, 4), f64(3, 4)), axis=1, epsilon=1e-3),
                   case(ins(f64(2, 3, 4)), axis=0, epsilon=1e-5),
                   case(ins(f64(2, 3), None, f64(3)), axis=1, epsilon=1e-5)],
    "batch_norm": [case(ins(f64(2, 3, 4), f64(3), f64(3), f64(3), f64(3, positive=True)), epsilon=1e-5),
                   case(ins(f64(2, 3), f64(3), f64(3), f64(3), f64(3, positive=True)), epsilon=1e-3),
                   case(ins(f64(2, 2, 3, 3), f64(2), f64(2), f64(2), f64(2, positive=True)), epsilon=1e-5)],
    "dropout": [case(ins(f64(3, 4)), rate=0.5, seed=3, training=True), case(ins(f64(2, 3, 4)), rate=0.25, seed=0, training=True),
                case(ins(f64(3, 4)), rate=0.5, seed=1, training=False)],
    "conv2d": [case(ins(f64(2, 3, 5, 5), f64(4, 3, 3, 3), f64(4)), strides=(1, 1), padding=(1, 1, 1, 1), dilations=(1, 1), groups=1),
               case(ins(f64(2, 4, 5, 4), f64(6, 2, 2, 3)), strides=(2, 1), padding=(0, 1, 1, 0), dilations=(1, 1), groups=2),
               case(ins(f64(1, 2, 6, 5), f64(2, 2, 3, 2), f64(2)), strides=(2, 2), padding="same", dilations=(2, 1), groups=1)],
    "conv_transpose2d": [case(ins(f64(2, 4, 3, 3), f64(4, 3, 3, 3), f64(3)), strides=(2, 2), padding=(1, 1, 1, 1),
                              output_padding=(1, 0), dilations=(1, 1), groups=1),
                         case(ins(f64(1, 4, 3, 2), f64(4, 2, 2, 2), f64(4)), strides=(1, 2), padding=(0, 0, 0, 1),
                              output_padding=(0, 1), dilations=(1, 1), groups=2)],
    "conv2d_weight_grad": [case(ins(f64(2, 3, 5, 5), f64(2, 4, 5, 5)), kernel_size=(3, 3), strides=(1, 1),
                                padding=(1, 1, 1, 1), dilations=(1, 1), groups=1),
                           case(ins(f64(2, 4, 5, 5), f64(2, 6, 2, 2)), kernel_size=(3, 2), strides=(2, 2),
                                padding=(0, 0, 0, 0), dilations=(1, 1), groups=2)],
    "max_pool2d": [case(ins(f64(2, 3, 5, 5)), kernel_size=(2, 2), strides=(2, 2), padding=(0, 0, 0, 0)),
                   case(ins(f64(1, 2, 5, 4)), kernel_size=(3, 3), strides=(2, 1), padding=(1, 1, 1, 1))],
    "max_pool2d_grad": [case(ins(f64(2, 3, 4, 4), f64(2, 3, 2, 2)), kernel_size=(2, 2), strides=(2, 2), padding=(0, 0, 0, 0))],
    "max_pool2d_pick": [case(ins(f64(2, 3, 4, 4), f64(2, 3, 4, 4)), kernel_size=(2, 2), strides=(2, 2), padding=(0, 0, 0, 0))],
    "avg_pool2d": [case(ins(f64(2, 3, 5, 5)), kernel_size=(3, 3), strides=(2, 2), padding=(1, 1, 1, 1))],
    "avg_pool2d_grad": [case(ins(f64(2, 3, 3, 3), f64(2, 3, 5, 5)), kernel_size=(3, 3), strides=(2, 2), padding=(1, 1, 1, 1))],
    "conv": [case(ins(f64(2, 3, 7), f64(4, 3, 3), f64(4)), strides=(2,), pads=(1, 0), dilations=(1,), groups=1),
             case(ins(f64(2, 4, 6), f64(6, 2, 3)), strides=(1,), pads=(1, 1), dilations=(2,), groups=2),
             case(ins(f64(1, 2, 4, 3, 3), f64(2, 2, 2, 2, 2), f64(2)), strides=(1, 1, 1), pads=(0,) * 6, dilations=(1, 1, 1),
                  groups=1)],
    "conv_transpose": [case(ins(f64(2, 4, 5), f64(4, 3, 3), f64(3)), strides=(2,), pads=(1, 1), output_padding=(1,),
                            dilations=(1,), groups=1),
                       case(ins(f64(1, 4, 3, 3, 2), f64(4, 1, 2, 2, 2)), strides=(1, 1, 1), pads=(0,) * 6,
                            output_padding=(0, 0, 0), dilations=(1, 1, 1), groups=2)],
    "conv_weight_grad": [case(ins(f64(2, 3, 7), f64(2, 4, 3)), kernel_size=(3,), strides=(2,), pads=(1, 0), dilations=(1,), groups=1),
                         case(ins(f64(1, 4, 3, 3, 3), f64(1, 6, 2, 2, 2)), kernel_size=(2, 2, 2), strides=(1, 1, 1),
                              pads=(0,) * 6, dilations=(1, 1, 1), groups=2)],
    "max_pool": [case(ins(f64(2, 3, 6)), kernel_size=(2,), strides=(2,), pads=(0, 0), dilations=(1,)),
                 case(ins(f64(1, 2, 4, 4, 3)), kernel_size=(2, 2, 2), strides=(2, 2, 1), pads=(0, 0, 0, 0, 0, 1), dilations=(1, 1, 1))],
    "max_pool_grad": [case(ins(f64(2, 3, 6), f64(2, 3, 3)), kernel_size=(2,), strides=(2,), pads=(0, 0), dilations=(1,))],
    "max_pool_pick": [case(ins(f64(2, 3, 6), f64(2, 3, 6)), kernel_size=(2,), strides=(2,), pads=(0, 0), dilations=(1,))],
    "max_pool_indices": [case(ins(f64(2, 3, 6)), kernel_size=(2,), strides=(2,), pads=(0, 0), dilations=(1,))],
    "avg_pool": [case(ins(f64(2, 3, 7)), kernel_size=(3,), strides=(2,), pads=(1, 1), dilations=(1,))],
    "avg_pool_grad": [case(ins(f64(2, 3, 4), f64(2, 3, 7)), kernel_size=(3,), strides=(2,), pads=(1, 1), dilations=(1,))],
    "resize": [case(ins(f64(2, 3, 4)), axes=(1, 2), out_sizes=(5, 8), scales=(5 / 3, 2.0), mode="linear"),
               case(ins(f64(3, 4)), axes=(0,), out_sizes=(7,), scales=(7 / 3,), mode="cubic",
                    coordinate_transformation_mode="align_corners"),
               case(ins(f64(2, 1, 4, 4)), axes=(3, 2), out_sizes=(2, 8), scales=(0.5, 2.0), mode="nearest",
                    coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
    # run-time scales / sizes / roi: one value for every example (a batched one loops over the batch;
    # loop_inputs count the given inputs only);
    # no VJP check here: the cotangent's resized dims are unknown in the type (tests/ops/test_resize_dynamic.py)
    "resize_dynamic": [
        case(lambda rng: [rng.standard_normal((2, 3, 4)), None, np.array([1.5, 2.0], np.float32)], grad=False,
             loop_inputs=(1,), mode="linear", axes=(1, 2)),
        case(lambda rng: [rng.standard_normal((3, 5)), np.array([0.1, 0.2, 0.9, 0.7]), None, np.array([4, 3])],
             grad=False, loop_inputs=(1, 2), mode="cubic", coordinate_transformation_mode="tf_crop_and_resize"),
        case(lambda rng: [rng.standard_normal((2, 9)), None, np.array([0.5], np.float32)], grad=False,
             loop_inputs=(1,), mode="linear", antialias=1, axes=(1,))],
    "resize_dynamic_grad": [
        case(lambda rng: [rng.standard_normal((2, 6, 8)), rng.standard_normal((2, 3, 4)), None,
                          np.array([2.0, 2.0], np.float32)], loop_inputs=(2,), mode="linear", axes=(1, 2)),
        case(lambda rng: [rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), np.array([0.1, 0.2, 0.9, 0.7]),
                          None, np.array([4, 3])], loop_inputs=(2, 3), mode="cubic",
             coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=2.0)],
})


def _seg_cases(op: str) -> list[Case]:
    """Segment reductions: ids leave segments empty (num_segments 5 > the 4 ids drawn), int32 and
    int64 ids, a num_segments input (batched: per-example lengths, so that placement loops; its VJP graph has
    a cotangent of unknown length, which this test cannot draw, so no VJP check there)."""
    return [case(ins(f64(6, 3), ints(6, high=4)), num_segments=5),
            case(ins(f64(5), ints(5, high=3)), num_segments=3),
            case(lambda rng: [rng.standard_normal((4, 2, 2)), rng.integers(0, 3, 4).astype(np.int32)], num_segments=4),
            case(lambda rng: [rng.standard_normal((5, 2)), rng.integers(0, 3, 5), np.int64(4)], num_segments=None, grad=False,
                 loop_inputs=(2,))]


CASES.update({op: _seg_cases(op) for op in ("segment_sum", "segment_max", "segment_min")})


def _with_zeros(*shape):
    def make(rng):
        a = rng.standard_normal(shape)
        a[rng.random(shape) < 0.3] = 0.0
        return a
    return make


def _fixed(values, dtype=np.int64):
    return lambda rng: np.array(values, dtype)


# Run-time axes (irflow/ops/dynamic_axes.py): the axes input is the same array in every example
# (a batched copy of it still loops, each example its own axes). VJP graphs are vmapped only where
# the op's type is fully known (this test draws cotangents from the static type).
CASES.update({
    "reduce_dynamic": [case(ins(f64(2, 3, 4), _fixed([1])), kind="sum", keepdims=True, noop_with_empty_axes=False,
                            grad=False, loop_inputs=(1,)),
                       case(ins(f64(2, 3, 4), _fixed([-1, 0])), kind="max", keepdims=False, noop_with_empty_axes=False,
                            grad=False, loop_inputs=(1,)),
                       case(ins(f64(3, 2), _fixed([1, 0])), kind="prod", keepdims=False, noop_with_empty_axes=False,
                            loop_inputs=(1,)),
                       case(ins(f64(3, 2), _fixed([])), kind="mean", keepdims=True, noop_with_empty_axes=False,
                            loop_inputs=(1,)),
                       case(ins(f64(3, 2), _fixed([])), kind="min", keepdims=False, noop_with_empty_axes=True,
                            loop_inputs=(1,))],
    "squeeze_dynamic": [case(ins(f64(2, 1, 3, 1), _fixed([1, -1])), loop_inputs=(1,))],
    "unsqueeze_dynamic": [case(ins(f64(2, 3), _fixed([0, -1])), grad=False, loop_inputs=(1,))],
    "cumsum_dynamic": [case(ins(f64(3, 4), _fixed(1)), exclusive=False, reverse=False, loop_inputs=(1,)),
                       case(ins(f64(2, 3, 4), _fixed(-1, np.int32)), exclusive=True, reverse=True, loop_inputs=(1,))],
    "cumprod_dynamic": [case(ins(_with_zeros(3, 4), _fixed(1)), exclusive=False, reverse=False, loop_inputs=(1,)),
                        case(ins(_with_zeros(2, 3, 4), _fixed(-3)), exclusive=True, reverse=True, loop_inputs=(1,))],
})

def _unpool_indices(rng):
    """MaxPool-style flat indices of a (1, 2, 2, 2) input into its (1, 2, 4, 4) unpooled shape:
    one position per 2x2 window."""
    idx = np.zeros((1, 2, 2, 2), np.int64)
    for c in range(2):
        for i in range(2):
            for j in range(2):
                di, dj = rng.integers(0, 2, 2)
                idx[0, c, i, j] = (c * 4 + 2 * i + di) * 4 + 2 * j + dj
    return idx


def _kept(n, k):
    """A bool condition keeping k of n entries (the same count in every example, so the loop a
    data-dependent op runs in can stack its results)."""
    return lambda rng: rng.permutation(np.arange(n) < k)


# Data-dependent output shapes: cases whose every example keeps the same count. Their VJP graphs
# take cotangents of unknown length, which this test cannot draw: no VJP check here (the ops'
# own tests check the gradients).
CASES.update({
    "nonzero": [case(lambda rng: [_kept(12, 5)(rng).reshape(3, 4)], grad=False), case(ins(f64(5)), grad=False)],
    "unique": [case(ins(f64(6)), axis=None, sorted=True, grad=False), case(ins(f64(3, 4)), axis=1, sorted=False, grad=False)],
    "compress": [case(ins(f64(4, 3), _kept(4, 2)), axis=0, grad=False, loop_inputs=(1,)),
                 case(ins(f64(2, 5), _kept(5, 3)), axis=-1, grad=False, loop_inputs=(1,)),
                 case(ins(f64(2, 3), _kept(6, 4)), axis=None, grad=False, loop_inputs=(0, 1))],
    "non_max_suppression": [case(lambda rng: [rng.random((1, 5, 4)).astype(np.float32), rng.random((1, 2, 5)).astype(np.float32),
                                              np.array([3], np.int64), np.array([1.0], np.float32)], center_point_box=0)],
    "reverse_sequence": [case(lambda rng: [rng.standard_normal((3, 4, 2)), rng.integers(0, 4, 4)], batch_axis=1, time_axis=0),
                         case(lambda rng: [rng.standard_normal((2, 5)), rng.integers(0, 6, 2)], batch_axis=0, time_axis=1)],
    "max_unpool": [case(lambda rng: [rng.standard_normal((1, 2, 2, 2)), _unpool_indices(rng)], kernel_shape=(2, 2),
                        pads=(0, 0, 0, 0), strides=(2, 2)),
                   case(lambda rng: [rng.standard_normal((1, 2, 2, 2)), _unpool_indices(rng)], kernel_shape=(2, 2),
                        pads=(0, 0, 0, 0), strides=(2, 2), out_shape=(1, 2, 5, 6))],
    "det": [case(ins(f64(3, 3))), case(ins(f64(2, 2, 2))), case(ins(f64(1, 1)))],
})

SCAN_OK = {"scan", "while_loop", "cond"}


def _default_case(op: str) -> Case | None:
    """Plain inputs of one shape, in the first dtype the op's type rule accepts."""
    opdef = REGISTRY[op]
    if opdef.min_inputs != opdef.max_inputs or not 1 <= opdef.min_inputs <= 3:
        return None
    if any(a.default is not None and repr(a.default) == "REQUIRED" for a in opdef.attrs.values()):
        return None
    n = opdef.min_inputs
    from irflow.ir.types import TensorType

    # a random example shape per op (seeded by its name), rank 1 to 3
    shape_rng = np.random.default_rng(zlib.crc32(op.encode()))
    shape = tuple(int(d) for d in shape_rng.integers(1, 5, int(shape_rng.integers(1, 4))))
    makers = {"float64": f64, "int64": ints, "bool": boolean}
    for dt in ("float64", "int64", "bool"):
        try:
            opdef.infer_type((TensorType(dtype=as_dtype(dt), shape=shape),) * n, opdef.fill_attrs({}, op))
        except Exception:
            continue
        make = makers[dt](*shape)
        cases = [case(ins(*[make] * n))]
        if n == 2:  # broadcasting: the second operand has fewer axes
            cases.append(case(ins(make, makers[dt](*shape[1:]))))
            cases.append(case(ins(makers[dt](*shape[1:]), make)))
        return cases
    return None


def _cases(op: str) -> list[Case]:
    return CASES.get(op) or _default_case(op) or []


RULED = sorted(op for op, d in REGISTRY.items() if d.batch is not None)  # LOOP ops too: the loop must be right
PARAMS = [pytest.param(op, i, id=f"{op}-{i}") for op in RULED for i, _ in enumerate(_cases(op))]


def _one_node_graph(op: str, inputs: list, attrs: dict) -> irf.Graph:
    b = irf.GraphBuilder(f"{op}_example")
    syms = [None if a is None else b.input(f"in{i}", as_dtype(a.dtype), a.shape) for i, a in enumerate(inputs)]
    outs = b.add_node(op, syms, dict(attrs))
    b.output(*(outs if isinstance(outs, tuple) else (outs,)))
    return b.build(verify=True)


def _placements(ranks: list) -> list[list]:
    """in_axes per input (None = unbatched): each alone leading, each alone trailing, all mixed."""
    n = len(ranks)
    out = []
    for i in range(n):
        out.append([0 if j == i else None for j in range(n)])
        if ranks[i] > 0:
            out.append([ranks[i] if j == i else None for j in range(n)])
    if n > 1:
        out.append([min(j, r) for j, r in enumerate(ranks)])
    return out


def _check_vmapped(graph: irf.Graph, examples: list[dict], in_axes: list, no_scan: bool, what: str,
                   symbolic: bool = False) -> None:
    size = "batch" if symbolic else len(examples)
    names = graph.input_names
    feeds = {}
    for nm, d in zip(names, in_axes):
        feeds[nm] = examples[0][nm] if d is None else np.stack([e[nm] for e in examples], axis=d)
    loop_examples = [{nm: (examples[0][nm] if d is None else e[nm]) for nm, d in zip(names, in_axes)} for e in examples]
    bg = vmap_graph(graph, in_axes, size)
    bg.verify()
    if symbolic:
        assert all("batch" in v.type.shape for v, d in zip(bg.inputs, in_axes) if d is not None)
    if no_scan:
        scans = [n.name for n in bg.nodes if n.op == "scan"]
        assert not scans, f"{what}: the rule fell back to a loop ({scans})"
    got = Interpreter(bg).run(feeds)
    ref_interp = Interpreter(graph)
    per = [ref_interp.run(e) for e in loop_examples]
    for v, bv in zip(graph.outputs, bg.outputs):
        want = np.stack([np.asarray(p[v.name]) for p in per], axis=0)
        have = np.asarray(got[bv.name])
        assert have.dtype == want.dtype, f"{what}: dtype {have.dtype} != {want.dtype}"
        np.testing.assert_allclose(have, want, rtol=1e-10, atol=1e-12, equal_nan=True, err_msg=f"{what} in_axes={in_axes}")


@pytest.mark.parametrize("op,k", PARAMS)
def test_batching_rule_equals_loop(op, k):
    c = _cases(op)[k]
    rng = np.random.default_rng(zlib.crc32(f"{op}-{k}".encode()))
    size = int(rng.integers(2, 5))
    examples_in = [c.make(rng) for _ in range(size)]
    graph = _one_node_graph(op, examples_in[0], c.attrs)
    examples = [{f"in{i}": a for i, a in enumerate(e) if a is not None} for e in examples_in]
    ranks = [np.ndim(a) for a in examples_in[0] if a is not None]
    for in_axes in _placements(ranks):
        looping = REGISTRY[op].batch is LOOP or any(in_axes[i] is not None for i in c.loop_inputs)
        _check_vmapped(graph, examples, in_axes, op not in SCAN_OK and not looping, op)


# The batch size is a symbol when a traced function's batch dim is one: rules must then read it
# at run time (or loop). Checked for the families whose rules have such paths.
SYMBOLIC_FAMILIES = {"shape", "nn", "extra", "segment", "dynamic_axes", "dynamic_shape"}
SYMBOLIC_PARAMS = [p for p in PARAMS if REGISTRY[p.values[0]].family in SYMBOLIC_FAMILIES]


@pytest.mark.parametrize("op,k", SYMBOLIC_PARAMS)
def test_batching_rule_with_a_symbolic_batch_size(op, k):
    c = _cases(op)[k]
    rng = np.random.default_rng(zlib.crc32(f"sym-{op}-{k}".encode()))
    examples_in = [c.make(rng) for _ in range(3)]
    graph = _one_node_graph(op, examples_in[0], c.attrs)
    examples = [{f"in{i}": a for i, a in enumerate(e) if a is not None} for e in examples_in]
    ranks = [np.ndim(a) for a in examples_in[0] if a is not None]
    for in_axes in _placements(ranks):
        _check_vmapped(graph, examples, in_axes, False, op, symbolic=True)


GRAD_PARAMS = [p for p in PARAMS if REGISTRY[p.values[0]].vjp is not None and _cases(p.values[0])[p.values[1]].grad]


@pytest.mark.parametrize("op,k", GRAD_PARAMS)
def test_vjp_rule_under_vmap_equals_loop(op, k):
    c = _cases(op)[k]
    rng = np.random.default_rng(zlib.crc32(f"vjp-{op}-{k}".encode()))
    size = int(rng.integers(2, 4))
    first = c.make(rng)
    graph = _one_node_graph(op, first, c.attrs)
    wrt = [v.name for v in graph.inputs if v.type.dtype.is_float]
    if not wrt or not any(v.type.dtype.is_float for v in graph.outputs):
        pytest.skip("no float input or output")
    gg = vjp(graph, wrt=wrt, seed="input")
    examples = []
    for _ in range(size):
        arrs = c.make(rng)
        e = {f"in{i}": a for i, a in enumerate(arrs) if a is not None}
        forward = None
        for v in gg.inputs:
            if v.name not in e:  # a cotangent
                shape = tuple(v.type.shape)
                if None in shape:  # an output whose dims depend on a shape argument read at run time
                    forward = forward or Interpreter(graph).run(e)
                    shape = forward[v.name.removeprefix("ct_")].shape
                e[v.name] = rng.standard_normal(shape).astype(v.type.dtype.numpy)
        examples.append(e)
    every = [0] * len(gg.inputs)
    only_ct = [None if v.name in graph.input_names else 0 for v in gg.inputs]
    for in_axes in (every, only_ct):
        _check_vmapped(gg, examples, in_axes, False, f"vjp of {op}")


def test_a_wrong_rule_is_reported_naming_the_op():
    from irflow.ops.registry import get_op

    opdef = get_op("exp")
    saved = opdef.batch
    opdef.batch = lambda inputs, dims, size: (inputs[0], None)  # claims unbatched: wrong
    try:
        g = _one_node_graph("exp", [np.zeros(3)], {})
        with pytest.raises(IrflowError, match="batching rule of 'exp'"):
            vmap_graph(g, [0], 4)
    finally:
        opdef.batch = saved


MY_FAMILIES = {"elementwise", "reduction", "linalg", "special", "control"}


def test_every_op_of_the_vectorized_families_has_a_rule():
    missing = sorted(op for op, d in REGISTRY.items() if d.family in MY_FAMILIES and d.batch is None)
    assert not missing, f"ops without a batching rule: {missing}"


RULE_MODULES = ("shape", "shape_join", "shape_index", "shape_create", "nn", "conv", "conv_nd", "resize", "resize_dynamic",
                "extra", "dynamic_axes", "data_dependent", "onnx_extra", "dynamic_shape")


def test_every_op_of_the_shape_nn_conv_extra_modules_has_a_rule_or_declares_the_loop():
    """Ops declared in those modules (found in their source) have a rule or ``defbatch(op, LOOP)``;
    ops without inputs are never batched (vmap copies them) and need none."""
    import importlib
    import inspect
    import re

    declared = set()
    for name in RULE_MODULES:
        src = inspect.getsource(importlib.import_module(f"irflow.ops.{name}"))
        declared |= set(re.findall(r'defop\(\s*"(\w+)"', src))
        declared |= set(re.findall(r'(?:unary_op|binary_op)\(\s*"(\w+)"', src))
    assert {"conv2d", "reshape", "gather", "topk", "dropout", "stack"} <= declared
    missing = sorted(op for op in declared if REGISTRY[op].batch is None and REGISTRY[op].max_inputs != 0)
    assert not missing, f"ops without a batching rule: {missing}"
