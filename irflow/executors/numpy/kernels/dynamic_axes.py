"""NumPy kernels of the run-time axes ops (irflow/ops/dynamic_axes.py): the axes are read from
the input array and checked as ONNX checks them; a bad value is an ExecutorError naming the op.
The arithmetic is the static kernels' (reduction.py), so both agree to the bit."""
from __future__ import annotations

import numpy as np

from irflow.errors import ExecutorError
from irflow.executors.numpy.kernels import kernel
from irflow.executors.numpy.kernels import reduction as static


def run_time_axes(op: str, axes: np.ndarray, rank: int, sort: bool = True) -> tuple[int, ...]:
    """A run-time axes array as non-negative ints (sorted, or in the given order where they
    pair with other run-time arguments, as Slice's and Pad's do), or an ExecutorError naming ``op``."""
    values = [int(a) for a in np.asarray(axes).reshape(-1)]
    for a in values:
        if not -rank <= a < rank:
            raise ExecutorError(f"{op}: axis {a} (from the run-time axes {values}) is out of range for rank {rank}")
    norm = [a % rank for a in values]
    if len(set(norm)) != len(norm):
        raise ExecutorError(f"{op}: the run-time axes {values} repeat an axis")
    return tuple(sorted(norm) if sort else norm)


_STATIC = {"sum": static.reduce_sum, "mean": static.reduce_mean, "max": static.reduce_max,
           "min": static.reduce_min, "prod": static.reduce_prod}


def _lowest(dtype: np.dtype, highest: bool):
    """What ONNX's ReduceMax (lowest) / ReduceMin (highest) give over an empty set."""
    if dtype == np.bool_:
        return highest
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return info.max if highest else info.min
    return np.inf if highest else -np.inf


@kernel("reduce_dynamic")
def reduce_dynamic(x, axes, kind, keepdims=True, noop_with_empty_axes=False):
    ax = run_time_axes("reduce_dynamic", axes, x.ndim)
    if not ax:
        if noop_with_empty_axes:
            return x.copy()
        ax = tuple(range(x.ndim))
    if kind in ("max", "min") and any(x.shape[a] == 0 for a in ax):
        shape = tuple(1 if i in ax else d for i, d in enumerate(x.shape)) if keepdims else \
            tuple(d for i, d in enumerate(x.shape) if i not in ax)
        return np.full(shape, _lowest(x.dtype, kind == "min"), dtype=x.dtype)
    return _STATIC[kind](x, axes=ax, keepdims=bool(keepdims))


@kernel("squeeze_dynamic")
def squeeze_dynamic(x, axes):
    ax = run_time_axes("squeeze_dynamic", axes, x.ndim)
    bad = [a for a in ax if x.shape[a] != 1]
    if bad:
        raise ExecutorError(f"squeeze_dynamic: axes {bad} of shape {x.shape} are not of size 1")
    return np.squeeze(x, axis=ax).copy()


@kernel("unsqueeze_dynamic")
def unsqueeze_dynamic(x, axes):
    ax = run_time_axes("unsqueeze_dynamic", axes, x.ndim + np.asarray(axes).size)
    return np.expand_dims(x, ax).copy()


def _axis(op: str, x: np.ndarray, axis: np.ndarray) -> int:
    arr = np.asarray(axis)
    if arr.size != 1:
        raise ExecutorError(f"{op}: axis must hold one value, got shape {arr.shape}")
    return run_time_axes(op, arr, x.ndim)[0]


@kernel("cumsum_dynamic")
def cumsum_dynamic(x, axis, exclusive=False, reverse=False):
    return static.cumsum(x, _axis("cumsum_dynamic", x, axis), exclusive=exclusive, reverse=reverse)


@kernel("cumprod_dynamic")
def cumprod_dynamic(x, axis, exclusive=False, reverse=False):
    a = _axis("cumprod_dynamic", x, axis)
    y = np.flip(x, a) if reverse else x
    if exclusive and y.shape[a]:  # shifted one place along the axis, a 1 in front
        head = np.ones_like(np.take(y, [0], axis=a))
        y = np.concatenate([head, np.take(y, np.arange(y.shape[a] - 1), axis=a)], axis=a)
    out = np.cumprod(y, axis=a, dtype=static._acc(x))
    if reverse:
        out = np.flip(out, a)
    return np.ascontiguousarray(out.astype(x.dtype, copy=False))
