"""NumPy kernels of the nn ops (softmax, log_softmax, sparse_softmax_cross_entropy, layer_norm,
batch_norm, dropout).

Statistics of 16-bit floats are computed in float32 and the result rounded back once, as
onnxruntime does; the output dtype is always the input dtype.
"""
from __future__ import annotations

import numpy as np

from irflow.executors.numpy.kernels import kernel
from irflow.ir.dtypes import is_float_numpy
from irflow.ops.nn import check_dropout_attrs



def _upcast(x: np.ndarray) -> np.ndarray:
    """float32 for 16-bit floats; a ValueError (so eager calls report the type rule's error)
    for anything not float, which NumPy would otherwise happily compute on."""
    if not is_float_numpy(x.dtype):
        raise ValueError(f"float input expected, got {x.dtype}")
    return x.astype(np.float32) if x.dtype.itemsize == 2 else x


# Up to this many classes softmax and the loss are computed on a class-major copy (classes, examples): NumPy
# reduces a short last axis row by row, but the first axis across all rows at once. float32,
# class-major vs row-major: 64x10 6.7 vs 11.5 us, 1024x10 21 vs 98 us, 8192x32 443 vs 1111 us,
# 64x100 15.5 vs 16.2 us; at 1000 classes row-major wins (1024x1000: 1540 vs 1900 us).
_CLASS_MAJOR_UP_TO = 64


def _shifted_class_major(rows: np.ndarray, dtype) -> np.ndarray:
    """rows (examples, classes) as a class-major copy in ``dtype``, minus each example's max."""
    shifted = np.array(rows.T, dtype=dtype, order="C")  # always a copy: callers modify it in place
    shifted -= shifted.max(axis=0)
    return shifted


@kernel("softmax")
def softmax(x, axis=-1):
    xf = _upcast(x)
    if x.ndim >= 1 and axis in (-1, x.ndim - 1) and 0 < x.shape[-1] <= _CLASS_MAJOR_UP_TO and x.size:
        # Few classes (a classifier's logits): work on a class-major copy, so the max and the
        # sum run across contiguous rows instead of along short ones (2x faster at 64x10).
        e = _shifted_class_major(xf.reshape(-1, x.shape[-1]), xf.dtype)
        np.exp(e, out=e)
        e /= e.sum(axis=0)
        return np.ascontiguousarray(e.T).reshape(x.shape).astype(x.dtype, copy=False)
    e = np.exp(xf - np.max(xf, axis=axis, keepdims=True))
    e /= np.sum(e, axis=axis, keepdims=True)
    return e.astype(x.dtype, copy=False)


@kernel("log_softmax")
def log_softmax(x, axis=-1):
    xf = _upcast(x)
    shifted = xf - np.max(xf, axis=axis, keepdims=True)
    shifted -= np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted.astype(x.dtype, copy=False)



@kernel("sparse_softmax_cross_entropy")
def sparse_softmax_cross_entropy(logits, labels):
    # The checks an eager call needs (graphs were type-checked when built), then the label
    # range, which only the values can tell: PyTorch and TensorFlow raise too.
    if labels.dtype.kind not in "iu" or labels.shape != logits.shape[:-1]:
        raise ValueError(f"int labels of shape {logits.shape[:-1]} expected, got {labels.dtype}{list(labels.shape)}")
    if not is_float_numpy(logits.dtype):
        raise ValueError(f"float input expected, got {logits.dtype}")
    classes = logits.shape[-1]
    # Seen as unsigned, a negative label is huge: one max() checks both ends of [0, classes).
    if labels.size and labels.view(f"u{labels.itemsize}").max() >= classes:
        bad = labels[(labels < 0) | (labels >= classes)].flat[0]
        raise IndexError(f"sparse_softmax_cross_entropy: label {bad} is out of range for {classes} classes "
                         f"(labels must be in [0, {classes}))")
    if logits.size == 0:  # no examples (max() refuses empty rows)
        return np.zeros(labels.shape, logits.dtype)
    work = np.float32 if logits.dtype.itemsize == 2 else logits.dtype  # 16-bit: rounded once at the end
    rows = logits.reshape(-1, classes)
    examples = np.arange(rows.shape[0])
    flat_labels = labels.reshape(-1)
    # loss = log(sum(exp(x - max))) - (x[label] - max): the shift keeps exp from overflowing.
    # The label is picked by fancy indexing (what np.take_along_axis does, without its Python
    # overhead, a third of this kernel's time at 64x10); no one-hot.
    if classes <= _CLASS_MAJOR_UP_TO:
        shifted = _shifted_class_major(rows, work)
        picked = shifted[flat_labels, examples]
        loss = np.log(np.exp(shifted, out=shifted).sum(axis=0))
    else:
        rows = rows.astype(work, copy=False)
        shifted = rows - rows.max(axis=1, keepdims=True)
        picked = shifted[examples, flat_labels]
        loss = np.log(np.exp(shifted, out=shifted).sum(axis=1))
    loss -= picked
    return loss.reshape(labels.shape).astype(logits.dtype, copy=False)


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
