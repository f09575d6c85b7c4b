"""ONNX lowerings of the elementwise ops (standard domain, opset 18 and up; default 21).

Choices, so that onnxruntime computes what the NumPy kernels compute:

- ONNX binary ops need equal input types; irflow promotes (float32 * float64 -> float64), so
  inputs whose dtype differs from the promoted one get a Cast first.
- Ops with no ONNX counterpart are decomposed: rsqrt = Reciprocal(Sqrt); log1p and expm1 use
  the Goldberg/Kahan formulas (``log(u) * x / (u - 1)`` with ``u = 1 + x``, and
  ``(u - 1) * x / log(u)`` with ``u = exp(x)``) for |x| < 0.5, which keep full relative accuracy
  for tiny x; mod on floats is ``Mod(fmod=1)`` plus the fix-up to the divisor's sign (ONNX's
  floor-mod form only accepts ints).
- onnxruntime's CPU provider has no float64 (or bfloat16) kernel for Tan, Erf, Softplus,
  Elu, LeakyRelu and exact Gelu (measured with onnxruntime 1.31). For those dtypes the lowering
  emits an equivalent of standard ops instead (float64 erf: the same Cody rational
  approximations as the NumPy kernel), so float64 graphs run on onnxruntime at full precision.
- ``relu`` on integers is ``Max(x, 0)`` (onnxruntime's Relu takes only a few int types).
- Gelu (opset 20) is used natively when available; below opset 20 it is decomposed.

Known onnxruntime (CPU, 1.31) gaps left as they are, the export being valid ONNX all the same:
bfloat16 (almost no kernels). (int16/uint16 Max/Min, Where and BitShift run in a wider type,
unsigned neg is ``0 - x``.) Its Sigmoid and float64 Gelu(tanh) are
accurate to about 1e-9 absolute, not to full relative precision for very negative inputs.
"""
from __future__ import annotations

import math

from irflow.executors.numpy.kernels.elementwise import (
    ERF_DEN, ERF_NUM, ERF_SMALL, ERFC_CLAMP, ERFC_MID, ERFC_MID_DEN, ERFC_MID_NUM, ERFC_TAIL_DEN, ERFC_TAIL_NUM,
    INV_SQRT_PI,
)
from irflow.executors.onnx.lowering import lowering, simple
from irflow.ir.dtypes import FLOAT8_DTYPES, DType
from irflow.ops.common import promote_dtype

# Float dtypes for which onnxruntime's CPU provider implements Tan, Erf, Softplus, Elu,
# LeakyRelu and Gelu(approximate="none"); other float dtypes get a decomposition.
_ORT_NATIVE = frozenset({DType.float16, DType.float32})

for _name, _onnx in [
    ("abs", "Abs"), ("sign", "Sign"), ("exp", "Exp"), ("log", "Log"), ("sqrt", "Sqrt"),
    ("reciprocal", "Reciprocal"), ("sin", "Sin"), ("cos", "Cos"), ("tanh", "Tanh"), ("sigmoid", "Sigmoid"),
    ("floor", "Floor"), ("ceil", "Ceil"), ("round", "Round"), ("isnan", "IsNaN"), ("isinf", "IsInf"),
    ("logical_not", "Not"), ("logical_and", "And"), ("logical_or", "Or"), ("logical_xor", "Xor"),
]:
    simple(_name, _onnx)


# -- helpers ---------------------------------------------------------------------------------
def _dtype_of(ctx, name: str) -> DType:
    types = getattr(ctx, "types", None)
    if types is None:  # an older LoweringContext without the type table
        types = ctx.graph.value_types()
    return types[name].dtype


def _onnx_dtype(dtype: DType) -> int:
    from irflow.executors.onnx.context import ONNX_DTYPE

    return ONNX_DTYPE[dtype]


