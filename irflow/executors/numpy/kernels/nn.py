"""NumPy kernels of the nn ops (softmax, log_softmax, layer_norm, batch_norm, dropout).

Statistics of 16-bit floats are computed in float32 and the result rounded back once, as
onnxruntime does; the output dtype is always the input dtype.
"""
from __future__ import annotations

import numpy as np

from irflow.executors.numpy.kernels import kernel
from irflow.ir.dtypes import DType
from irflow.ops.nn import check_dropout_attrs

BFLOAT16 = DType.bfloat16.numpy


def _upcast(x: np.ndarray) -> np.ndarray:
    """float32 for 16-bit floats; a ValueError (so eager calls report the type rule's error)
    for anything not float, which NumPy would otherwise happily compute on."""
    if x.dtype.kind != "f" and x.dtype != BFLOAT16:
        raise ValueError(f"float input expected, got {x.dtype}")
    return x.astype(np.float32) if x.dtype.itemsize == 2 else x


@kernel("softmax")
def softmax(x, axis=-1):
    xf = _upcast(x)
    e = np.exp(xf - np.max(xf, axis=axis, keepdims=True))
    e /= np.sum(e, axis=axis, keepdims=True)
    return e.astype(x.dtype, copy=False)


@kernel("log_softmax")
def log_softmax(x, axis=-1):
    xf = _upcast(x)
    shifted = xf - np.max(xf, axis=axis, keepdims=True)
    shifted -= np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted.astype(x.dtype, copy=False)


@kernel("layer_norm")
def layer_norm(x, scale=None, bias=None, axis=-1, epsilon=1e-5):
    if not -x.ndim <= axis < x.ndim:
        raise ValueError("axis out of range")
    axes = tuple(range(axis % x.ndim, x.ndim))
    if any(p is not None and p.shape != x.shape[axes[0]:] for p in (scale, bias)):
        raise ValueError("parameter shape mismatch")
    xf = _upcast(x)
    xc = xf - np.mean(xf, axis=axes, keepdims=True)
    var = np.mean(np.square(xc), axis=axes, keepdims=True)
    y = xc * (1.0 / np.sqrt(var + epsilon))
    if scale is not None:
        y *= scale
    if bias is not None:
        y += bias
    return y.astype(x.dtype, copy=False)


@kernel("batch_norm")
def batch_norm(x, scale, bias, mean, var, epsilon=1e-5):
    if not all(p.shape == (x.shape[1],) for p in (scale, bias, mean, var)):
        raise ValueError("parameter shape mismatch")  # the eager path then reports the type rule's error
    shape = (-1,) + (1,) * (x.ndim - 2)
    a = _upcast(scale) / np.sqrt(_upcast(var) + epsilon)  # y = x * a + (bias - mean * a)
    shift = _upcast(bias) - _upcast(mean) * a
    y = _upcast(x) * a.reshape(shape) + shift.reshape(shape)
    return y.astype(x.dtype, copy=False)


def dropout_keep_mask(shape: tuple, rate: float, seed: int) -> np.ndarray:
    """The keep-mask of dropout: a pure function of (shape, rate, seed)."""
    return np.random.default_rng(seed).random(shape) >= rate


@kernel("dropout")
def dropout(x, rate=0.5, seed=0, training=True):
    check_dropout_attrs(rate, seed)  # eager calls skip the type rule
    _upcast(x)  # float check
    if not training or rate == 0.0:
        return x
    scaled = x * np.asarray(1.0 / (1.0 - rate), dtype=x.dtype)
    return np.where(dropout_keep_mask(x.shape, rate, seed), scaled, np.zeros((), x.dtype))
