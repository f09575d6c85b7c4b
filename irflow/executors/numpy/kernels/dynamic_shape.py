"""NumPy kernels of the run-time shape-argument ops (irflow/ops/dynamic_shape.py).

Each reads its shape argument from an array and follows the ONNX spec; a bad value raises a
ValueError naming the op (the interpreter adds the node and its input types).
"""
from __future__ import annotations

import numpy as np

from irflow.executors.numpy.kernels import kernel
from irflow.executors.numpy.kernels.dynamic_axes import run_time_axes
from irflow.executors.numpy.kernels.extra import topk as _topk
from irflow.executors.numpy.kernels.shape import fill_value, one_hot as _one_hot, slice_ as _slice
from irflow.ir.dtypes import DType


def _ints(op: str, what: str, a) -> list[int]:
    a = np.asarray(a)
    if a.dtype.kind not in "iu" or a.ndim != 1:
        raise ValueError(f"{op}: {what} must be a 1-D integer array, got {a.dtype} of shape {a.shape}")
    return [int(v) for v in a]


def _one(op: str, what: str, a) -> int:
    a = np.asarray(a)
    if a.size != 1:
        raise ValueError(f"{op}: {what} must hold one value, got shape {a.shape}")
    return int(a.reshape(-1)[0])  # a float depth is truncated, as ONNX's cast to int64


def _axes(op: str, axes, rank: int, count: int) -> list[int]:
    if axes is None:
        return list(range(count))
    return list(run_time_axes(op, _ints(op, "axes", axes), rank, sort=False))


@kernel("slice_dynamic")
def slice_dynamic(x, starts, ends, axes=None, steps=None):
    starts, ends = _ints("slice_dynamic", "starts", starts), _ints("slice_dynamic", "ends", ends)
    n = len(starts)
    axes = _axes("slice_dynamic", axes, x.ndim, n)
    steps = [1] * n if steps is None else _ints("slice_dynamic", "steps", steps)
    if not len(ends) == len(axes) == len(steps) == n or n > x.ndim:
        raise ValueError(f"slice_dynamic: starts {starts}, ends {ends}, axes {axes} and steps {steps} must have one "
                         f"length, at most the rank {x.ndim}")
    if 0 in steps:
        raise ValueError(f"slice_dynamic: steps {steps} contain 0")
    return _slice(x, starts, ends, axes, steps)  # checked: the static kernel's clamping from here


@kernel("pad_dynamic")
def pad_dynamic(x, pads, value=None, axes=None, mode="constant"):
    pads = _ints("pad_dynamic", "pads", pads)
    r = x.ndim
    if axes is None and len(pads) != 2 * r:
        raise ValueError(f"pad_dynamic: {len(pads)} pads for an input of rank {r} (need {2 * r})")
    axes = _axes("pad_dynamic", axes, r, len(pads) // 2)
    k = len(axes)
    if len(pads) != 2 * k:
        raise ValueError(f"pad_dynamic: {len(pads)} pads for {k} axes (need {2 * k})")
    width = [[0, 0] for _ in range(r)]
    for i, a in enumerate(axes):
        width[a] = [pads[i], pads[i + k]]
    if any(p < 0 for w in width for p in w):
        if mode != "constant":
            raise ValueError(f"pad_dynamic: negative pads {pads} (cropping) are supported in constant mode only")
        # ONNX: a negative pad removes cells; crop those first, then pad the rest.
        x = x[tuple(slice(max(-b, 0), x.shape[i] - max(-e, 0)) for i, (b, e) in enumerate(width))]
        if any(s < 0 for s in x.shape):
            raise ValueError(f"pad_dynamic: pads {pads} crop more than the input holds")
        width = [[max(b, 0), max(e, 0)] for b, e in width]
    if mode == "constant":
        v = 0 if value is None else np.asarray(value).reshape(-1)[0]
        return np.pad(x, width, mode="constant", constant_values=fill_value(v, x.dtype))
    for i, (b, e) in enumerate(width):
        if b or e:
            if x.shape[i] == 0:
                raise ValueError(f"pad_dynamic: {mode} padding of axis {i} needs a non-empty axis, shape is {x.shape}")
            if mode == "reflect" and max(b, e) > x.shape[i] - 1:
                raise ValueError(f"pad_dynamic: reflect padding ({b}, {e}) of axis {i} must be < its size {x.shape[i]}")
    if mode not in ("reflect", "edge", "wrap"):
        raise ValueError(f"pad_dynamic: unknown pad mode {mode!r}")
    return np.pad(x, width, mode=mode)


@kernel("split_dynamic")
def split_dynamic(x, split, axis=0, num=1):
    sizes = _ints("split_dynamic", "split", split)
    d = x.shape[axis]
    if len(sizes) != num or any(s < 0 for s in sizes) or sum(sizes) != d:
        raise ValueError(f"split_dynamic: sizes {sizes} must be {num} sizes >= 0 adding up to {d} (axis {axis} of {x.shape})")
    cuts = np.cumsum(sizes)[:-1]
    return tuple(np.split(x, cuts, axis=axis))


@kernel("tile_dynamic")
def tile_dynamic(x, repeats):
    reps = _ints("tile_dynamic", "repeats", repeats)
    if len(reps) != x.ndim or any(v < 0 for v in reps):
        raise ValueError(f"tile_dynamic: repeats {reps} must be {x.ndim} counts >= 0, one per axis of {x.shape}")
    return np.tile(x, reps)


@kernel("topk_dynamic")
def topk_dynamic(x, k, axis=-1, largest=True, sorted=True):
    k = _one("topk_dynamic", "k", k)
    d = x.shape[axis]
    if not 0 <= k <= d:
        raise ValueError(f"topk_dynamic: k={k} must be in 0..{d} (axis {axis} of {x.shape})")
    return _topk(x, k, axis=axis, largest=largest, sorted=sorted)


@kernel("one_hot_dynamic")
def one_hot_dynamic(indices, depth, axis=-1, dtype=DType.float32):
    n = _one("one_hot_dynamic", "depth", depth)
    if n < 1:
        raise ValueError(f"one_hot_dynamic: depth must be >= 1, got {n}")
    return _one_hot(indices.astype(np.int64), n, axis=axis, dtype=dtype)