def _cast_all(ctx, ins: list[str], dtype: DType) -> list[str]:
    """``ins`` with a Cast to ``dtype`` added for each input of another dtype."""
    return [name if _dtype_of(ctx, name) is dtype else ctx.emit("Cast", [name], to=_onnx_dtype(dtype))[0] for name in ins]


def _op(ctx, op_type: str, *inputs: str, **attrs) -> str:
    """Emit one single-output node; return its output name."""
    return ctx.emit(op_type, list(inputs), **attrs)[0]


def _emit_log1p(ctx, x: str, dtype: DType, out: list[str] | int = 1) -> list[str]:
    one = ctx.scalar(1, dtype)
    u = _op(ctx, "Add", x, one)
    d = _op(ctx, "Sub", u, one)
    log_u = _op(ctx, "Log", u)
    # Goldberg: log(u) * x / (u - 1) corrects the rounding of 1 + x; exact x where u == 1.
    accurate = _op(ctx, "Where", _op(ctx, "Equal", d, ctx.scalar(0, dtype)), x, _op(ctx, "Mul", log_u, _op(ctx, "Div", x, d)))
    small = _op(ctx, "Less", _op(ctx, "Abs", x), ctx.scalar(0.5, dtype))
    return ctx.emit("Where", [small, accurate, log_u], out)


def _emit_expm1(ctx, x: str, dtype: DType, out: list[str] | int = 1) -> list[str]:
    one = ctx.scalar(1, dtype)
    u = _op(ctx, "Exp", x)
    d = _op(ctx, "Sub", u, one)
    # Kahan: (u - 1) * x / log(u) corrects the rounding of exp(x); exact x where u == 1.
    accurate = _op(ctx, "Where", _op(ctx, "Equal", u, one), x, _op(ctx, "Mul", d, _op(ctx, "Div", x, _op(ctx, "Log", u))))
    small = _op(ctx, "Less", _op(ctx, "Abs", x), ctx.scalar(0.5, dtype))
    return ctx.emit("Where", [small, accurate, d], out)


def _emit_horner(ctx, coefs: tuple, z: str, dtype: DType) -> str:
    acc = _op(ctx, "Mul", z, ctx.scalar(coefs[0], dtype))
    for c in coefs[1:-1]:
        acc = _op(ctx, "Mul", _op(ctx, "Add", acc, ctx.scalar(c, dtype)), z)
    return _op(ctx, "Add", acc, ctx.scalar(coefs[-1], dtype))


def _emit_erf(ctx, x: str, dtype: DType, out: list[str] | int = 1) -> list[str]:
    """Erf natively where onnxruntime has it, else Cody's three rationals selected by |x|."""
    if dtype in _ORT_NATIVE:
        return ctx.emit("Erf", [x], out)
    s = lambda v: ctx.scalar(v, dtype)  # noqa: E731
    y = _op(ctx, "Abs", x)
    z = _op(ctx, "Mul", y, y)
    erf_small = _op(ctx, "Mul", y, _op(ctx, "Div", _emit_horner(ctx, ERF_NUM, z, dtype), _emit_horner(ctx, ERF_DEN, z, dtype)))
    # Each branch sees |x| clamped to its own interval, so no branch overflows; Where picks one.
    ym = _op(ctx, "Min", _op(ctx, "Max", y, s(ERF_SMALL)), s(ERFC_MID))
    mid = _op(ctx, "Div", _emit_horner(ctx, ERFC_MID_NUM, ym, dtype), _emit_horner(ctx, ERFC_MID_DEN, ym, dtype))
    mid = _op(ctx, "Mul", mid, _op(ctx, "Exp", _op(ctx, "Neg", _op(ctx, "Mul", ym, ym))))
    yt = _op(ctx, "Min", _op(ctx, "Max", y, s(ERFC_MID)), s(ERFC_CLAMP))
    yt2 = _op(ctx, "Mul", yt, yt)
    zt = _op(ctx, "Reciprocal", yt2)
    rat = _op(ctx, "Div", _emit_horner(ctx, ERFC_TAIL_NUM, zt, dtype), _emit_horner(ctx, ERFC_TAIL_DEN, zt, dtype))
    tail = _op(ctx, "Div", _op(ctx, "Sub", s(INV_SQRT_PI), _op(ctx, "Mul", zt, rat)), yt)
    tail = _op(ctx, "Mul", tail, _op(ctx, "Exp", _op(ctx, "Neg", yt2)))
    erfc_large = _op(ctx, "Where", _op(ctx, "LessOrEqual", y, s(ERFC_MID)), mid, tail)
    erf_abs = _op(ctx, "Where", _op(ctx, "LessOrEqual", y, s(ERF_SMALL)), erf_small, _op(ctx, "Sub", s(1), erfc_large))
    return ctx.emit("Where", [_op(ctx, "Less", x, s(0)), _op(ctx, "Neg", erf_abs), erf_abs], out)


