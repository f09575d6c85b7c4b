"""NumPy kernels of the shape ops (shape.py, shape_index.py and shape_create.py in irflow.ops).

Kernels return views where NumPy does (reshape, transpose, slices, broadcasts): the executors
never write into arrays they did not allocate. Where NumPy would accept something the type
rule refuses (reflect padding wider than the axis, a bad pad mode), the kernel raises, so the
eager frontend reports the type rule's error instead of a silently different result.
"""
from __future__ import annotations

import math

import numpy as np

from irflow.executors.numpy.kernels import kernel
from irflow.ops.shape_index import slice_bounds  # ONNX Slice's clamping, shared with the type rule


@kernel("identity")
def identity(x):
    return x


@kernel("reshape")
def reshape(x, shape):
    return np.reshape(x, shape)


@kernel("reshape_like")
def reshape_like(x, like):
    return np.reshape(x, like.shape)


@kernel("expand_dims")
def expand_dims(x, axes):
    if len(axes) == 1 and -x.ndim - 1 <= axes[0] <= x.ndim:  # a reshape view, without np.expand_dims' overhead
        a = axes[0] % (x.ndim + 1)
        return x.reshape(x.shape[:a] + (1,) + x.shape[a:])
    return np.expand_dims(x, tuple(axes))


@kernel("squeeze")
def squeeze(x, axes=None):
    return np.squeeze(x, axis=None if axes is None else tuple(axes))


@kernel("transpose")
def transpose(x, perm=None):
    return np.transpose(x, perm)


@kernel("broadcast_to")
def broadcast_to(x, shape):
    return np.broadcast_to(x, shape)


@kernel("broadcast_like")
def broadcast_like(x, like):
    return np.broadcast_to(x, like.shape)


@kernel("concat")
def concat(*xs, axis=0):
    if len({x.dtype for x in xs}) > 1:
        raise TypeError("concat inputs differ in dtype")  # NumPy would promote silently
    return np.concatenate(xs, axis=axis)


def _split_at(x, sizes, axis):
    if sum(sizes) != x.shape[axis] or min(sizes) < 0:
        raise ValueError(f"sizes {tuple(sizes)} do not add up to {x.shape[axis]}")
    parts = tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))
    return parts if len(parts) > 1 else parts[0]


@kernel("split")
def split(x, sizes=None, num=None, axis=0):
    if sizes is None:
        d = x.shape[axis]
        if d % num:
            raise ValueError(f"axis size {d} does not split into {num} equal parts")
        sizes = [d // num] * num
    return _split_at(x, sizes, axis)


@kernel("split_like")
def split_like(x, *likes, axis):
    return _split_at(x, [like.shape[axis] for like in likes], axis)


@kernel("stack")
def stack(*xs, axis=0):
    if len({x.dtype for x in xs}) > 1:
        raise TypeError("stack inputs differ in dtype")
    return np.stack(xs, axis=axis)


@kernel("tile")
def tile(x, reps):
    if len(reps) != x.ndim:
        raise ValueError("tile needs one rep per axis")  # np.tile would pad reps or x silently
    return np.tile(x, reps)


@kernel("flip")
def flip(x, axes=None):
    return np.flip(x, axis=None if axes is None else tuple(axes))


@kernel("pad")
def pad(x, pads, mode="constant", value=0.0):
    r = x.ndim
    if len(pads) != 2 * r:
        raise ValueError("pad needs a begin and an end per axis")
    width = list(zip(pads[:r], pads[r:]))
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=fill_value(value, x.dtype))
    if mode == "reflect":
        for d, (before, after) in zip(x.shape, width):
            if max(before, after) > d - 1 and (before or after):
                raise ValueError("reflect padding must be smaller than the axis")  # NumPy would repeat the reflection
        return np.pad(x, width, mode="reflect")
    if mode in ("edge", "wrap"):
        if any(d == 0 and (before or after) for d, (before, after) in zip(x.shape, width)):
            raise ValueError(f"{mode} padding needs a non-empty axis")
        return np.pad(x, width, mode=mode)
    raise ValueError(f"unknown pad mode {mode!r}")


