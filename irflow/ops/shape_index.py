"""Indexing ops: slice, pad (its adjoint), gather, gather_nd, scatter_add and one_hot.

Semantics follow ONNX so that the export is one node each:
- ``slice``: ONNX Slice (starts, ends, axes, steps; negative bounds count from the end; bounds
  are clamped; ``END`` / ``BEGIN_REVERSED`` mean "to the end" going forward / backward).
- ``gather``: ONNX Gather along one axis (= ``np.take``); negative indices count from the end.
- ``gather_nd``: ONNX GatherND with batch_dims=0 (= ``tf.gather_nd``).
- ``scatter_add``: ONNX ScatterND with reduction="add" (= ``tf.tensor_scatter_nd_add``):
  ``out = data.copy(); out[tuple(indices[..., :k])] += updates`` with repeated indices adding
  up. It is the exact adjoint of ``gather_nd``, which is why this form was chosen over
  ScatterElements: the gradients of gather and gather_nd are one scatter_add each, and the
  gradient of scatter_add's updates is one gather_nd.
- ``one_hot``: ONNX OneHot with off/on values 0/1: negative indices count from the end
  (-depth..-1), indices out of range give an all-zero row.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from irflow.errors import DTypeError, IRValidationError, ShapeError, UnsupportedOpError
from irflow.ir.dtypes import DType, as_dtype
from irflow.ir.types import TensorType
from irflow.ops.common import bind, scatter_back
from irflow.ops.batching import (insert_axes, materialize, move_axis, rank_of, shift_axes, shift_axis, to_front,
                                 with_batch_index)
from irflow.ops.extension import HANDLERS, handler
from irflow.ops.registry import Attr, defbatch, defop, defvjp
from irflow.ops.shape import BEGIN_REVERSED, END, as_int_tuple, check_fill_value, inverse_perm, norm_axis, same_dim

INDEX_DTYPES = (DType.int32, DType.int64)
# A bound at least this large means "to the end" when the dim is symbolic (ONNX models often
# use INT32_MAX for that); it only affects the inferred type, never the computed values.
_OPEN = 2**31 - 1


# -- slice ---------------------------------------------------------------------------------------

def slice_params(rank: int, starts, ends, axes, steps) -> list[tuple[int, int, int, int]]:
    """(axis, start, end, step) per sliced axis, checked; ShapeError naming slice otherwise."""
    n = len(starts)
    axes = tuple(range(n)) if axes is None else axes
    steps = (1,) * n if steps is None else steps
    if not (len(ends) == len(axes) == len(steps) == n):
        raise ShapeError(f"slice: starts {starts}, ends {ends}, axes {axes} and steps {steps} differ in length")
    ax = [norm_axis(a, rank, "slice") for a in axes]
    if len(set(ax)) != len(ax):
        raise ShapeError(f"slice: repeated axis in {axes}")
    if 0 in steps:
        raise ShapeError(f"slice: steps {steps} must not be 0")
    return list(zip(ax, starts, ends, steps))


def slice_bounds(d: int, start: int, end: int, step: int) -> tuple[int, int, int]:
    """ONNX Slice's clamping of one axis of size ``d``: (first index, end, number of elements)."""
    if start < 0:
        start += d
    if end < 0:
        end += d
    if step > 0:
        start, end = min(max(start, 0), d), min(max(end, 0), d)
        n = max(0, -(-(end - start) // step))
    else:
        start, end = min(max(start, 0), d - 1), min(max(end, -1), d - 1)
        n = max(0, -(-(start - end) // -step))
    return start, end, n


def _from_first(start: int) -> bool:
    """Does a forward slice starting at ``start`` start at index 0 whatever the size?"""
    return start == 0 or start <= -_OPEN


def _whole_axis(start: int, end: int, step: int) -> bool:
    """Does this slice keep a whole axis of any size (forward, or reversed when step is -1)?"""
    if step == 1:
        return _from_first(start) and end >= _OPEN
    if step == -1:
        return (start == -1 or start >= _OPEN) and end <= -_OPEN
    return False


def _slice_type(x: TensorType, starts, ends, axes, steps) -> TensorType:
    shape = list(x.shape)
    for a, s, e, st in slice_params(x.rank, starts, ends, axes, steps):
        d = x.shape[a]
        if type(d) is int:
            shape[a] = slice_bounds(d, s, e, st)[2]
        elif not _whole_axis(s, e, st):
            shape[a] = None
    return TensorType(dtype=x.dtype, shape=tuple(shape))


def _slice_vjp(g, x, *, out, starts, ends, axes, steps):
    params = slice_params(x.type.rank, starts, ends, axes, steps)
    for i, (a, s, e, st) in enumerate(params):
        d = x.type.shape[a]
        if type(d) is int:
            first, _, n = slice_bounds(d, s, e, st)
            if n == 0:
                return bind("zeros_like", x)
            if st < 0:  # g holds x[first], x[first + st], ...: reverse it to ascending order
                g = bind("flip", g, axes=(a,))
                first, st = first + (n - 1) * st, -st
            g = _place_strided(g, a, first, st, n, d)
        elif _whole_axis(s, e, st):
            if st == -1:
                g = bind("flip", g, axes=(a,))
        elif st == 1 and (e >= _OPEN or _from_first(s) or (s >= 0) == (e >= 0)):
            # A symbolic axis: g sits between zero blocks as long as x[:s] and x[tail:] are at
            # run time, cut from x with the slicing of the axes not handled yet. (With bounds
            # of mixed signs the block lengths would depend on the size, hence the condition.)
            rest = params[i + 1:]
            tail = END if e >= _OPEN else (e if _from_first(s) else max(s, e))
            blocks = [g]
            if not _from_first(s):
                blocks.insert(0, _zeros_of_slice(x, rest, a, 0, s))
            if tail != END:
                blocks.append(_zeros_of_slice(x, rest, a, tail, END))
            g = bind("concat", *blocks, axis=a)
        else:
            raise UnsupportedOpError(
                f"slice: no gradient for starts={starts}, ends={ends}, steps={steps} on axis {a} of symbolic "
                f"size {d!r} in {x.type.shape}: use step 1 with bounds of one sign, or a static size"
            )
    return g


def _zeros_of_slice(x, rest, axis: int, start: int, end: int):
    params = [(axis, start, end, 1)] + list(rest)
    piece = bind("slice", x, starts=tuple(p[1] for p in params), ends=tuple(p[2] for p in params),
                 axes=tuple(p[0] for p in params), steps=tuple(p[3] for p in params))
    return bind("zeros_like", piece)


def _place_strided(g, a: int, first: int, step: int, n: int, d: int):
    """Put the n entries of g along axis a at first, first + step, ... in a zero axis of size d."""
    def pad_axis(t, axis: int, before: int, after: int):
        rank = len(t.shape)
        pads = tuple(before if i == axis else 0 for i in range(rank)) + tuple(after if i == axis else 0 for i in range(rank))
        return bind("pad", t, pads=pads, mode="constant", value=0.0)

    span = (n - 1) * step + 1
    if step > 1:
        # interleave step - 1 zeros after each entry: (.., n, ..) -> (.., n, step, ..) -> (.., n * step, ..)
        t = pad_axis(bind("expand_dims", g, axes=(a + 1,)), a + 1, 0, step - 1)
        t = bind("reshape_like", t, pad_axis(g, a, 0, n * step - n))
        g = bind("slice", t, starts=(0,), ends=(span,), axes=(a,), steps=None)
    if first == 0 and first + span == d:
        return g
    return pad_axis(g, a, first, d - first - span)


defop("slice", _slice_type, family="shape", attrs={
    "starts": Attr("ints"),
    "ends": Attr("ints"),
    "axes": Attr("ints", default=None, optional=True),
    "steps": Attr("ints", default=None, optional=True),
})
defvjp("slice", _slice_vjp)


@defbatch("slice")
def _slice_batch(inputs, dims, size, *, starts, ends, axes, steps):
    x, d = inputs[0], dims[0]
    axes = tuple(range(len(starts))) if axes is None else axes
    return bind("slice", x, starts=starts, ends=ends, axes=shift_axes(axes, rank_of(x, d), d, "slice")[1],
                steps=steps), d


def slice(x, starts: Sequence[int | None], ends: Sequence[int | None], axes: Sequence[int] | None = None,
          steps: Sequence[int] | None = None):
    """``x[start:end:step]`` on the given ``axes`` (default: the first len(starts) axes), as
    ONNX Slice: negative bounds count from the end, bounds are clamped, None means open.

    >>> irf.slice(irf.tensor(np.arange(10.0)), [1], [None], steps=[3]).numpy()
    array([1., 4., 7.])
    """
    n = len(starts)
    steps_t = (1,) * n if steps is None else as_int_tuple(steps, "slice: steps")
    if len(steps_t) != n or len(ends) != n:
        raise ShapeError(f"slice: starts {tuple(starts)}, ends {tuple(ends)} and steps {steps} differ in length")
    starts_t = tuple((0 if st > 0 else END) if s is None else int(s) for s, st in zip(starts, steps_t))
    ends_t = tuple((END if st > 0 else BEGIN_REVERSED) if e is None else int(e) for e, st in zip(ends, steps_t))
    return bind("slice", x, starts=starts_t, ends=ends_t,
                axes=None if axes is None else as_int_tuple(axes, "slice: axes"),
                steps=None if steps is None else steps_t)


# -- gather / gather_nd / scatter_add ------------------------------------------------------------------

def _as_indices(indices: Any) -> Any:
    """Python ints and lists of ints become int64 arrays (as NumPy takes them); tensors stay."""
    if isinstance(indices, (int, list, tuple)) and not isinstance(indices, bool):
        return np.asarray(indices, dtype=np.int64)
    return indices


def _check_indices(op: str, indices: TensorType) -> None:
    if indices.dtype not in INDEX_DTYPES:
        raise DTypeError(f"{op}: indices must be int32 or int64, got {indices.dtype.value}")


def _gather_type(x: TensorType, indices: TensorType, axis: int) -> TensorType:
    _check_indices("gather", indices)
    if x.rank == 0:
        raise ShapeError("gather: cannot gather from a scalar")
    a = norm_axis(axis, x.rank, "gather")
    return TensorType(dtype=x.dtype, shape=x.shape[:a] + indices.shape + x.shape[a + 1:])


def _gather_vjp(g, x, indices, *, out, axis):
    a = axis % x.type.rank
    idx = bind("expand_dims", indices, axes=(indices.type.rank,))
    if a == 0:
        return bind("scatter_add", bind("zeros_like", x), idx, g), None
    # scatter_add scatters along leading axes: move the gathered axis of x (and the index axes
    # of g) to the front, scatter, move back.
    q, r = indices.type.rank, x.type.rank
    perm_x = (a,) + tuple(range(a)) + tuple(range(a + 1, r))
    perm_g = tuple(range(a, a + q)) + tuple(range(a)) + tuple(range(a + q, q + r - 1))
    zeros = bind("zeros_like", bind("transpose", x, perm=perm_x))
    grad = bind("scatter_add", zeros, idx, bind("transpose", g, perm=perm_g))
    return bind("transpose", grad, perm=inverse_perm(perm_x, r)), None


defop("gather", _gather_type, inputs=2, attrs={"axis": Attr("int", default=0)}, family="shape")
defvjp("gather", _gather_vjp)


@defbatch("gather")
def _gather_batch(inputs, dims, size, *, axis):
    (x, idx), (dx, di) = inputs, dims
    q = rank_of(idx, di)
    if di is None:  # one index set: gather along the shifted axis; the batch axis moves past the index axes
        a = shift_axis(axis, rank_of(x, dx), dx, "gather")
        return bind("gather", x, idx, axis=a), (dx if dx < a else dx + q - 1)
    if dx is None:  # one table, batched indices: the batch axis is one of the index axes
        a = norm_axis(axis, x.type.rank, "gather")
        return bind("gather", x, idx, axis=a), a + di
    # both batched: a gather_nd of (b, index) pairs from x with the batch and the gathered axis in front
    r = rank_of(x, dx)
    a = norm_axis(axis, r, "gather")
    xf = move_axis(to_front(x, dx), a + 1, 1)  # (B, x_a, other axes of x in order)
    nd = with_batch_index(bind("expand_dims", to_front(idx, di), axes=(q + 1,)))  # (B, *idx, 2)
    out = bind("gather_nd", xf, nd)  # (B, *idx, x axes before a, x axes after a)
    perm = (0,) + tuple(range(q + 1, q + 1 + a)) + tuple(range(1, q + 1)) + tuple(range(q + 1 + a, q + r))
    return bind("transpose", out, perm=perm), 0


def gather(x, indices, axis: int = 0):
    """Take entries of ``x`` along ``axis`` at ``indices`` (int32/int64; negatives count from
    the end), as ``np.take``: the result has shape x.shape[:axis] + indices.shape + x.shape[axis+1:].

    >>> irf.gather(irf.tensor([10.0, 20.0, 30.0]), np.array([2, -3])).numpy()
    array([30., 10.], dtype=float32)
    """
    if type(indices) in HANDLERS:  # ragged ids give a ragged result (irf.ragged.gather)
        return handler(indices, "gather")(x, indices, axis=axis)
    return bind("gather", x, _as_indices(indices), axis=int(axis))


def _nd_index_depth(op: str, data: TensorType, indices: TensorType) -> int:
    _check_indices(op, indices)
    if indices.rank == 0:
        raise ShapeError(f"{op}: indices must have rank >= 1, got a scalar")
    k = indices.shape[-1]
    if type(k) is not int:
        raise ShapeError(f"{op}: the last dim of indices {indices.shape} must be static")
    if not 1 <= k <= data.rank:
        raise ShapeError(f"{op}: the last dim of indices {indices.shape} must be in 1..{data.rank} (rank of {data.shape})")
    return k


def _gather_nd_type(data: TensorType, indices: TensorType) -> TensorType:
    k = _nd_index_depth("gather_nd", data, indices)
    return TensorType(dtype=data.dtype, shape=indices.shape[:-1] + data.shape[k:])


defop("gather_nd", _gather_nd_type, inputs=2, family="shape")
defvjp("gather_nd", lambda g, data, indices, *, out: (bind("scatter_add", bind("zeros_like", data), indices, g), None))


@defbatch("gather_nd")
def _gather_nd_batch(inputs, dims, size):
    (data, idx), (dd, di) = inputs, dims
    k = idx.type.shape[-1] if di is None or di < idx.type.rank - 1 else idx.type.shape[-2]
    if di is None:  # the batch axis of data right after the k indexed axes: it stays in every slice
        return bind("gather_nd", move_axis(data, dd, k), idx), idx.type.rank - 1
    idx = to_front(idx, di)
    if dd is None:  # batched index tuples into one data tensor: an index axis of the result
        return bind("gather_nd", data, idx), 0
    return bind("gather_nd", to_front(data, dd), with_batch_index(idx)), 0


def scatter_nd_batch(op: str):
    """The batching rule of a ``data, indices, updates`` scatter into index tuples
    (``scatter_add`` here, ``scatter_nd`` in extra.py)."""

    def rule(inputs, dims, size, **attrs):
        (data, idx, upd), (dd, di, du) = inputs, dims
        like = next((x, d) for x, d in zip(inputs, dims) if d is not None)
        if di is None:  # one index set: the batch axis of data after the k indexed axes (as gather_nd)
            k, q = idx.type.shape[-1], idx.type.rank - 1
            data = move_axis(materialize(data, dd, size, like), 0, k)
            upd = move_axis(materialize(upd, du, size, like), 0, q)
            return bind(op, data, idx, upd, **attrs), k
        idx = with_batch_index(to_front(idx, di))  # (b, index) tuples into the data batched at axis 0
        return bind(op, materialize(data, dd, size, like), idx, materialize(upd, du, size, like), **attrs), 0

    rule.__name__ = f"batch_{op}"
    return rule


def gather_nd(data, indices):
    """Index ``data`` with the tuples in the last axis of ``indices``, as ``tf.gather_nd``:
    ``out[i] = data[tuple(indices[i])]``.

    >>> irf.gather_nd(irf.tensor(np.arange(6.0).reshape(2, 3)), np.array([[1, 2], [0, 0]])).numpy()
    array([5., 0.])
    """
    return bind("gather_nd", data, _as_indices(indices))


def _scatter_add_type(data: TensorType, indices: TensorType, updates: TensorType) -> TensorType:
    k = _nd_index_depth("scatter_add", data, indices)
    if data.dtype is DType.bool:
        raise DTypeError("scatter_add: cannot add bool tensors")
    if updates.dtype != data.dtype:
        raise DTypeError(f"scatter_add: updates are {updates.dtype.value} but data is {data.dtype.value}; cast explicitly")
    want = indices.shape[:-1] + data.shape[k:]
    if updates.rank != len(want):
        raise ShapeError(f"scatter_add: updates must have shape {want} (indices {indices.shape}, data {data.shape}), got {updates.shape}")
    for u, w in zip(updates.shape, want):
        same_dim(u, w, "scatter_add", f"updates {updates.shape} vs expected {want}")
    return data


defop("scatter_add", _scatter_add_type, inputs=3, family="shape")
defvjp("scatter_add", lambda g, data, indices, updates, *, out: (g, None, bind("gather_nd", g, indices)))
defbatch("scatter_add", scatter_nd_batch("scatter_add"))


def scatter_add(data, indices, updates):
    """``data`` with ``updates`` added at the index tuples in the last axis of ``indices``, as
    ``tf.tensor_scatter_nd_add`` / ONNX ScatterND(reduction="add"); repeated indices add up.

    >>> irf.scatter_add(irf.tensor(np.zeros(3, "float32")), np.array([[0], [2], [0]]), irf.tensor([1.0, 2.0, 3.0])).numpy()
    array([4., 0., 2.], dtype=float32)
    """
    return bind("scatter_add", data, _as_indices(indices), updates)


# -- one_hot -------------------------------------------------------------------------------------------

def _one_hot_type(indices: TensorType, depth: int, axis: int, dtype: DType) -> TensorType:
    _check_indices("one_hot", indices)
    if depth < 0:
        raise ShapeError(f"one_hot: depth must be >= 0, got {depth}")
    a = norm_axis(axis, indices.rank + 1, "one_hot")
    return TensorType(dtype=dtype, shape=indices.shape[:a] + (depth,) + indices.shape[a:])


defop("one_hot", _one_hot_type, differentiable=False, family="shape", attrs={
    "depth": Attr("int"),
    "axis": Attr("int", default=-1),
    "dtype": Attr("dtype", default=DType.float32),
})


@defbatch("one_hot")
def _one_hot_batch(inputs, dims, size, *, depth, axis, dtype):
    x, d = inputs[0], dims[0]
    (a,), b = insert_axes((axis,), rank_of(x, d) + 1, d, "one_hot")
    return bind("one_hot", x, depth=depth, axis=a, dtype=dtype), b


def one_hot(indices, depth: int, axis: int = -1, dtype: Any = "float32"):
    """One-hot rows of length ``depth`` for int ``indices`` (ONNX OneHot: negatives count from
    the end; out of range gives zeros), the new axis at ``axis``.

    >>> irf.one_hot(np.array([0, 2]), 3).numpy()
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    return bind("one_hot", _as_indices(indices), depth=int(depth), axis=int(axis), dtype=as_dtype(dtype))

# -- pad -----------------------------------------------------------------------------------------------

PAD_MODES = ("constant", "reflect", "edge", "wrap")


def _pad_type(x: TensorType, pads, mode, value) -> TensorType:
    if mode not in PAD_MODES:
        raise IRValidationError(f"pad: mode {mode!r} is not supported; use one of {', '.join(PAD_MODES)}")
    r = x.rank
    if len(pads) != 2 * r or any(p < 0 for p in pads):
        raise ShapeError(f"pad: pads {pads} must be {2 * r} sizes >= 0 (all begins, then all ends) for shape {x.shape}")
    if mode == "constant":
        check_fill_value("pad", value, x.dtype)
    shape = []
    for i, d in enumerate(x.shape):
        before, after = pads[i], pads[r + i]
        if type(d) is int and (before or after):
            if mode == "reflect" and max(before, after) > d - 1:
                raise ShapeError(f"pad: reflect padding ({before}, {after}) of axis {i} must be < its size {d} in {x.shape}")
            if mode in ("edge", "wrap") and d == 0:
                raise ShapeError(f"pad: {mode} padding of axis {i} needs a non-empty axis, shape is {x.shape}")
        shape.append(d + before + after if type(d) is int else (d if before + after == 0 else None))
    return TensorType(dtype=x.dtype, shape=tuple(shape))


def _slice_axis(x, axis: int, start: int, end: int):
    return bind("slice", x, starts=(start,), ends=(end,), axes=(axis,), steps=None)


def _pad_vjp(g, x, *, out, pads, mode, value):
    r = x.type.rank
    if mode == "constant":  # the gradient of the centre; the padding is constant
        axes = tuple(i for i in range(r) if pads[i] or pads[r + i])
        if not axes:
            return g
        return bind("slice", g, starts=tuple(pads[i] for i in axes),
                    ends=tuple(-pads[r + i] if pads[r + i] else END for i in axes), axes=axes, steps=None)
    if mode == "wrap":  # pad cells copy cells of x, possibly several times over: sum them back there
        return scatter_back(g, x, lambda t: bind("pad", t, pads=pads, mode="wrap", value=0))
    # reflect / edge: padded cells copy cells of x, so their gradient flows back there. One axis
    # at a time; zero blocks are cut from the centre itself, so symbolic sizes need no arithmetic.
    for a in range(r):
        before, after = pads[a], pads[r + a]
        if not (before or after):
            continue
        center = _slice_axis(g, a, before, -after if after else END)
        total = center
        zeros = lambda start, end: bind("zeros_like", _slice_axis(center, a, start, end))  # noqa: E731
        if before:
            left = _slice_axis(g, a, 0, before)
            if mode == "edge":  # every left pad cell copies x[0]
                parts = [bind("reduce_sum", left, axes=(a,), keepdims=True), zeros(1, END)]
            else:  # left pad cell j copies x[before - j]
                parts = [zeros(0, 1), bind("flip", left, axes=(a,)), zeros(before + 1, END)]
            total = total + bind("concat", *parts, axis=a)
        if after:
            right = _slice_axis(g, a, -after, END)
            if mode == "edge":  # every right pad cell copies x[d - 1]
                parts = [zeros(0, -1), bind("reduce_sum", right, axes=(a,), keepdims=True)]
            else:  # right pad cell j copies x[d - 2 - j]
                parts = [zeros(0, -(after + 1)), bind("flip", right, axes=(a,)), zeros(-1, END)]
            total = total + bind("concat", *parts, axis=a)
        g = total
    return g


defop("pad", _pad_type, family="shape", attrs={
    "pads": Attr("ints"),
    "mode": Attr("str", default="constant"),
    "value": Attr("float", default=0.0),
})
defvjp("pad", _pad_vjp)


@defbatch("pad")
def _pad_batch(inputs, dims, size, *, pads, mode, value):
    x, d = inputs[0], dims[0]
    r = rank_of(x, d)
    return bind("pad", x, pads=pads[:d] + (0,) + pads[d:r + d] + (0,) + pads[r + d:], mode=mode, value=value), d


def pad(x, pads, mode: str = "constant", value: float = 0.0):
    """Pad ``x``; ``pads`` is NumPy's pad width: an int, one ``(before, after)`` pair for every
    axis, or one pair per axis. ``mode`` is "constant" (with ``value``), "reflect", "edge" or
    "wrap" (the axis repeated periodically, as NumPy's and ONNX's wrap).

    The op stores the pads as ONNX does: all begins, then all ends.

    >>> irf.pad(irf.tensor([1.0, 2.0]), (1, 2)).numpy()
    array([0., 1., 2., 0., 0.], dtype=float32)
    """
    rank = len(x.shape)
    pairs = _pad_pairs(pads, rank)
    if isinstance(value, bool):
        value = int(value)
    flat = tuple(p[0] for p in pairs) + tuple(p[1] for p in pairs)
    return bind("pad", x, pads=flat, mode=mode, value=value)


def _pad_pairs(pads, rank: int) -> list[tuple[int, int]]:
    if isinstance(pads, int) or hasattr(pads, "__index__"):
        return [(int(pads), int(pads))] * rank
    pads = list(pads)
    if len(pads) == 2 and all(hasattr(p, "__index__") for p in pads):  # one pair for every axis
        return [(int(pads[0]), int(pads[1]))] * rank
    if not all(hasattr(p, "__len__") and len(p) == 2 for p in pads) or len(pads) not in (1, rank):
        raise ShapeError(f"pad: pads {pads} must be an int, one (before, after) pair or {rank} pairs")
    pairs = [(int(b), int(a)) for b, a in pads]
    return pairs * rank if len(pairs) == 1 else pairs


__all__ = ["slice", "pad", "gather", "gather_nd", "scatter_add", "one_hot"]
