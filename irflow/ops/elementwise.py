"""Elementwise ops: declaration, type rule and VJP rule of each, side by side.

Conventions (the same on every executor; the NumPy kernels and ONNX lowerings follow them):

- Binary ops broadcast as NumPy and promote dtypes with ``promote_dtype`` (int mixed with
  float is a DTypeError: cast explicitly). Python scalars are weakly typed (``x * 2.0`` keeps
  ``x``'s dtype), but a Python float with an integer tensor is a DTypeError.
- Float-only ops (exp, log, sin, sigmoid, gelu, pow, ...) reject int and bool tensors.
- Non-smooth ops (floor, ceil, round, sign) are differentiable with a zero gradient, as in
  JAX and PyTorch. Comparisons, logical ops, isnan and isinf have bool outputs and no
  gradient (``differentiable=False``).
- Gradients at kinks: relu and abs have gradient 0 at 0; maximum/minimum split the gradient
  evenly between tied inputs (as JAX); clip passes the gradient where min <= x <= max.
- A gradient of an input of a mixed-precision op (float32 * float64) is cast back to the
  input's own dtype; inputs that are not float get no gradient.

A VJP rule gets the output cotangent ``g``, the inputs and ``out`` (the primal output), all
symbolic, and returns one gradient per input, computed with irf ops so that gradients are IR.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from irflow.errors import DTypeError, IrflowError, IRValidationError, ShapeError
from irflow.ir.dtypes import DType, as_dtype
from irflow.ir.types import TensorType
from irflow.ops.common import _check_kind, binary_op, bind, broadcast_shape, promote_dtype, unary_op, unbroadcast
from irflow.ops.batching import defbatch_elementwise, elementwise_rule, same_shape_rule
from irflow.ops.registry import Attr, defbatch, defop, defvjp


def _reduce_to(grad: Any, out: Any, x: Any) -> Any:
    """``grad`` (shaped like ``out``) summed to ``x``'s shape in ``x``'s dtype; None if x is not float."""
    if not x.dtype.is_float:
        return None
    grad = unbroadcast(grad, out.type, x)
    if grad.dtype != x.dtype:
        grad = cast(grad, x.dtype)
    return grad


def _no_grad(g, x, *, out):
    """The gradient of a piecewise-constant op (floor, ceil, round, sign): zero (None)."""
    return None


# -- unary, arithmetic and transcendental --------------------------------------------------
neg = unary_op("neg", lambda g, x, *, out: -g, kinds="numeric", doc="""Negation, ``-x``.

>>> irf.neg(irf.tensor([1.5, -2.0])).numpy()
array([-1.5,  2. ], dtype=float32)
""")
abs = unary_op("abs", lambda g, x, *, out: g * sign(x), kinds="numeric", doc="""Absolute value. Its gradient at 0 is 0 (``sign(0)``), as in JAX and PyTorch.

>>> irf.abs(irf.tensor([-1.5, 2.0])).numpy()
array([1.5, 2. ], dtype=float32)
""")
sign = unary_op("sign", _no_grad, kinds="numeric", doc="""-1, 0 or 1 by the sign of ``x`` (NaN stays NaN). Gradient: zero.

>>> irf.sign(irf.tensor([-3.0, 0.0, 2.0])).numpy()
array([-1.,  0.,  1.], dtype=float32)
""")
exp = unary_op("exp", lambda g, x, *, out: g * out, doc="""``e ** x``.

>>> irf.exp(irf.tensor([0.0])).numpy()
array([1.], dtype=float32)
""")
log = unary_op("log", lambda g, x, *, out: g / x, doc="""Natural logarithm (NaN below 0, -inf at 0, as NumPy).

>>> irf.log(irf.tensor([1.0])).numpy()
array([0.], dtype=float32)
""")
log1p = unary_op("log1p", lambda g, x, *, out: g / (x + 1.0), doc="""``log(1 + x)``, accurate for tiny ``x``.

>>> irf.log1p(irf.tensor([0.0])).numpy()
array([0.], dtype=float32)
""")
expm1 = unary_op("expm1", lambda g, x, *, out: g * (out + 1.0), doc="""``exp(x) - 1``, accurate for tiny ``x``.

