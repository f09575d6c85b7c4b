"""NumPy kernels of the N-D convolution and pooling ops (``irflow/ops/conv_nd.py``).

The same scheme as the 2-D kernels, over any number of spatial dims: conv is im2col (one
strided slice copy per kernel tap) + one batched GEMM; conv_transpose is the GEMM then col2im
(one strided add per tap); pools loop over the taps with strided views. 16-bit floats are
computed in float32 and rounded back once.
"""
from __future__ import annotations

import itertools

import numpy as np

from irflow.executors.numpy.kernels import kernel
from irflow.ir.dtypes import is_float_numpy
from irflow.ops.conv_nd import check_nd_attrs, window_counts



def _require(ok: bool, what: str) -> None:
    if not ok:  # a ValueError makes the eager path re-run the type rule, which says why
        raise ValueError(what)


def _compute_dtype(x: np.ndarray) -> np.dtype:
    _require(is_float_numpy(x.dtype), "float input expected")
    return np.dtype(np.float32) if x.dtype.itemsize == 2 else x.dtype


def _pad(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    r = x.ndim - 2
    if not any(pads):
        return x
    shape = x.shape[:2] + tuple(x.shape[2 + i] + pads[i] + pads[r + i] for i in range(r))
    xp = np.full(shape, value, dtype=x.dtype)
    xp[(slice(None), slice(None)) + tuple(slice(pads[i], pads[i] + x.shape[2 + i]) for i in range(r))] = x
    return xp


def _crop(xp: np.ndarray, pads, sizes) -> np.ndarray:
    r = len(sizes)
    return np.ascontiguousarray(xp[(slice(None), slice(None)) + tuple(slice(pads[i], pads[i] + sizes[i]) for i in range(r))])


def _out_sizes(sizes, kernel_size, strides, pads, dilations) -> tuple[int, ...]:
    r = len(sizes)
    out = tuple((sizes[i] + pads[i] + pads[r + i] - dilations[i] * (kernel_size[i] - 1) - 1) // strides[i] + 1
                for i in range(r))
    _require(all(o > 0 for o in out), "empty output")
    return out


def _view(xp: np.ndarray, tap, out_sizes, strides, dilations) -> np.ndarray:
    """The (N, C, *out) strided view of padded xp at kernel tap ``tap``."""
    return xp[(slice(None), slice(None)) + tuple(
        slice(t * d, t * d + s * (o - 1) + 1, s) for t, o, s, d in zip(tap, out_sizes, strides, dilations))]


def _taps(kernel_size):
    return itertools.product(*(range(k) for k in kernel_size))


def _im2col(x, kernel_size, strides, pads, dilations, out_sizes) -> np.ndarray:
    xp = _pad(x, pads)
    cols = np.empty(x.shape[:2] + tuple(kernel_size) + tuple(out_sizes), x.dtype)
    for tap in _taps(kernel_size):
        cols[(slice(None), slice(None)) + tap] = _view(xp, tap, out_sizes, strides, dilations)
    return cols


def _add_bias(out: np.ndarray, b) -> np.ndarray:
    if b is not None:
        _require(b.shape == out.shape[1:2], "bias shape mismatch")
        out += b.astype(out.dtype, copy=False).reshape((-1,) + (1,) * (out.ndim - 2))
    return out


@kernel("conv")
def conv(x, w, b=None, strides=(), pads=(), dilations=(), groups=1):
    r = x.ndim - 2
    check_nd_attrs("conv", r, pads=pads, strides=strides, dilations=dilations)
    n, c = x.shape[:2]
    o, cg = w.shape[:2]
    kernel_size = w.shape[2:]
    _require(w.ndim == x.ndim and c == cg * groups and o % groups == 0, "channel mismatch")
    out_sizes = _out_sizes(x.shape[2:], kernel_size, strides, pads, dilations)
    ct = _compute_dtype(x)
    cols = _im2col(x.astype(ct, copy=False), kernel_size, strides, pads, dilations, out_sizes)
    k, p = int(np.prod(kernel_size)), int(np.prod(out_sizes))
    wm = w.astype(ct, copy=False).reshape(groups, o // groups, cg * k)
    out = np.matmul(wm, cols.reshape(n, groups, cg * k, p)).reshape((n, o) + out_sizes)
    return _add_bias(out, b).astype(x.dtype, copy=False)


def _col2im(cols, out_sizes, kernel_size, strides, pads, dilations, in_sizes) -> np.ndarray:
    """Adjoint of im2col: add cols (N, C, *K, *in) onto an (N, C, *out) image."""
    r = len(in_sizes)
    full = tuple(max(pads[i] + out_sizes[i], (in_sizes[i] - 1) * strides[i] + dilations[i] * (kernel_size[i] - 1) + 1)
                 for i in range(r))
    buf = np.zeros(cols.shape[:2] + full, dtype=cols.dtype)
    for tap in _taps(kernel_size):
        _view(buf, tap, in_sizes, strides, dilations)[...] += cols[(slice(None), slice(None)) + tap]
    return _crop(buf, pads, out_sizes)


@kernel("conv_transpose")
def conv_transpose(x, w, b=None, strides=(), pads=(), output_padding=(), dilations=(), groups=1):
    r = x.ndim - 2
    check_nd_attrs("conv_transpose", r, pads=pads, strides=strides, dilations=dilations, output_padding=output_padding)
    n, c = x.shape[:2]
    wc, og = w.shape[:2]
    kernel_size, in_sizes = w.shape[2:], x.shape[2:]
    _require(w.ndim == x.ndim and c == wc and c % groups == 0, "channel mismatch")
    out_sizes = tuple((in_sizes[i] - 1) * strides[i] - pads[i] - pads[r + i] + dilations[i] * (kernel_size[i] - 1) + 1
                      + output_padding[i] for i in range(r))
    _require(all(s > 0 for s in out_sizes), "empty output")
    ct = _compute_dtype(x)
    cg, k, p = c // groups, int(np.prod(kernel_size)), int(np.prod(in_sizes))
    wm = w.astype(ct, copy=False).reshape(groups, cg, og * k).transpose(0, 2, 1)
    cols = np.matmul(wm, x.astype(ct, copy=False).reshape(n, groups, cg, p))
    cols = cols.reshape((n, groups * og) + tuple(kernel_size) + tuple(in_sizes))
    out = _col2im(cols, out_sizes, kernel_size, strides, pads, dilations, in_sizes)
    return _add_bias(out, b).astype(x.dtype, copy=False)


@kernel("conv_weight_grad")
def conv_weight_grad(x, g, kernel_size=(), strides=(), pads=(), dilations=(), groups=1):
    r = x.ndim - 2
    check_nd_attrs("conv_weight_grad", r, pads=pads, kernel_size=kernel_size, strides=strides, dilations=dilations)
    n, c = x.shape[:2]
    o = g.shape[1]
    _require(c % groups == 0 and o % groups == 0, "channel mismatch")
    out_sizes = _out_sizes(x.shape[2:], kernel_size, strides, pads, dilations)
    _require(g.shape[2:] == out_sizes, "gradient shape mismatch")
    ct = _compute_dtype(x)
    cols = _im2col(x.astype(ct, copy=False), kernel_size, strides, pads, dilations, out_sizes)
    k, p = int(np.prod(kernel_size)), int(np.prod(out_sizes))
    cols = cols.reshape(n, groups, (c // groups) * k, p)
    gm = g.astype(ct, copy=False).reshape(n, groups, o // groups, p)
    dw = np.matmul(gm, cols.swapaxes(-1, -2)).sum(axis=0)  # (G, O/G, C/G*K)
    return dw.reshape((o, c // groups) + tuple(kernel_size)).astype(x.dtype, copy=False)


# -- pooling ----------------------------------------------------------------------------------------
def _pool_geometry(op, x, kernel_size, strides, pads, dilations):
    _compute_dtype(x)
    r = x.ndim - 2
    check_nd_attrs(op, r, pads=pads, kernel_size=kernel_size, strides=strides, dilations=dilations)
    _require(all(p < dilations[i % r] * (kernel_size[i % r] - 1) + 1 for i, p in enumerate(pads)), "pad too large")
    return _out_sizes(x.shape[2:], kernel_size, strides, pads, dilations)


def _window_argmax(op, x, kernel_size, strides, pads, dilations):
    """Per output position, the tap number (row-major) of the first maximum of its window."""
    out_sizes = _pool_geometry(op, x, kernel_size, strides, pads, dilations)
    xp = _pad(x, pads, -np.inf)
    taps = list(_taps(kernel_size))
    best = _view(xp, taps[0], out_sizes, strides, dilations).copy()
    idx = np.zeros(best.shape, dtype=np.int32)
    for k, tap in enumerate(taps[1:], start=1):
        v = _view(xp, tap, out_sizes, strides, dilations)
        better = v > best  # strict: ties keep the first, as PyTorch and onnxruntime
        np.maximum(best, v, out=best)
        idx[better] = k
    return idx, out_sizes, taps


@kernel("max_pool")
def max_pool(x, kernel_size=(), strides=(), pads=(), dilations=()):
    if x.dtype in (np.int8, np.uint8):  # ONNX MaxPool's integer types: padding is the dtype's minimum
        out_sizes = _pool_geometry("max_pool", x.astype(np.float32), kernel_size, strides, pads, dilations)
        xp = _pad(x, pads, np.iinfo(x.dtype).min)
    else:
        out_sizes = _pool_geometry("max_pool", x, kernel_size, strides, pads, dilations)
        xp = _pad(x, pads, -np.inf)
    taps = list(_taps(kernel_size))
    out = _view(xp, taps[0], out_sizes, strides, dilations).copy()
    for tap in taps[1:]:
        np.maximum(out, _view(xp, tap, out_sizes, strides, dilations), out=out)
    return out


@kernel("max_pool_grad")
def max_pool_grad(x, g, kernel_size=(), strides=(), pads=(), dilations=()):
    idx, out_sizes, taps = _window_argmax("max_pool_grad", x, kernel_size, strides, pads, dilations)
    _require(g.shape == idx.shape, "gradient shape mismatch")
    r = len(out_sizes)
    dxp = np.zeros(x.shape[:2] + tuple(x.shape[2 + i] + pads[i] + pads[r + i] for i in range(r)), dtype=x.dtype)
    zero = np.zeros((), dtype=x.dtype)
    for k, tap in enumerate(taps):
        _view(dxp, tap, out_sizes, strides, dilations)[...] += np.where(idx == k, g, zero)
    return _crop(dxp, pads, x.shape[2:])


@kernel("max_pool_indices")
def max_pool_indices(x, kernel_size=(), strides=(), pads=(), dilations=(), storage_order=0):
    """Flat positions in x of each window's first maximum (ONNX MaxPool's Indices): row-major,
    or with storage_order=1 the spatial dims column-major (first spatial dim fastest), N and C
    outermost either way (onnx's reference and onnxruntime count so)."""
    idx, out_sizes, taps = _window_argmax("max_pool_indices", x, kernel_size, strides, pads, dilations)
    r = len(out_sizes)
    tap_table = np.asarray(taps, dtype=np.int64).reshape(-1, r)[idx]  # (N, C, *out, r)
    nc = np.arange(x.shape[0], dtype=np.int64).reshape((-1,) + (1,) * (r + 1)) * x.shape[1]
    nc = nc + np.arange(x.shape[1], dtype=np.int64).reshape((1, -1) + (1,) * r)
    flat = np.zeros((), dtype=np.int64)
    order = range(r) if storage_order == 0 else reversed(range(r))
    for i in order:
        start = (np.arange(out_sizes[i], dtype=np.int64) * strides[i] - pads[i]).reshape((-1,) + (1,) * (r - 1 - i))
        flat = flat * x.shape[2 + i] + start + tap_table[..., i] * dilations[i]
    return nc * int(np.prod(x.shape[2:], dtype=np.int64)) + flat


@kernel("max_pool_pick")
def max_pool_pick(x, y, kernel_size=(), strides=(), pads=(), dilations=()):
    _require(x.shape == y.shape, "shape mismatch")
    idx, out_sizes, taps = _window_argmax("max_pool_pick", x, kernel_size, strides, pads, dilations)
    yp = _pad(y, pads)
    out = np.empty(idx.shape, dtype=y.dtype)
    for k, tap in enumerate(taps):
        np.copyto(out, _view(yp, tap, out_sizes, strides, dilations), where=idx == k)
    return out


@kernel("avg_pool")
def avg_pool(x, kernel_size=(), strides=(), pads=(), dilations=()):
    out_sizes = _pool_geometry("avg_pool", x, kernel_size, strides, pads, dilations)
    ct = _compute_dtype(x)
    xp = _pad(x.astype(ct, copy=False), pads)
    taps = list(_taps(kernel_size))
    total = _view(xp, taps[0], out_sizes, strides, dilations).copy()
    for tap in taps[1:]:
        total += _view(xp, tap, out_sizes, strides, dilations)
    total /= window_counts(x.shape[2:], kernel_size, strides, pads, dilations, out_sizes, ct)
    return total.astype(x.dtype, copy=False)


@kernel("avg_pool_grad")
def avg_pool_grad(g, x, kernel_size=(), strides=(), pads=(), dilations=()):
    out_sizes = _pool_geometry("avg_pool_grad", x, kernel_size, strides, pads, dilations)
    _require(g.shape == x.shape[:2] + out_sizes, "gradient shape mismatch")
    ct = _compute_dtype(g)
    share = g.astype(ct, copy=False) / window_counts(x.shape[2:], kernel_size, strides, pads, dilations, out_sizes, ct)
    r = len(out_sizes)
    dxp = np.zeros(x.shape[:2] + tuple(x.shape[2 + i] + pads[i] + pads[r + i] for i in range(r)), dtype=ct)
    for tap in _taps(kernel_size):
        _view(dxp, tap, out_sizes, strides, dilations)[...] += share
    return _crop(dxp, pads, x.shape[2:]).astype(g.dtype, copy=False)
