"""NumPy kernels of the reductions (semantics: irflow/ops/reduction.py).

Every kernel returns the input's dtype (argmax/argmin: int64). float16 and bfloat16 are
accumulated in float32 and rounded once at the end, which is both more accurate than
accumulating in 16 bits and what onnxruntime does on CPU. Kernels raise plain exceptions for
inputs their type rule rejects (bool sums, int means, empty maxima): the eager frontend then
reports the type rule's ShapeError/DTypeError, and graphs never get that far.
"""
from __future__ import annotations

import warnings

import numpy as np

from irflow.executors.numpy.kernels import kernel
from irflow.ir.dtypes import is_float16_or_bfloat16, is_float_numpy



def _axes(axes):
    return None if axes is None else tuple(axes)


def _acc(x: np.ndarray) -> np.dtype:
    """The dtype to accumulate ``x`` in."""
    return np.dtype(np.float32) if is_float16_or_bfloat16(x.dtype) else x.dtype


def _is_float(x: np.ndarray) -> bool:
    return is_float_numpy(x.dtype)


def _no_bool(op: str, x: np.ndarray) -> None:
    if x.dtype == np.bool_:
        raise TypeError(f"{op} does not take bool")


def _no_int(op: str, x: np.ndarray) -> None:
    if not _is_float(x):
        raise TypeError(f"{op} takes floats only")


def _out(result, x: np.ndarray) -> np.ndarray:
    return np.asarray(result).astype(x.dtype, copy=False)


@kernel("reduce_sum")
def reduce_sum(x, axes=None, keepdims=False):
    _no_bool("reduce_sum", x)
    # np.add.reduce is what np.sum runs, without its Python wrapper (~1 us per call).
    return _out(np.add.reduce(x, axis=_axes(axes), keepdims=keepdims, dtype=_acc(x)), x)


@kernel("reduce_mean")
def reduce_mean(x, axes=None, keepdims=False):
    _no_int("reduce_mean", x)
    if x.size:
        # What np.mean computes (a sum, then a true division by the count) without its
        # Python-level wrapper, which costs more than the arithmetic for a batch of losses.
        ax = _axes(axes)
        count = x.size if ax is None else int(np.prod([x.shape[a] for a in ax]))
        return _out(np.true_divide(np.add.reduce(x, axis=ax, keepdims=keepdims, dtype=_acc(x)), count), x)
    with warnings.catch_warnings():  # the mean over a size-0 axis is NaN, as documented
        warnings.simplefilter("ignore", RuntimeWarning)
        return _out(np.mean(x, axis=_axes(axes), keepdims=keepdims, dtype=_acc(x)), x)


@kernel("reduce_max")
def reduce_max(x, axes=None, keepdims=False):
    return _out(np.max(x, axis=_axes(axes), keepdims=keepdims), x)


@kernel("reduce_min")
def reduce_min(x, axes=None, keepdims=False):
    return _out(np.min(x, axis=_axes(axes), keepdims=keepdims), x)


@kernel("reduce_prod")
def reduce_prod(x, axes=None, keepdims=False):
    _no_bool("reduce_prod", x)
    return _out(np.prod(x, axis=_axes(axes), keepdims=keepdims, dtype=_acc(x)), x)


@kernel("logsumexp")
def logsumexp(x, axes=None, keepdims=False):
    _no_int("logsumexp", x)
    ax = _axes(axes)
    xa = x.astype(_acc(x), copy=False)
    m = np.max(xa, axis=ax, keepdims=True)  # raises on a size-0 axis, as the type rule does
    m = np.where(np.isfinite(m), m, 0)  # all -inf (or an inf) must not become inf - inf = NaN
    with np.errstate(divide="ignore"):  # log(0) = -inf for an all -inf slice
        out = np.log(np.sum(np.exp(xa - m), axis=ax, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=ax if ax is not None else tuple(range(x.ndim)))
    return _out(out, x)


@kernel("argmax")
def argmax(x, axis, keepdims=False):
    return np.asarray(np.argmax(x, axis=axis, keepdims=keepdims)).astype(np.int64, copy=False)


@kernel("argmin")
def argmin(x, axis, keepdims=False):
    return np.asarray(np.argmin(x, axis=axis, keepdims=keepdims)).astype(np.int64, copy=False)


@kernel("cumsum")
def cumsum(x, axis, exclusive=False, reverse=False):
    _no_bool("cumsum", x)
    if not -x.ndim <= axis < x.ndim:  # np.cumsum would treat a 0-d array as 1-d
        raise np.exceptions.AxisError(axis, x.ndim)
    out = np.cumsum(np.flip(x, axis) if reverse else x, axis=axis, dtype=_acc(x))
    if exclusive:
        # Shift by one along the axis, starting from 0 (not out - x: that rounds differently).
        shifted = np.zeros_like(out)
        dst = [slice(None)] * x.ndim
        before = [slice(None)] * x.ndim
        dst[axis], before[axis] = slice(1, None), slice(None, -1)
        shifted[tuple(dst)] = out[tuple(before)]
        out = shifted
    if reverse:
        out = np.flip(out, axis)
    return _out(out, x)