>>> irf.expm1(irf.tensor([0.0])).numpy()
array([0.], dtype=float32)
""")
sqrt = unary_op("sqrt", lambda g, x, *, out: g * 0.5 / out, doc="""Square root.

>>> irf.sqrt(irf.tensor([4.0, 9.0])).numpy()
array([2., 3.], dtype=float32)
""")
rsqrt = unary_op("rsqrt", lambda g, x, *, out: g * -0.5 * out / x, doc="""``1 / sqrt(x)``.

>>> irf.rsqrt(irf.tensor([4.0])).numpy()
array([0.5], dtype=float32)
""")
reciprocal = unary_op("reciprocal", lambda g, x, *, out: -g * out * out, doc="""``1 / x``.

>>> irf.reciprocal(irf.tensor([4.0])).numpy()
array([0.25], dtype=float32)
""")
sin = unary_op("sin", lambda g, x, *, out: g * cos(x), doc="""Sine (radians).

>>> irf.sin(irf.tensor([0.0])).numpy()
array([0.], dtype=float32)
""")
cos = unary_op("cos", lambda g, x, *, out: -g * sin(x), doc="""Cosine (radians).

>>> irf.cos(irf.tensor([0.0])).numpy()
array([1.], dtype=float32)
""")
tan = unary_op("tan", lambda g, x, *, out: g * (out * out + 1.0), doc="""Tangent (radians).

>>> irf.tan(irf.tensor([0.0])).numpy()
array([0.], dtype=float32)
""")
tanh = unary_op("tanh", lambda g, x, *, out: g * (1.0 - out * out), doc="""Hyperbolic tangent.

>>> irf.tanh(irf.tensor([0.0])).numpy()
array([0.], dtype=float32)
""")
sigmoid = unary_op("sigmoid", lambda g, x, *, out: g * out * (1.0 - out), doc="""``1 / (1 + exp(-x))``, computed without overflow and
with full relative accuracy for large negative ``x``.

>>> irf.sigmoid(irf.tensor([0.0])).numpy()
array([0.5], dtype=float32)
""")
erf = unary_op("erf", lambda g, x, *, out: g * (2.0 / math.sqrt(math.pi)) * exp(-(x * x)), doc="""The error function.

The NumPy kernel uses W. J. Cody's rational approximations (1969) in float64, accurate to
about 1e-16 relative; float32 (and float16/bfloat16) use the rational approximation of Eigen and
XLA evaluated in float64, at most 1.6 float32 ulps from the true value.

>>> irf.erf(irf.tensor([0.0])).numpy()
array([0.], dtype=float32)
""")
softplus = unary_op("softplus", lambda g, x, *, out: g * sigmoid(x), doc="""``log(1 + exp(x))``, computed as ``logaddexp(x, 0)`` (no overflow).

>>> irf.softplus(irf.tensor([0.0])).numpy()
array([0.6931472], dtype=float32)
""")
floor = unary_op("floor", _no_grad, doc="""Round down to an integer value (float in, same float out). Gradient: zero.

>>> irf.floor(irf.tensor([-1.5, 1.5])).numpy()
array([-2.,  1.], dtype=float32)
""")
ceil = unary_op("ceil", _no_grad, doc="""Round up to an integer value (float in, same float out). Gradient: zero.

>>> irf.ceil(irf.tensor([-1.5, 1.5])).numpy()
array([-1.,  2.], dtype=float32)
""")
round = unary_op("round", _no_grad, doc="""Round to the nearest integer value, halves to even (as NumPy and ONNX Round). Gradient: zero.

>>> irf.round(irf.tensor([0.5, 1.5, 2.5, -0.5])).numpy()
array([ 0.,  2.,  2., -0.], dtype=float32)
""")
relu = unary_op("relu", lambda g, x, *, out: _pass_where_positive(g, x), kinds="numeric", doc="""``max(x, 0)``. Its gradient at 0 is 0, as in PyTorch and JAX.

>>> irf.relu(irf.tensor([-1.0, 2.0])).numpy()
array([0., 2.], dtype=float32)
""")
isnan = unary_op("isnan", kinds="float", out_dtype=DType.bool, differentiable=False, doc="""True where ``x`` is NaN.

>>> irf.isnan(irf.tensor([float("nan"), 1.0])).numpy()
array([ True, False])
""")
isinf = unary_op("isinf", kinds="float", out_dtype=DType.bool, differentiable=False, doc="""True where ``x`` is +inf or -inf.

