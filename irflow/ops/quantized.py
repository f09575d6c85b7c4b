"""Integer-quantized ops: ONNX's MatMulInteger, ConvInteger, QLinearMatMul and QLinearConv.

Each is one IR op lowered to the same ONNX op, so an exported model keeps onnxruntime's
native integer kernels. The arithmetic is ONNX's: 8-bit inputs minus their zero points,
products accumulated in int32 (wrapping as int32 does, never widened or turned to float);
the QLinear ops then scale the int32 sums by ``a_scale * b_scale / y_scale`` (computed in the
scales' float dtype, applied in float64), round half to even, add the output zero point and
saturate to the output's 8-bit range.

Zero points and scales: a scalar (or one element) per tensor, or a vector: per row of ``a``
(M values) and per column of ``b`` (N values) for the matmuls, per output channel of ``w``
for the convolutions. Convolution attributes are ``conv_nd.py``'s (N-D, ONNX's pads order).

Not differentiable: integer outputs carry no gradient (autodiff differentiates floats only).
"""
from __future__ import annotations

from typing import Any

from irflow.errors import DTypeError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import TensorType
from irflow.ops.conv_nd import _CONV_ATTRS, _conv_type, _pads, _rank_of, _tuple
from irflow.ops.dispatch import bind
from irflow.ops.linalg import _matmul_type
from irflow.ops.registry import LOOP, defbatch, defop

QUANT_DTYPES = (DType.int8, DType.uint8)


def _quant(op: str, name: str, t: TensorType) -> None:
    if t.dtype not in QUANT_DTYPES:
        raise DTypeError(f"{op}: {name} must be int8 or uint8, got {t.dtype.value}")


def _zero_point(op: str, name: str, zp: TensorType | None, of: TensorType, per: Any = None) -> None:
    """A zero point has its tensor's dtype and is a scalar, one element, or ``per`` values."""
    if zp is None:
        return
    if zp.dtype != of.dtype:
        raise DTypeError(f"{op}: {name} must have its tensor's dtype {of.dtype.value}, got {zp.dtype.value}")
    _vector(op, name, zp, per)


def _vector(op: str, name: str, t: TensorType, per: Any) -> None:
    if t.rank == 0 or (t.rank == 1 and t.shape[0] in (1, None)):
        return
    if t.rank == 1 and per is not None and t.shape[0] == per:
        return
    if t.rank > 1 and name.startswith(("a_", "b_")):  # N-D matmul: (..., M, 1) / (..., 1, N), broadcast
        return
    raise ShapeError(f"{op}: {name} must be a scalar, one element or {per} values, got shape {t.shape}")


def _scale(op: str, name: str, t: TensorType, per: Any = None) -> None:
    if not t.dtype.is_float:
        raise DTypeError(f"{op}: {name} must be a float tensor, got {t.dtype.value}")
    _vector(op, name, t, per)


def _int32_shape(op: str, a: TensorType, b: TensorType) -> tuple:
    return _matmul_type(TensorType(dtype=DType.int32, shape=a.shape), TensorType(dtype=DType.int32, shape=b.shape)).shape


def _rows(t: TensorType) -> Any:
    return t.shape[-2] if t.rank >= 2 else None


# -- matmul_integer -------------------------------------------------------------------------------
def _matmul_integer_type(a, b, a_zero_point=None, b_zero_point=None):
    op = "matmul_integer"
    _quant(op, "a", a)
    _quant(op, "b", b)
    shape = _int32_shape(op, a, b)  # first: ranks >= 1, contracted dims agree
    _zero_point(op, "a_zero_point", a_zero_point, a, _rows(a))
    _zero_point(op, "b_zero_point", b_zero_point, b, b.shape[-1])
    return TensorType(dtype=DType.int32, shape=shape)


defop("matmul_integer", _matmul_integer_type, inputs=(2, 4), family="quantized", differentiable=False,
      doc="ONNX MatMulInteger: (a - a_zero_point) @ (b - b_zero_point) of 8-bit tensors, accumulated in int32.")
