"""NumPy kernels of the integer-quantized ops (``irflow/ops/quantized.py``).

Everything integer stays int32 (NumPy's int32 matmul accumulates in int32, as ONNX says);
requantization is float64 arithmetic on the int32 sums, as onnx's reference does, then
round half to even and saturation.
"""
from __future__ import annotations

import numpy as np

from irflow.executors.numpy.kernels import kernel
from irflow.executors.numpy.kernels.conv_nd import _im2col, _out_sizes, _require
from irflow.ops.conv_nd import check_nd_attrs

_QUANT = (np.dtype(np.int8), np.dtype(np.uint8))


def _shifted(x: np.ndarray, zp, axis_from_end: int | None = None) -> np.ndarray:
    """x as int32 minus its zero point; a vector zero point lies along ``axis_from_end``."""
    _require(x.dtype in _QUANT, "8-bit input expected")
    out = x.astype(np.int32)
    if zp is not None:
        out -= _along(np.asarray(zp).astype(np.int32), x.ndim, axis_from_end)
    return out


def _along(v: np.ndarray, ndim: int, axis_from_end: int | None) -> np.ndarray:
    """A scalar, one-element or per-axis vector parameter shaped to broadcast against rank ndim."""
    if v.ndim == 0 or v.size == 1 and v.ndim == 1:
        return v.reshape(())
    if v.ndim == 1 and axis_from_end is not None:
        return v.reshape((-1,) + (1,) * (axis_from_end - 1))
    return v  # N-D (..., M, 1) / (..., 1, N) parameters broadcast as they are


def _requantize(acc: np.ndarray, multiplier: np.ndarray, y_zero_point) -> np.ndarray:
    zp = np.asarray(y_zero_point)
    info = np.iinfo(zp.dtype)
    y = acc.astype(np.float64) * multiplier.astype(np.float64) + zp.astype(np.float64).reshape(())
    return np.clip(np.rint(y), info.min, info.max).astype(zp.dtype)


def _scale_along(s, ndim: int, axis_from_end: int | None) -> np.ndarray:
    return _along(np.asarray(s), ndim, axis_from_end)


@kernel("matmul_integer")
def matmul_integer(a, b, a_zero_point=None, b_zero_point=None):
    a32 = _shifted(a, a_zero_point, 2 if a.ndim >= 2 else None)
    b32 = _shifted(b, b_zero_point, 1)
    return np.matmul(a32, b32)


@kernel("qlinear_matmul")
def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    acc = matmul_integer(a, b, a_zero_point, b_zero_point)
    rows = 2 if a.ndim >= 2 else None
    # the multiplier in the scales' dtype (as onnx's reference and onnxruntime form it)
    multiplier = _scale_along(a_scale, a.ndim, rows) * _scale_along(b_scale, b.ndim, 1) / np.asarray(y_scale).reshape(())
    return _requantize(acc, multiplier, y_zero_point)


def _conv_int32(x, w, x_zero_point, w_zero_point, strides, pads, dilations, groups) -> np.ndarray:
    r = x.ndim - 2
    check_nd_attrs("conv_integer", r, pads=pads, strides=strides, dilations=dilations)
    n, c = x.shape[:2]
    o, cg = w.shape[:2]
    _require(w.ndim == x.ndim and c == cg * groups and o % groups == 0, "channel mismatch")
    x32 = _shifted(x, x_zero_point)  # padding after the shift: padded taps are zero, as ONNX
    w32 = _shifted(w, w_zero_point, w.ndim)  # per output channel
    kernel_size = w.shape[2:]
    out_sizes = _out_sizes(x.shape[2:], kernel_size, strides, pads, dilations)
    cols = _im2col(x32, kernel_size, strides, pads, dilations, out_sizes)
    k, p = int(np.prod(kernel_size)), int(np.prod(out_sizes))
    wm = w32.reshape(groups, o // groups, cg * k)
    return np.matmul(wm, cols.reshape(n, groups, cg * k, p)).reshape((n, o) + out_sizes)


@kernel("conv_integer")
def conv_integer(x, w, x_zero_point=None, w_zero_point=None, strides=(), pads=(), dilations=(), groups=1):
    return _conv_int32(x, w, x_zero_point, w_zero_point, strides, pads, dilations, groups)


@kernel("qlinear_conv")
def qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, bias=None, strides=(),
                 pads=(), dilations=(), groups=1):
    acc = _conv_int32(x, w, x_zero_point, w_zero_point, strides, pads, dilations, groups)
    if bias is not None:
        _require(bias.dtype == np.int32 and bias.shape == (w.shape[0],), "bias must be int32, one per channel")
        acc += bias.reshape((-1,) + (1,) * (x.ndim - 2))
    per_channel = _scale_along(w_scale, x.ndim, x.ndim - 1)  # (O, 1, ..., 1): channels are axis 1 of y
    multiplier = np.asarray(x_scale).reshape(()) * per_channel / np.asarray(y_scale).reshape(())
    return _requantize(acc, multiplier, y_zero_point)