>>> irf.isinf(irf.tensor([float("-inf"), 1.0])).numpy()
array([ True, False])
""")
logical_not = unary_op("logical_not", kinds="bool", differentiable=False, doc="""Elementwise NOT of a bool tensor (also ``~x``).

>>> irf.logical_not(irf.tensor([True, False])).numpy()
array([False,  True])
""")


# -- relu_grad: relu's gradient as one node ------------------------------------------------
def _relu_grad_type(g: TensorType, x: TensorType) -> TensorType:
    _check_kind("relu_grad", x.dtype, "float")
    if g.dtype is not x.dtype:
        raise DTypeError(f"relu_grad: g and x must have the same float dtype, got {g.dtype.value} and {x.dtype.value}")
    # Equal shapes, no broadcasting; a symbolic or unknown dim can only be checked at run time.
    if g.rank != x.rank or any(isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(g.shape, x.shape)):
        raise ShapeError(f"relu_grad: g and x must have the same shape (no broadcasting), got {g.shape} and {x.shape}")
    return x


defop("relu_grad", _relu_grad_type, inputs=2, family="elementwise")
# Linear in g, so its VJP is itself; x only picks which elements pass (piecewise constant): no
# gradient for x, which is what makes grad-of-grad through relu work.
defvjp("relu_grad", lambda gg, g, x, *, out: (_pass_where_positive(gg, x), None))
defbatch("relu_grad", same_shape_rule("relu_grad"))  # its kernel takes equal shapes only


def relu_grad(g, x):
    """``g`` where ``x > 0``, else 0: the gradient of ``relu`` (TensorFlow's ReluGrad), one node
    instead of greater, zeros_like and where.

    ``g`` (the incoming gradient) and ``x`` (relu's input) share one float dtype and one shape.
    Where ``x <= 0`` or ``x`` is NaN the result is +0.0 even if ``g`` is NaN or Inf (as
    ``where(x > 0, g, 0)``, PyTorch's threshold_backward and TF's ReluGrad; ``g * (x > 0)``
    would give NaN there).

    >>> irf.relu_grad(irf.tensor([5.0, 6.0, 7.0]), irf.tensor([-1.0, 0.0, 2.0])).numpy()
    array([0., 0., 7.], dtype=float32)
    """
    return bind("relu_grad", g, x)


def _pass_where_positive(g, x):
    """``where(x > 0, g, 0)`` for VJP rules: one relu_grad node when ``g`` has ``x``'s type (the
    usual case); otherwise (a user's output gradient of another dtype, say) the where
    composition, which promotes and broadcasts as before."""
    if x.dtype.is_float and g.dtype is x.dtype and g.shape == x.shape:
        return relu_grad(g, x)
    return where(x > 0, g, zeros_like(g))


# -- unary with attributes ----------------------------------------------------------------
def _float_unary_type(name: str) -> Callable[..., TensorType]:
    def type_rule(x: TensorType, **attrs: Any) -> TensorType:
        _check_kind(name, x.dtype, "float")
        return x

    return type_rule


defop("leaky_relu", _float_unary_type("leaky_relu"), attrs={"alpha": Attr("float", default=0.01)}, family="elementwise")
defvjp("leaky_relu", lambda g, x, *, out, alpha: where(x > 0, g, g * alpha))
defbatch("leaky_relu", elementwise_rule("leaky_relu"))


def leaky_relu(x, alpha: float = 0.01):
    """``x`` where ``x >= 0``, else ``alpha * x``. The gradient at 0 is ``alpha``.

    >>> irf.leaky_relu(irf.tensor([-2.0, 3.0]), alpha=0.5).numpy()
    array([-1.,  3.], dtype=float32)
    """
    return bind("leaky_relu", x, alpha=float(alpha))


defop("elu", _float_unary_type("elu"), attrs={"alpha": Attr("float", default=1.0)}, family="elementwise")
# d/dx alpha * (exp(x) - 1) = alpha * exp(x) = out + alpha on the x <= 0 side.
defvjp("elu", lambda g, x, *, out, alpha: where(x > 0, g, g * (out + alpha)))
defbatch("elu", elementwise_rule("elu"))


def elu(x, alpha: float = 1.0):
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``.

    >>> irf.elu(irf.tensor([0.0, 3.0])).numpy()
    array([0., 3.], dtype=float32)
    """
    return bind("elu", x, alpha=float(alpha))


_GELU_MODES = ("none", "tanh")
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def _gelu_type(x: TensorType, approximate: str) -> TensorType:
    if approximate not in _GELU_MODES:
        raise IRValidationError(f"gelu: attribute approximate must be 'none' or 'tanh', got {approximate!r}")
    _check_kind("gelu", x.dtype, "float")
    return x


defop("gelu", _gelu_type, attrs={"approximate": Attr("str", default="none")}, family="elementwise")
defbatch("gelu", elementwise_rule("gelu"))


@defvjp("gelu")
def _gelu_vjp(g, x, *, out, approximate):
    if approximate == "tanh":
        # u = c (x + k x^3), gelu = x/2 (1 + tanh u): d = (1 + t)/2 + x/2 (1 - t^2) c (1 + 3k x^2)
        x2 = x * x
        t = tanh(x * (x2 * _GELU_CUBIC + 1.0) * _SQRT_2_OVER_PI)
        du = (x2 * (3.0 * _GELU_CUBIC) + 1.0) * _SQRT_2_OVER_PI
        return g * ((t + 1.0) * 0.5 + x * 0.5 * (1.0 - t * t) * du)
    # exact: d/dx x Phi(x) = Phi(x) + x phi(x)
    cdf = (erf(x * (1.0 / math.sqrt(2.0))) + 1.0) * 0.5
    pdf = exp(x * x * -0.5) * (1.0 / math.sqrt(2.0 * math.pi))
    return g * (cdf + x * pdf)


def gelu(x, approximate: str = "none"):
    """Gaussian error linear unit ``x * Phi(x)``.

    ``approximate="none"`` is the exact form ``x/2 (1 + erf(x / sqrt 2))``; ``"tanh"`` is
    ``x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (as PyTorch's ``approximate`` and ONNX Gelu).

    >>> irf.gelu(irf.tensor([0.0])).numpy()
    array([0.], dtype=float32)
    """
    return bind("gelu", x, approximate=approximate)


# -- cast -------------------------------------------------------------------------------------
CAST_ROUND_MODES = ("up", "down", "nearest")


def _cast_type(x: TensorType, dtype: Any, saturate: bool, round_mode: str) -> TensorType:
    if round_mode not in CAST_ROUND_MODES:
        raise DTypeError(f"cast: round_mode must be one of {', '.join(CAST_ROUND_MODES)}, got {round_mode!r}")
    return TensorType(dtype=as_dtype(dtype), shape=x.shape)


# saturate and round_mode are ONNX Cast's: they matter only for float8 targets (saturate) and
# float8_e8m0fnu (both); see irflow/executors/numpy/kernels/storage.py.
defop("cast", _cast_type, attrs={"dtype": Attr("dtype"), "saturate": Attr("bool", default=True),
                                 "round_mode": Attr("str", default="up")}, family="elementwise", storage=True)
defbatch("cast", elementwise_rule("cast"))


@defvjp("cast")
def _cast_vjp(g, x, *, out, dtype, **_):
    # Only float -> float carries a gradient, cast back to the input's precision.
    if x.dtype.is_float and out.dtype.is_float:
        return g if g.dtype == x.dtype else cast(g, x.dtype)
    return None


def cast(x, dtype, *, saturate: bool = True, round_mode: str = "up"):
    """Convert to ``dtype`` (a DType or its name). Float -> int truncates toward zero (NaN and
    out-of-range values are undefined, as in C, NumPy and ONNX); anything -> bool is ``x != 0``.

    To a float8 dtype values round to nearest even; ``saturate`` (ONNX Cast's attribute, on by
    default) clamps values beyond the largest finite one (infinities too) to it, otherwise they
    become inf (float8_e5m2) or NaN. To float8_e8m0fnu (powers of two) ``round_mode`` ("up",
    "down", "nearest") picks the exponent. See docs/dtypes.md.

    >>> irf.cast(irf.tensor([-1.7, 2.7]), "int32").numpy()
    array([-1,  2], dtype=int32)
    >>> irf.cast(irf.tensor([1000.0, 0.3]), "float8_e4m3fn").numpy()
    array([448, 0.3125], dtype='float8_e4m3fn')
    """
    if saturate is True and round_mode == "up":  # the defaults: keep the node's attrs short
        return bind("cast", x, dtype=as_dtype(dtype))
    return bind("cast", x, dtype=as_dtype(dtype), saturate=bool(saturate), round_mode=round_mode)


# -- clip -------------------------------------------------------------------------------------
def _clip_type(x: TensorType, min: Any, max: Any) -> TensorType:
    _check_kind("clip", x.dtype, "numeric")
    if x.dtype.is_int:
        for bound in (min, max):
            if bound is not None and not float(bound).is_integer():
                raise DTypeError(f"clip: bound {bound!r} is not an integer, but x is {x.dtype.value}")
    return x


_CLIP_ATTRS = {"min": Attr("float", default=None, optional=True), "max": Attr("float", default=None, optional=True)}
defop("clip", _clip_type, attrs=_CLIP_ATTRS, family="elementwise")
defbatch("clip", elementwise_rule("clip"))


@defvjp("clip")
def _clip_vjp(g, x, *, out, min, max):
    inside = None
    if min is not None:
        inside = x >= min
    if max is not None:
        below = x <= max
        inside = below if inside is None else logical_and(inside, below)
    return g if inside is None else where(inside, g, zeros_like(g))


def clip(x, min: float | None = None, max: float | None = None):
    """Limit ``x`` to ``[min, max]``: ``minimum(maximum(x, min), max)``; either bound may be None.

    The bounds are scalar attributes (as ONNX Clip's scalar inputs), in ``x``'s dtype: an int
    tensor needs integer bounds. For tensor bounds use ``maximum``/``minimum``. If min > max
    the result is ``max`` everywhere, as NumPy. The gradient flows where min <= x <= max.

    >>> irf.clip(irf.tensor([-2.0, 0.5, 3.0]), 0.0, 1.0).numpy()
    array([0. , 0.5, 1. ], dtype=float32)
    """
    return bind("clip", x, min=_scalar_attr(min), max=_scalar_attr(max))


def _scalar_attr(v: Any) -> int | float | None:
    """A bound as a plain Python int or float (NumPy scalars and 0-d arrays unwrapped)."""
    if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)):
        return v
    item = getattr(v, "item", None)
    v = item() if item is not None else v
    return v if isinstance(v, int) and not isinstance(v, bool) else float(v)