# Zero points are per row of a / per column of b: moving a batch axis in front would need them
# re-aligned for every layout; a loop over the batch keeps the rule obviously right.
defbatch("matmul_integer", LOOP)


def matmul_integer(a: Any, b: Any, a_zero_point: Any = None, b_zero_point: Any = None) -> Any:
    """ONNX MatMulInteger: ``(a - a_zero_point) @ (b - b_zero_point)`` in int32.

    >>> irf.matmul_integer(np.full((2, 3), 5, "uint8"), np.full((3, 2), 2, "uint8"), np.uint8(1)).numpy()
    array([[24, 24],
           [24, 24]], dtype=int32)
    """
    return bind("matmul_integer", a, b, a_zero_point, b_zero_point)


# -- qlinear_matmul -------------------------------------------------------------------------------
def _qlinear_matmul_type(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    op = "qlinear_matmul"
    for name, t in (("a", a), ("b", b), ("y_zero_point", y_zero_point)):
        _quant(op, name, t)
    shape = _int32_shape(op, a, b)
    _zero_point(op, "a_zero_point", a_zero_point, a, _rows(a))
    _zero_point(op, "b_zero_point", b_zero_point, b, b.shape[-1])
    _scale(op, "a_scale", a_scale, _rows(a))
    _scale(op, "b_scale", b_scale, b.shape[-1])
    _scale(op, "y_scale", y_scale)
    _vector(op, "y_zero_point", y_zero_point, None)
    if a_scale.dtype != b_scale.dtype:
        raise DTypeError(f"{op}: a_scale and b_scale must share a float dtype, got {a_scale.dtype.value} "
                         f"and {b_scale.dtype.value}")
    return TensorType(dtype=y_zero_point.dtype, shape=shape)


defop("qlinear_matmul", _qlinear_matmul_type, inputs=8, family="quantized", differentiable=False,
      doc="ONNX QLinearMatMul: the int32 product of zero-point-shifted 8-bit a and b, requantized to y's scale "
          "and zero point.")
defbatch("qlinear_matmul", LOOP)  # as matmul_integer: per-row / per-column parameters


def qlinear_matmul(a: Any, a_scale: Any, a_zero_point: Any, b: Any, b_scale: Any, b_zero_point: Any,
                   y_scale: Any, y_zero_point: Any) -> Any:
    """ONNX QLinearMatMul: ``saturate(round((a - a_zp) @ (b - b_zp) * a_scale * b_scale / y_scale) + y_zp)``.

    >>> u8, f32 = np.uint8, np.float32
    >>> irf.qlinear_matmul(np.full((1, 2), 10, u8), f32(0.5), u8(0), np.full((2, 1), 4, u8), f32(0.25), u8(0),
    ...                    f32(1.0), u8(3)).numpy()
    array([[13]], dtype=uint8)
    """
    return bind("qlinear_matmul", a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point)


# -- conv_integer / qlinear_conv ------------------------------------------------------------------
def _conv_geometry(op: str, x: TensorType, w: TensorType, attrs: dict) -> tuple:
    """The N-D conv's output shape (its type rule, on float stand-ins for the 8-bit tensors)."""
    fx, fw = (TensorType(dtype=DType.float32, shape=t.shape) for t in (x, w))
    try:
        return _conv_type(fx, fw, **attrs).shape
    except (ShapeError, DTypeError) as e:
        raise type(e)(str(e).replace("conv:", f"{op}:", 1)) from None


def _conv_integer_type(x, w, x_zero_point=None, w_zero_point=None, **attrs):
    op = "conv_integer"
    _quant(op, "x", x)
    _quant(op, "w", w)
    shape = _conv_geometry(op, x, w, attrs)  # first: ranks and channels
    _zero_point(op, "x_zero_point", x_zero_point, x)
    _zero_point(op, "w_zero_point", w_zero_point, w, w.shape[0])
    return TensorType(dtype=DType.int32, shape=shape)


defop("conv_integer", _conv_integer_type, inputs=(2, 4), attrs=_CONV_ATTRS, family="quantized",
      differentiable=False,
      doc="ONNX ConvInteger: N-D convolution of zero-point-shifted 8-bit x and w, accumulated in int32.")
# The batch could fold into N as conv's does, but x_zero_point is per tensor and w's per output
# channel: kept simple as a loop (quantized inference graphs are rarely vmapped).
defbatch("conv_integer", LOOP)


def _qlinear_conv_type(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, bias=None,
                       **attrs):
    op = "qlinear_conv"
    for name, t in (("x", x), ("w", w), ("y_zero_point", y_zero_point)):
        _quant(op, name, t)
    shape = _conv_geometry(op, x, w, attrs)
    _zero_point(op, "x_zero_point", x_zero_point, x)
    _zero_point(op, "w_zero_point", w_zero_point, w, w.shape[0])
    _scale(op, "x_scale", x_scale)
    _scale(op, "w_scale", w_scale, w.shape[0])
    _scale(op, "y_scale", y_scale)
    _vector(op, "y_zero_point", y_zero_point, None)
    if bias is not None and (bias.dtype != DType.int32 or bias.rank != 1):
        raise DTypeError(f"{op}: the bias must be a 1-D int32 tensor (one per output channel), got {bias}")
    return TensorType(dtype=y_zero_point.dtype, shape=shape)


defop("qlinear_conv", _qlinear_conv_type, inputs=(8, 9), attrs=_CONV_ATTRS, family="quantized",
      differentiable=False,
      doc="ONNX QLinearConv: conv_integer plus an int32 bias, requantized to y's scale and zero point.")
defbatch("qlinear_conv", LOOP)  # as conv_integer


def _conv_attrs(x: Any, op: str, strides, pads, dilations, groups) -> dict:
    r = _rank_of(x, op)
    return dict(strides=_tuple(strides, r, "strides", op), pads=_pads(pads, r, op),
                dilations=_tuple(dilations, r, "dilations", op), groups=int(groups))


def conv_integer(x: Any, w: Any, x_zero_point: Any = None, w_zero_point: Any = None, strides: Any = 1,
                 pads: Any = 0, dilations: Any = 1, groups: int = 1) -> Any:
    """ONNX ConvInteger: N-D convolution of ``x - x_zero_point`` with ``w - w_zero_point`` in int32.

    >>> irf.conv_integer(np.full((1, 1, 3, 3), 3, "uint8"), np.ones((1, 1, 2, 2), "uint8"), np.uint8(1)).numpy()
    array([[[[8, 8],
             [8, 8]]]], dtype=int32)
    """
    return bind("conv_integer", x, w, x_zero_point, w_zero_point,
                **_conv_attrs(x, "conv_integer", strides, pads, dilations, groups))


def qlinear_conv(x: Any, x_scale: Any, x_zero_point: Any, w: Any, w_scale: Any, w_zero_point: Any, y_scale: Any,
                 y_zero_point: Any, bias: Any = None, strides: Any = 1, pads: Any = 0, dilations: Any = 1,
                 groups: int = 1) -> Any:
    """ONNX QLinearConv: ``saturate(round((conv_integer + bias) * x_scale * w_scale / y_scale) + y_zp)``.

    >>> u8, f32 = np.uint8, np.float32
    >>> irf.qlinear_conv(np.full((1, 1, 2, 2), 4, u8), f32(0.5), u8(0), np.ones((1, 1, 2, 2), u8), f32(1.0), u8(0),
    ...                  f32(2.0), u8(1)).numpy()
    array([[[[5]]]], dtype=uint8)
    """
    ins = [x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point] + ([bias] if bias is not None else [])
    return bind("qlinear_conv", *ins, **_conv_attrs(x, "qlinear_conv", strides, pads, dilations, groups))


__all__ = ["matmul_integer", "qlinear_matmul", "conv_integer", "qlinear_conv"]