# -- unary -----------------------------------------------------------------------------------
@lowering("rsqrt")
def _rsqrt(ctx, node, ins, outs):
    ctx.emit("Reciprocal", [_op(ctx, "Sqrt", ins[0])], outs)


@lowering("log1p")
def _log1p(ctx, node, ins, outs):
    _emit_log1p(ctx, ins[0], node.outputs[0].type.dtype, outs)


@lowering("expm1")
def _expm1(ctx, node, ins, outs):
    _emit_expm1(ctx, ins[0], node.outputs[0].type.dtype, outs)


@lowering("tan")
def _tan(ctx, node, ins, outs):
    if node.outputs[0].type.dtype in _ORT_NATIVE:
        ctx.emit("Tan", ins, outs)
    else:
        ctx.emit("Div", [_op(ctx, "Sin", ins[0]), _op(ctx, "Cos", ins[0])], outs)


@lowering("erf")
def _erf(ctx, node, ins, outs):
    _emit_erf(ctx, ins[0], node.outputs[0].type.dtype, outs)


@lowering("softplus")
def _softplus(ctx, node, ins, outs):
    dtype = node.outputs[0].type.dtype
    if dtype in _ORT_NATIVE:
        ctx.emit("Softplus", ins, outs)
        return
    # logaddexp(x, 0) = max(x, 0) + log1p(exp(-|x|))
    tail = _emit_log1p(ctx, _op(ctx, "Exp", _op(ctx, "Neg", _op(ctx, "Abs", ins[0]))), dtype)[0]
    ctx.emit("Add", [_op(ctx, "Relu", ins[0]), tail], outs)


@lowering("neg")
def _neg(ctx, node, ins, outs):
    dtype = node.outputs[0].type.dtype
    if dtype.is_unsigned:  # ONNX Neg takes no unsigned type; 0 - x wraps as NumPy's negative does
        ctx.emit("Sub", [ctx.scalar(0, dtype), ins[0]], outs)
    else:
        ctx.emit("Neg", ins, outs)


# Max/Min and Where in dtypes onnxruntime lacks: computed in one that holds every value (the
# casts back are exact); uint64 goes through int64 for Where, which only moves bits.
_MAXMIN_WIDEN = {DType.int16: DType.int32, DType.uint16: DType.uint32}
_WHERE_WIDEN = {DType.int16: DType.int32, DType.uint16: DType.uint32, DType.uint64: DType.int64}


def _widened(ctx, op_type: str, ins: list[str], outs: list[str], dtype: DType, wide: DType | None, keep: int = 0) -> None:
    """``op_type`` on ``ins`` (of ``dtype``; the first ``keep`` left as they are: Where's
    condition) computed in ``wide`` when that is not None, and cast back to ``dtype``."""
    if wide is None:
        ctx.emit(op_type, ins, outs)
        return
    args = [n if i < keep or n == "" else ctx.emit("Cast", [n], to=_onnx_dtype(wide))[0] for i, n in enumerate(ins)]
    ctx.emit("Cast", [_op(ctx, op_type, *args)], outs, to=_onnx_dtype(dtype))