# -- binary arithmetic -------------------------------------------------------------------------
def _add_vjp(g, x, y, *, out):
    return _reduce_to(g, out, x), _reduce_to(g, out, y)


def _sub_vjp(g, x, y, *, out):
    return _reduce_to(g, out, x), _reduce_to(-g, out, y)


def _mul_vjp(g, x, y, *, out):
    return _reduce_to(g * y, out, x), _reduce_to(g * x, out, y)


def _div_vjp(g, x, y, *, out):
    gx = g / y
    return _reduce_to(gx, out, x), _reduce_to(-gx * out, out, y)


def _pow_vjp(g, x, y, *, out):
    # As JAX: y * x^(y-1) with the exponent 1 where y == 0 (so 0^0 gives 0, not 0 * inf), and
    # the exponent's gradient out * log(x) with log(x) replaced by 0 where x == 0.
    gx = g * y * pow(x, where(y == 0, 1.0, y - 1.0))
    gy = g * out * log(where(x == 0, 1.0, x))
    return _reduce_to(gx, out, x), _reduce_to(gy, out, y)


def _mod_vjp(g, x, y, *, out):
    # mod = x - floor(x / y) * y, so d/dy = -floor(x / y) (as PyTorch's remainder).
    return _reduce_to(g, out, x), _reduce_to(-g * floor(x / y), out, y)


