"""Running a gradient graph on a batch of cotangent seeds at once (for jacobians).

A gradient graph is linear in its seed, so the jacobian of y with respect to x is the gradient
graph applied to every one-hot seed. ``run_batched`` runs the graph once with the seed input
given a leading batch axis of size N = y.size: values that depend on the seed carry that axis,
the rest (forward values) do not, and each node touching a batched value uses a small batching
rule (elementwise ops: align ranks so NumPy broadcasting keeps the batch axis in front;
reductions, softmax, cumsum, flip, transposes, expand_dims, squeeze: shift the axes by one;
matmul: both operands of rank >= 2; reshapes and broadcasts: prepend the batch axis). A node with no rule raises ``Unbatchable`` and the caller falls back to one
gradient pass per seed.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from irflow.errors import IrflowError
from irflow.executors.numpy.kernels import KERNELS
from irflow.ops.registry import get_op


class Unbatchable(Exception):
    """A node of the graph has no batching rule (internal: triggers the per-seed fallback)."""


def _norm(axes, rank: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(rank))
    if isinstance(axes, int):
        axes = (axes,)
    return tuple(a % rank if rank else 0 for a in axes)


def _align(a: np.ndarray, rank: int) -> np.ndarray:
    """A batched array (N, *s) reshaped to rank ``rank`` + 1 with ones after the batch axis."""
    extra = rank - (a.ndim - 1)
    return a.reshape((a.shape[0],) + (1,) * extra + a.shape[1:]) if extra > 0 else a


def _elementwise(node, args, flags, in_ranks, out_rank, n):
    args = [_align(a, out_rank) if f else a for a, f in zip(args, flags)]
    return KERNELS[node.op](*args, **node.attrs)


def _same_shape_elementwise(node, args, flags, in_ranks, out_rank, n):
    """Elementwise ops whose kernel takes equal shapes only (relu_grad): broadcast the unbatched
    inputs to the batched shape first."""
    args = [_align(a, out_rank) if f else a for a, f in zip(args, flags)]
    full = np.broadcast_shapes(*(a.shape for a in args))
    return KERNELS[node.op](*(np.broadcast_to(a, full) for a in args), **node.attrs)


def _reduction(node, args, flags, in_ranks, out_rank, n):
    if any(flags[1:]) or not flags[0]:
        raise Unbatchable(node.op)
    attrs = dict(node.attrs)
    key = "axes" if "axes" in attrs else ("axis" if "axis" in attrs else None)
    if key is None:
        raise Unbatchable(node.op)
    ax = _norm(attrs[key], in_ranks[0])
    attrs[key] = tuple(a + 1 for a in ax) if key == "axes" else ax[0] + 1
    return KERNELS[node.op](*args, **attrs)


def _transpose(node, args, flags, in_ranks, out_rank, n):
    perm = node.attrs.get("perm")
    r = in_ranks[0]
    perm = tuple(range(r))[::-1] if perm is None else perm
    return np.transpose(args[0], (0,) + tuple(p + 1 for p in perm))


def _expand_dims(node, args, flags, in_ranks, out_rank, n):
    ax = _norm(node.attrs["axes"], out_rank)
    return np.expand_dims(args[0], tuple(a + 1 for a in ax))


def _squeeze(node, args, flags, in_ranks, out_rank, n):
    axes = node.attrs.get("axes")
    if axes is None:
        ax = tuple(i for i, d in enumerate(args[0].shape[1:]) if d == 1)
    else:
        ax = _norm(axes, in_ranks[0])
    return np.squeeze(args[0], axis=tuple(a + 1 for a in ax))


def _broadcast_like(node, args, flags, in_ranks, out_rank, n):
    if flags[1]:
        raise Unbatchable(node.op)
    like = args[1].shape
    return np.broadcast_to(_align(args[0], len(like)), (n,) + tuple(like))


def _matmul(node, args, flags, in_ranks, out_rank, n):
    if min(in_ranks) < 2:
        raise Unbatchable(node.op)
    a, b = (_align(x, out_rank) if f else x for x, f in zip(args, flags))
    return np.matmul(a, b)


def _reshape(node, args, flags, in_ranks, out_rank, n):
    if any(flags[1:]):
        raise Unbatchable(node.op)
    shape = node.attrs.get("shape")
    if shape is None or any(d == 0 for d in shape):
        raise Unbatchable(node.op)
    return args[0].reshape((n,) + tuple(shape))


def _passthrough(node, args, flags, in_ranks, out_rank, n):
    return args[0]


def _axis_op(node, args, flags, in_ranks, out_rank, n):
    """Single-tensor ops with an ``axis`` (int) or ``axes`` (ints or None = all) attr."""
    if any(flags[1:]) or not flags[0]:
        raise Unbatchable(node.op)
    attrs = dict(node.attrs)
    if "axis" in attrs:
        attrs["axis"] = _norm(attrs["axis"], in_ranks[0])[0] + 1
    else:
        attrs["axes"] = tuple(a + 1 for a in _norm(attrs["axes"], in_ranks[0]))
    return KERNELS[node.op](*args, **attrs)


def _broadcast_to(node, args, flags, in_ranks, out_rank, n):
    shape = tuple(node.attrs["shape"])
    return np.broadcast_to(_align(args[0], len(shape)), (n,) + shape)


def _reshape_like(node, args, flags, in_ranks, out_rank, n):
    if flags[1]:
        raise Unbatchable(node.op)
    return args[0].reshape((n,) + args[1].shape)


RULES: dict[str, Callable] = {
    "transpose": _transpose,
    "expand_dims": _expand_dims,
    "squeeze": _squeeze,
    "broadcast_like": _broadcast_like,
    "matmul": _matmul,
    "reshape": _reshape,
    "identity": _passthrough,
    "softmax": _axis_op,
    "log_softmax": _axis_op,
    "cumsum": _axis_op,
    "flip": _axis_op,
    "broadcast_to": _broadcast_to,
    "reshape_like": _reshape_like,
    "stop_gradient": _passthrough,
    "relu_grad": _same_shape_elementwise,
}


def _rule(op: str) -> Callable | None:
    rule = RULES.get(op)
    if rule is not None:
        return rule
    family = get_op(op).family
    if family == "elementwise":
        return _elementwise
    if family == "reduction":
        return _reduction
    return None


def run_batched(graph, feeds: dict[str, Any], batched: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Run ``graph`` with the inputs in ``batched`` carrying a leading axis of size ``n``.

    Returns every output with a leading axis of size ``n`` (broadcast when it does not depend
    on the batched inputs). Raises Unbatchable for a node with no batching rule.
    """
    types = graph.value_types()
    env: dict[str, Any] = dict(graph.initializers)
    env.update(feeds)
    env.update(batched)
    env[""] = None
    is_b = set(batched)
    for node in graph.nodes:
        flags = [i in is_b for i in node.inputs]
        args = [env[i] for i in node.inputs]
        if not any(flags):
            res = KERNELS[node.op](*args, **node.attrs)
        else:
            rule = _rule(node.op)
            if rule is None or len(node.outputs) != 1:
                raise Unbatchable(node.op)
            in_ranks = [types[i].rank if i else 0 for i in node.inputs]
            out_t = node.outputs[0].type
            res = np.asarray(rule(node, args, flags, in_ranks, out_t.rank, n))
            want = (n,) + tuple(out_t.shape)
            if res.ndim != len(want) or any(isinstance(w, int) and w != g for w, g in zip(want, res.shape)):
                raise Unbatchable(node.op)
            if res.dtype != out_t.dtype.numpy:
                res = res.astype(out_t.dtype.numpy)  # NumPy scalar promotion; the IR type is the truth
            is_b.add(node.outputs[0].name)
        env.update(zip([v.name for v in node.outputs], res if len(node.outputs) > 1 else (res,)))
    out = {}
    for v in graph.outputs:
        a = np.asarray(env[v.name])
        out[v.name] = a if v.name in is_b else np.broadcast_to(a, (n,) + a.shape)
    return out