def fill_value(value, dtype: np.dtype):
    """``value`` as a ``dtype`` scalar; ValueError where that would change it (1.5 as an int)."""
    out = np.asarray(value).astype(dtype)
    if dtype.kind in "iub" and out != value:
        raise ValueError(f"{value!r} is not representable as {dtype}")
    return out


# -- indexing ------------------------------------------------------------------------------------

@kernel("slice")
def slice_(x, starts, ends, axes=None, steps=None):
    n = len(starts)
    axes = range(n) if axes is None else axes
    steps = (1,) * n if steps is None else steps
    if not len(ends) == len(axes) == len(steps) == n or len({a % x.ndim for a in axes}) != n:
        raise ValueError("slice needs one start, end and step per axis, and distinct axes")
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps):
        s, e, _ = slice_bounds(x.shape[a], s, e, st)
        index[a] = slice(s, e if e >= 0 else None, st)  # e == -1 (backward): up to and including 0
    return x[tuple(index)]


@kernel("gather")
def gather(x, indices, axis=0):
    return np.take(x, indices, axis=axis)


@kernel("gather_nd")
def gather_nd(data, indices):
    return data[tuple(np.moveaxis(indices, -1, 0))]


@kernel("scatter_add")
def scatter_add(data, indices, updates):
    out = data.copy()
    np.add.at(out, tuple(np.moveaxis(indices, -1, 0)), updates)  # repeated indices add up
    return out


@kernel("one_hot")
def one_hot(indices, depth, axis=-1, dtype=None):
    if depth < 0:
        raise ValueError("one_hot depth must be >= 0")
    idx = np.where(indices < 0, indices + depth, indices)  # out of range matches nothing: zeros
    hot = idx[..., None] == np.arange(depth, dtype=idx.dtype)
    if axis not in (-1, idx.ndim):  # np.moveaxis costs more than the rest for a batch of labels
        hot = np.ascontiguousarray(np.moveaxis(hot, -1, axis))
    return hot.astype(dtype.numpy)


# -- creation ------------------------------------------------------------------------------------

@kernel("shape_of")
def shape_of(x):
    return np.asarray(x.shape, dtype=np.int64)


def range_values(start, limit, delta, dtype: np.dtype) -> np.ndarray:
    """start + i * delta for i < ceil((limit - start) / delta), as ONNX Range."""
    n = max(math.ceil((limit - start) / delta), 0)
    if np.dtype(dtype).kind in "iu":
        return (int(start) + np.arange(n, dtype=np.int64) * int(delta)).astype(dtype)
    return (np.float64(start) + np.arange(n, dtype=np.float64) * np.float64(delta)).astype(dtype)


@kernel("range")
def range_(*bounds, start=None, limit=None, delta=None, dtype=None):
    if bounds:
        s, l, d = (b.item() for b in bounds)
        dt = bounds[0].dtype
    else:
        s, l, d, dt = start, limit, delta, dtype.numpy
    if d == 0 or (dt.kind in "iu" and any(v != int(v) for v in (s, l, d))):
        raise ValueError("range needs a delta != 0, and integer bounds for an integer dtype")
    return range_values(s, l, d, dt)


@kernel("full")
def full(shape, value, dtype):
    return np.full(shape, fill_value(value, dtype.numpy))


@kernel("zeros")
def zeros(shape, dtype):
    return np.zeros(shape, dtype=dtype.numpy)


@kernel("ones")
def ones(shape, dtype):
    return np.ones(shape, dtype=dtype.numpy)


@kernel("full_like")
def full_like(x, value, dtype=None):
    return np.full(x.shape, fill_value(value, x.dtype if dtype is None else dtype.numpy))


@kernel("constant")
def constant(value):
    out = value.view()
    out.flags.writeable = False  # callers must not change the node's attribute through its output
    return out


@kernel("sum_to_like")
def sum_to_like(g, like, axes):
    summed = tuple(a for a in axes if like.shape[a] == 1 and g.shape[a] != 1)
    return np.sum(g, axis=summed, keepdims=True, dtype=g.dtype) if summed else g