def _extremum_vjp(g, x, y, *, out):
    # The winner gets the gradient; ties split it evenly (JAX's convention).
    zero, half = zeros_like(g), g * 0.5
    gx = where(x == y, half, where(x == out, g, zero))
    gy = where(x == y, half, where(y == out, g, zero))
    return _reduce_to(gx, out, x), _reduce_to(gy, out, y)


add = binary_op("add", _add_vjp, doc="""``x + y`` with NumPy broadcasting.

>>> irf.add(irf.tensor([1.0, 2.0]), 1.0).numpy()
array([2., 3.], dtype=float32)
""")
sub = binary_op("sub", _sub_vjp, doc="""``x - y`` with NumPy broadcasting.

>>> irf.sub(irf.tensor([1.0, 2.0]), 1.0).numpy()
array([0., 1.], dtype=float32)
""")
mul = binary_op("mul", _mul_vjp, doc="""``x * y`` with NumPy broadcasting.

>>> irf.mul(irf.tensor([1.0, 2.0]), 3.0).numpy()
array([3., 6.], dtype=float32)
""")
div = binary_op("div", _div_vjp, doc="""``x / y``. Integers divide truncating toward zero (as C and ONNX Div,
not floor as Python's ``//``); integer division by zero is undefined (NumPy gives 0).

>>> irf.div(irf.tensor([-7, 7], "int64"), 2).numpy()
array([-3,  3])
""")
pow = binary_op("pow", _pow_vjp, kinds="float", doc="""``x ** y`` for float tensors (cast integers first; ``x ** 2`` works
since a Python scalar takes ``x``'s dtype). A negative base with a non-integer exponent gives NaN.
The gradients follow JAX: 0 for the base where y == 0, 0 for the exponent where x == 0.

>>> irf.pow(irf.tensor([2.0, 3.0]), 2.0).numpy()
array([4., 9.], dtype=float32)
""")
mod = binary_op("mod", _mod_vjp, doc="""Remainder with the sign of the divisor, as NumPy's ``mod`` and Python's ``%``
(``x - floor(x / y) * y``), for ints and floats alike. Integer mod by zero is undefined (NumPy gives 0).

>>> irf.mod(irf.tensor([-7, 7], "int64"), 3).numpy()
array([2, 1])
""")
maximum = binary_op("maximum", _extremum_vjp, doc="""Elementwise maximum (NaN propagates). Ties split the gradient evenly.

>>> irf.maximum(irf.tensor([1.0, 5.0]), 3.0).numpy()
array([3., 5.], dtype=float32)
""")
minimum = binary_op("minimum", _extremum_vjp, doc="""Elementwise minimum (NaN propagates). Ties split the gradient evenly.

>>> irf.minimum(irf.tensor([1.0, 5.0]), 3.0).numpy()
array([1., 3.], dtype=float32)
""")