@lowering("relu")
def _relu(ctx, node, ins, outs):
    dtype = node.outputs[0].type.dtype
    if dtype.is_float:
        ctx.emit("Relu", ins, outs)
    else:
        _widened(ctx, "Max", [ins[0], ctx.scalar(0, dtype)], outs, dtype, _MAXMIN_WIDEN.get(dtype))


@lowering("relu_grad")
def _relu_grad(ctx, node, ins, outs):
    # Where, not Mul by the mask: g * (x > 0) would turn NaN/Inf in g into NaN where x <= 0.
    g, x = ins
    zero = ctx.scalar(0, node.outputs[0].type.dtype)
    ctx.emit("Where", [_op(ctx, "Greater", x, zero), g, zero], outs)


@lowering("leaky_relu")
def _leaky_relu(ctx, node, ins, outs):
    dtype, alpha = node.outputs[0].type.dtype, float(node.attrs["alpha"])
    if dtype in _ORT_NATIVE:
        ctx.emit("LeakyRelu", ins, outs, alpha=alpha)
        return
    negative = _op(ctx, "Less", ins[0], ctx.scalar(0, dtype))
    ctx.emit("Where", [negative, _op(ctx, "Mul", ins[0], ctx.scalar(alpha, dtype)), ins[0]], outs)


@lowering("elu")
def _elu(ctx, node, ins, outs):
    dtype, alpha = node.outputs[0].type.dtype, float(node.attrs["alpha"])
    if dtype in _ORT_NATIVE:
        ctx.emit("Elu", ins, outs, alpha=alpha)
        return
    x = ins[0]
    expm1 = _emit_expm1(ctx, _op(ctx, "Min", x, ctx.scalar(0, dtype)), dtype)[0]
    positive = _op(ctx, "Greater", x, ctx.scalar(0, dtype))
    ctx.emit("Where", [positive, x, _op(ctx, "Mul", expm1, ctx.scalar(alpha, dtype))], outs)


@lowering("gelu")
def _gelu(ctx, node, ins, outs):
    dtype, approximate = node.outputs[0].type.dtype, node.attrs["approximate"]
    if ctx.opset >= 20 and (approximate == "tanh" or dtype in _ORT_NATIVE):
        ctx.emit("Gelu", ins, outs, approximate=approximate)
        return
    x = ins[0]
    s = lambda v: ctx.scalar(v, dtype)  # noqa: E731
    if approximate == "tanh":
        cubic = _op(ctx, "Add", _op(ctx, "Mul", _op(ctx, "Mul", x, x), s(0.044715)), s(1))
        inner = _op(ctx, "Mul", _op(ctx, "Mul", x, cubic), s(math.sqrt(2 / math.pi)))
        gate = _op(ctx, "Tanh", inner)
    else:
        gate = _emit_erf(ctx, _op(ctx, "Mul", x, s(1 / math.sqrt(2))), dtype)[0]
    ctx.emit("Mul", [_op(ctx, "Mul", x, s(0.5)), _op(ctx, "Add", gate, s(1))], outs)


@lowering("cast")
def _cast(ctx, node, ins, outs):
    to = node.outputs[0].type.dtype
    attrs = {}
    if not node.attrs.get("saturate", True) and (to in FLOAT8_DTYPES or to is DType.float8_e8m0fnu):
        attrs["saturate"] = 0  # ONNX's default is 1; the attribute is only allowed to matter here
    if node.attrs.get("round_mode", "up") != "up" and to is DType.float8_e8m0fnu:
        attrs["round_mode"] = node.attrs["round_mode"]
    ctx.emit("Cast", ins, outs, to=_onnx_dtype(to), **attrs)


