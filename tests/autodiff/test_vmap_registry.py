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


def case(make: Callable, grad: bool = True, **attrs: Any) -> Case:
    return Case(make, attrs, grad)


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

    for dt, make in (("float64", f64(3, 4)), ("int64", ints(3, 4)), ("bool", boolean(3, 4))):
        try:
            opdef.infer_type((TensorType(dtype=as_dtype(dt), shape=(3, 4)),) * n, opdef.fill_attrs({}, op))
        except Exception:
            continue
        cases = [case(ins(*[make] * n))]
        if n == 2:  # broadcasting: the second operand has fewer axes
            small = {"float64": f64(4), "int64": ints(4), "bool": boolean(4)}[dt]
            cases.append(case(ins(make, small)))
        return cases
    return None


def _cases(op: str) -> list[Case]:
    return CASES.get(op) or _default_case(op) or []


RULED = sorted(op for op, d in REGISTRY.items() if d.batch is not None and d.batch is not LOOP)
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


def _check_vmapped(graph: irf.Graph, examples: list[dict], in_axes: list, no_scan: bool, what: str) -> None:
    size = len(examples)
    names = graph.input_names
    feeds = {}
    for nm, d in zip(names, in_axes):
        feeds[nm] = examples[0][nm] if d is None else np.stack([e[nm] for e in examples], axis=d)
    loop_examples = [{nm: (examples[0][nm] if d is None else e[nm]) for nm, d in zip(names, in_axes)} for e in examples]
    bg = vmap_graph(graph, in_axes, size)
    bg.verify()
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
        _check_vmapped(graph, examples, in_axes, op not in SCAN_OK, op)


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
        for v in gg.inputs:
            if v.name not in e:  # a cotangent
                e[v.name] = rng.standard_normal(tuple(v.type.shape)).astype(v.type.dtype.numpy)
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