# -- comparisons and logic: bool outputs, no gradient ---------------------------------------------
def _predicate(name: str, kinds: str, what: str, example: str) -> Callable:
    doc = f"{what}, elementwise with broadcasting; a bool tensor (no gradient).\n\n>>> {example}\n"
    return binary_op(name, kinds=kinds, out_dtype=DType.bool, differentiable=False, doc=doc)


equal = _predicate("equal", "any", "``x == y``", "irf.equal(irf.tensor([1.0, 2.0]), 2.0).numpy()\narray([False,  True])")
not_equal = _predicate("not_equal", "any", "``x != y``", "irf.not_equal(irf.tensor([1.0, 2.0]), 2.0).numpy()\narray([ True, False])")
less = _predicate("less", "numeric", "``x < y``", "irf.less(irf.tensor([1.0, 2.0]), 2.0).numpy()\narray([ True, False])")
less_equal = _predicate("less_equal", "numeric", "``x <= y``", "irf.less_equal(irf.tensor([1.0, 3.0]), 2.0).numpy()\narray([ True, False])")
greater = _predicate("greater", "numeric", "``x > y``", "irf.greater(irf.tensor([1.0, 3.0]), 2.0).numpy()\narray([False,  True])")
greater_equal = _predicate("greater_equal", "numeric", "``x >= y``", "irf.greater_equal(irf.tensor([1.0, 2.0]), 2.0).numpy()\narray([False,  True])")
logical_and = _predicate("logical_and", "bool", "``x and y`` of bool tensors (also ``x & y``)",
                         "irf.logical_and(irf.tensor([True, True]), irf.tensor([True, False])).numpy()\narray([ True, False])")
logical_or = _predicate("logical_or", "bool", "``x or y`` of bool tensors (also ``x | y``)",
                        "irf.logical_or(irf.tensor([True, False]), irf.tensor([False, False])).numpy()\narray([ True, False])")