def jacobian_from_graph(graph, feeds: dict, outs: list, seed_name: str | None, target: Any, srcs: list) -> list:
    """Jacobians of ``target`` w.r.t. each source from a gradient graph whose seed is ``seed_name``.

    ``outs`` names each source's gradient output (None: unconnected, returned as None).
    """
    from irflow.autodiff.tape import _VarRead, execute
    from irflow.frontends.eager import RECORDERS, Tensor

    tshape = tuple(target.shape)
    n = int(np.prod(tshape, dtype=np.int64))
    dtype = target.numpy().dtype
    if seed_name is None or all(o is None for o in outs):
        return [None] * len(srcs)
    seeds = np.eye(n, dtype=dtype).reshape((n,) + tshape)
    if not RECORDERS:
        arrays = {}
        for k, v in feeds.items():
            if type(v) is _VarRead:
                v = v.value
            arrays[k] = v._value if type(v) is Tensor else (v._eager_value() if hasattr(v, "_eager_value") else np.asarray(v))
        try:
            values = run_batched(graph, arrays, {seed_name: seeds}, n)
        except Unbatchable:
            values = None
        if values is not None:
            return [None if o is None else Tensor(np.ascontiguousarray(values[o]).reshape(tshape + values[o].shape[1:]))
                    for o in outs]
    # Fallback: one pass per seed, through bind, so an outer tape can differentiate the result.
    from irflow.ops.dispatch import bind

    acc: list = [None] * len(srcs)
    for i in range(n):
        f = dict(feeds)
        f[seed_name] = Tensor(seeds[i])
        values = execute(graph, f)
        for k, o in enumerate(outs):
            if o is None:
                continue
            g = values[o]
            rank = len(np.shape(g._value if type(g) is Tensor else g))
            onehot = seeds[i].reshape(tshape + (1,) * rank)
            term = bind("mul", onehot, bind("expand_dims", g, axes=tuple(range(len(tshape))))) if tshape else bind("mul", onehot, g)
            acc[k] = term if acc[k] is None else bind("add", acc[k], term)
    if n == 0:
        raise IrflowError("jacobian of an empty target")
    return acc