@lowering("clip")
def _clip(ctx, node, ins, outs):
    dtype = node.outputs[0].type.dtype
    lo, hi = node.attrs["min"], node.attrs["max"]
    bounds = [ctx.scalar(b, dtype) if b is not None else "" for b in (lo, hi)]
    while bounds and bounds[-1] == "":
        bounds.pop()  # trailing optional inputs are simply left out
    _widened(ctx, "Clip", [ins[0], *bounds], outs, dtype, _MAXMIN_WIDEN.get(dtype))  # no 16-bit int Clip kernel


# -- binary ------------------------------------------------------------------------------------
def _binary(name: str, onnx_op: str, **attrs) -> None:
    """Lower a promoting binary op: cast the inputs to their common dtype, then one ONNX node."""

    def lower(ctx, node, ins, outs):
        dtype = promote_dtype(*(_dtype_of(ctx, i) for i in ins))
        ctx.emit(onnx_op, _cast_all(ctx, ins, dtype), outs, **attrs)

    lower.__name__ = f"lower_{name}"
    lowering(name)(lower)


@lowering("maximum")
def _maximum(ctx, node, ins, outs):
    dtype = node.outputs[0].type.dtype
    _widened(ctx, "Max", _cast_all(ctx, ins, dtype), outs, dtype, _MAXMIN_WIDEN.get(dtype))


@lowering("minimum")
def _minimum(ctx, node, ins, outs):
    dtype = node.outputs[0].type.dtype
    _widened(ctx, "Min", _cast_all(ctx, ins, dtype), outs, dtype, _MAXMIN_WIDEN.get(dtype))


for _name, _onnx in [
    ("add", "Add"), ("sub", "Sub"), ("mul", "Mul"), ("div", "Div"), ("pow", "Pow"), ("equal", "Equal"), ("less", "Less"), ("less_equal", "LessOrEqual"),
    ("greater", "Greater"), ("greater_equal", "GreaterOrEqual"),
]:
    _binary(_name, _onnx)


@lowering("not_equal")
def _not_equal(ctx, node, ins, outs):
    dtype = promote_dtype(*(_dtype_of(ctx, i) for i in ins))
    ctx.emit("Not", [_op(ctx, "Equal", *_cast_all(ctx, ins, dtype))], outs)


@lowering("mod")
def _mod(ctx, node, ins, outs):
    dtype = node.outputs[0].type.dtype
    x, y = _cast_all(ctx, ins, dtype)
    if not dtype.is_float:
        ctx.emit("Mod", [x, y], outs, fmod=0)  # ONNX's integer Mod already takes the divisor's sign
        return
    # C fmod has the dividend's sign; where it is nonzero and differs from y's, add y (as NumPy).
    r = _op(ctx, "Mod", x, y, fmod=1)
    zero = ctx.scalar(0, dtype)
    signs_differ = _op(ctx, "Xor", _op(ctx, "Less", r, zero), _op(ctx, "Less", y, zero))
    fix = _op(ctx, "And", _op(ctx, "Not", _op(ctx, "Equal", r, zero)), signs_differ)
    ctx.emit("Where", [fix, _op(ctx, "Add", r, y), r], outs)


@lowering("where")
def _where(ctx, node, ins, outs):
    dtype = node.outputs[0].type.dtype
    _widened(ctx, "Where", [ins[0], *_cast_all(ctx, ins[1:], dtype)], outs, dtype, _WHERE_WIDEN.get(dtype), keep=1)


@lowering("zeros_like")
def _zeros_like(ctx, node, ins, outs):
    # x * 0 would turn Inf/NaN into NaN; expanding a 0 to the shape of x does not.
    ctx.emit("Expand", [ctx.scalar(0, node.outputs[0].type.dtype), _op(ctx, "Shape", ins[0])], outs)


@lowering("ones_like")
def _ones_like(ctx, node, ins, outs):
    ctx.emit("Expand", [ctx.scalar(1, node.outputs[0].type.dtype), _op(ctx, "Shape", ins[0])], outs)