logical_xor = _predicate("logical_xor", "bool", "``x != y`` of bool tensors (also ``x ^ y``)",
                         "irf.logical_xor(irf.tensor([True, True]), irf.tensor([True, False])).numpy()\narray([False,  True])")


# -- where ----------------------------------------------------------------------------------------
def _where_type(cond: TensorType, x: TensorType, y: TensorType) -> TensorType:
    if cond.dtype is not DType.bool:
        raise DTypeError(f"where's condition must be bool, got {cond.dtype.value}")
    return TensorType(dtype=promote_dtype(x.dtype, y.dtype), shape=broadcast_shape(cond.shape, x.shape, y.shape))


defop("where", _where_type, inputs=3, family="elementwise")
defbatch("where", elementwise_rule("where"))


@defvjp("where")
def _where_vjp(g, cond, x, y, *, out):
    zero = zeros_like(g)
    return None, _reduce_to(where(cond, g, zero), out, x), _reduce_to(where(cond, zero, g), out, y)


def where(cond, x=None, y=None):
    """Pick ``x`` where ``cond`` is true, else ``y`` (all three broadcast; x and y promote).
    ``where(cond)`` alone is an error naming the two functions for its TF and PyTorch
    meanings (``irf.argwhere``: ``tf.where``'s (N, rank) rows; ``irf.nonzero(cond,
    as_tuple=True)``: ``torch.where``'s and ``np.where``'s tuple), which disagree.

    >>> irf.where(irf.tensor([True, False]), 1.0, irf.tensor([5.0, 6.0])).numpy()
    array([1., 6.], dtype=float32)
    """
    if x is None or y is None:
        if x is None and y is None:
            raise IrflowError("where(cond) with one argument: use irf.argwhere(cond) for tf.where's (N, rank) index "
                              "rows, or irf.nonzero(cond, as_tuple=True) for torch.where's / np.where's tuple")
        raise IrflowError(f"where: give both x and y (got only {'x' if y is None else 'y'})")
    if type(x) in (int, float) and type(y) in (int, float):
        # cond is no value operand, so two Python numbers are scalars alone and take the
        # defaults (float32 / int64, as torch.where); weak typing would try cond's bool
        dt = np.float32 if float in (type(x), type(y)) else np.int64
        x, y = np.asarray(x, dt), np.asarray(y, dt)
    return bind("where", cond, x, y)


# -- zeros_like / ones_like -------------------------------------------------------------------------
defop("zeros_like", lambda x: x, inputs=1, differentiable=False, family="elementwise")
defop("ones_like", lambda x: x, inputs=1, differentiable=False, family="elementwise")
defbatch_elementwise("zeros_like", "ones_like")


def zeros_like(x):
    """Zeros of ``x``'s shape and dtype.

    >>> irf.zeros_like(irf.tensor([1.0, 2.0])).numpy()
    array([0., 0.], dtype=float32)
    """
    return bind("zeros_like", x)


def ones_like(x):
    """Ones of ``x``'s shape and dtype.

    >>> irf.ones_like(irf.tensor([1, 2], "int32")).numpy()
    array([1, 1], dtype=int32)
    """
    return bind("ones_like", x)


def square(x):
    """The elementwise square ``x * x`` (TF ``tf.square``, JAX ``jnp.square``, ``torch.square``).

    A composite, not an op of its own: it is one ``mul`` node, so it differentiates, vectorizes
    and exports like ``mul`` (gradient ``2 * x * g``), and keeps ``x``'s dtype.

    >>> irf.square(irf.tensor([-3.0, 0.5, 2.0])).numpy()
    array([9.  , 0.25, 4.  ], dtype=float32)
    """
    return mul(x, x)


__all__ = [
    "neg", "abs", "sign", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tan",
    "tanh", "sigmoid", "relu", "relu_grad", "leaky_relu", "elu", "gelu", "erf", "softplus", "floor", "ceil", "round",
    "isnan", "isinf", "logical_not",
    "add", "sub", "mul", "div", "pow", "mod", "maximum", "minimum",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and", "logical_or", "logical_xor",
    "where", "cast", "clip", "zeros_like", "ones_like", "square",
]

# The factory-made functions report this module as their home (help(), doctest, the op table).
for _name in __all__:
    globals()[_name].__module__ = __name__
