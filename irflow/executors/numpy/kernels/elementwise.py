"""NumPy kernels of the elementwise ops.

Most ops are one NumPy ufunc in the table below: the eager path calls these directly, so a
plain ufunc is the fastest thing it can call. Kernels never change dtypes: a float32 input
gives a float32 output (Python-scalar constants are weak under NumPy 2's NEP 50, so
``x * 0.5`` stays float32). Composite kernels (sigmoid, erf, gelu, elu) compute float16 and
bfloat16 inputs in float32 and round once at the end, which is both more accurate and faster
than rounding after every step. erf (which NumPy lacks) is W. J. Cody's rational approximation in
float64 (about 1e-16 relative) and a float64-evaluated rational in float32 (at most 1.6 ulp).
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from irflow.executors.numpy.kernels import KERNELS, kernel, usable_out
from irflow.ir.dtypes import DType, as_dtype, is_float16_or_bfloat16

KERNELS.update(
    neg=np.negative,
    abs=np.absolute,
    sign=np.sign,
    exp=np.exp,
    log=np.log,
    log1p=np.log1p,
    expm1=np.expm1,
    sqrt=np.sqrt,
    reciprocal=np.reciprocal,
    sin=np.sin,
    cos=np.cos,
    tan=np.tan,
    tanh=np.tanh,
    floor=np.floor,
    ceil=np.ceil,
    round=np.rint,  # halves to even, as ONNX Round
    isnan=np.isnan,
    isinf=np.isinf,
    logical_not=np.logical_not,
    add=np.add,
    sub=np.subtract,
    mul=np.multiply,
    maximum=np.maximum,
    minimum=np.minimum,
    equal=np.equal,
    not_equal=np.not_equal,
    less=np.less,
    less_equal=np.less_equal,
    greater=np.greater,
    greater_equal=np.greater_equal,
    logical_and=np.logical_and,
    logical_or=np.logical_or,
    logical_xor=np.logical_xor,
    zeros_like=np.zeros_like,
    ones_like=np.ones_like,
)

@kernel("pow", out=True)
def pow_(x, y, out=None):
    """``x ** y``; a constant integral exponent 2, 3 or 4 (``x ** 3.0``, GELU's tanh form) runs as
    repeated multiplication: np.power takes the general pow() path per element, 200x slower
    (1.98 ms against 0.009 ms for ``x * x * x`` on one GPT-2 activation). The result may differ
    from pow() in the last bit, as onnxruntime's own Pow does for these exponents."""
    if y.size == 1 and y.ndim <= x.ndim and x.dtype.kind == "f" and y.dtype == x.dtype:
        p = y.reshape(())[()]
        if p == 2.0 or p == 3.0 or p == 4.0:
            if not usable_out(out, x.shape, x.dtype) or np.may_share_memory(out, x):
                out = np.empty(x.shape, x.dtype)
            np.multiply(x, x, out=out)
            if p == 3.0:
                np.multiply(out, x, out=out)
            elif p == 4.0:
                np.multiply(out, out, out=out)
            return out
    return np.power(x, y) if out is None else np.power(x, y, out=out)


# bfloat16 is recognised by name (is_bfloat16), not by DType.bfloat16.numpy, which would
# import ml_dtypes (0.6-1 s) with this module.
_is_low_precision = is_float16_or_bfloat16


def _widened(fn: Callable) -> Callable:
    """Run a composite float kernel in float32 for float16/bfloat16 inputs, rounding once."""

    @functools.wraps(fn)
    def run(x, **attrs):
        if _is_low_precision(x.dtype):
            return np.asarray(fn(x.astype(np.float32), **attrs)).astype(x.dtype)
        return fn(x, **attrs)

    return run


# -- activations ------------------------------------------------------------------------------
_ZEROS: dict[np.dtype, np.ndarray] = {}


def _zero_of(dtype: np.dtype) -> np.ndarray:
    """A shared 0-d zero of ``dtype``: np.maximum(x, it) skips the Python-int conversion that
    np.maximum(x, 0) pays on every call (0.34 against 0.59 us on a 10x10 float32)."""
    zero = _ZEROS.get(dtype)
    if zero is None:
        zero = _ZEROS[dtype] = np.zeros((), dtype)
    return zero


@kernel("relu", out=True)
def relu(x, out=None):
    if usable_out(out, x.shape, x.dtype):
        return np.maximum(x, _zero_of(x.dtype), out=out)
    return np.maximum(x, _zero_of(x.dtype))


@kernel("relu_grad", out=True)
def relu_grad(g, x, out=None):
    if g.shape != x.shape:  # eager dispatch then reports the type rule's error
        raise ValueError(f"relu_grad needs g and x of one shape, got {g.shape} and {x.shape}")
    if g.dtype == x.dtype and g.dtype.itemsize in _INT_OF_SIZE and g.size >= 1024:
        usable = usable_out(out, g.shape, g.dtype) and out.flags.c_contiguous
        return _keep_where_positive(g, x, out if usable else None)
    return np.where(x > 0, g, _zero_of(g.dtype))


@kernel("leaky_relu")
def leaky_relu(x, alpha=0.01):
    # alpha as a scalar of x's dtype: ml_dtypes' bfloat16 * Python float would give float32
    return np.where(x >= 0, x, x * x.dtype.type(alpha))


@kernel("elu")
@_widened
def elu(x, alpha=1.0):
    # expm1 of min(x, 0): the positive side is discarded anyway, and must not overflow.
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)) * alpha)


@kernel("sigmoid")
@_widened
def sigmoid(x):
    # exp(-|x|) lies in (0, 1]: no overflow, and for x < 0 the result e / (1 + e) keeps full
    # relative accuracy (1 - 1/(1 + e^-x) would cancel).
    e = np.abs(x, out=np.empty_like(x))  # out=: an array even for 0-d x, so in-place works
    np.negative(e, out=e)
    np.exp(e, out=e)
    out = np.where(x >= 0, 1, e)
    e += 1
    out /= e
    return out


@kernel("softplus")
def softplus(x):
    return np.logaddexp(x, 0)


@kernel("rsqrt")
def rsqrt(x):
    return np.reciprocal(np.sqrt(x))


@kernel("gelu")
@_widened
def gelu(x, approximate="none"):
    if approximate == "tanh":
        inner = x * (x * x * 0.044715 + 1) * math.sqrt(2 / math.pi)
        return x * 0.5 * (np.tanh(inner) + 1)
    if x.dtype == np.float64:
        # x Phi(x) = x/2 erfc(-x / sqrt 2): no cancellation in 1 + erf(.) for negative x.
        return x * 0.5 * erf_cody(x * -(1 / math.sqrt(2)), complement=True)
    return x * 0.5 * (erf_float32(x * (1 / math.sqrt(2))) + 1)


# -- erf: W. J. Cody, "Rational Chebyshev approximations for the error function",
# Math. Comp. 23 (1969), coefficients of SPECFUN's CALERF. Max relative error ~1e-16 in float64
# (checked in the tests against math.erf on a dense grid). Coefficients are highest degree first;
# the ONNX lowering of float64 erf evaluates the same rationals.
ERF_NUM = (1.85777706184603153e-1, 3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
            3.20937758913846947e03)
ERF_DEN = (1.0, 2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
ERFC_MID_NUM = (2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
                 2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03,
                 1.23033935479799725e03)
ERFC_MID_DEN = (1.0, 1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
                 1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03,
                 1.23033935480374942e03)
ERFC_TAIL_NUM = (1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
                  1.60837851487422766e-2, 6.58749161529837803e-4)
ERFC_TAIL_DEN = (1.0, 2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-01,
                  6.05183413124413191e-02, 2.33520497626869185e-03)
INV_SQRT_PI = 5.6418958354775628695e-1
ERF_SMALL = 0.46875  # |x| up to here: erf by one rational function; beyond: erfc
ERFC_MID = 4.0       # erfc by a rational in |x| up to here; beyond: an asymptotic rational in 1/x^2
ERFC_CLAMP = 30.0    # erfc(30) underflows float64; clamping keeps x*x finite


# The functions below work in place on their own temporaries: for large arrays every fresh
# temporary costs page faults, and erf is about 40 passes over the data.
def horner(coefs: tuple, z):
    """The polynomial with ``coefs`` (highest degree first) at ``z``."""
    acc = z * coefs[0]
    for c in coefs[1:-1]:
        acc += c
        acc *= z
    acc += coefs[-1]
    return acc


def _erfc_large(y):
    """erfc(y) for a 1-D array of y > ERF_SMALL (or NaN)."""
    out = np.empty_like(y)
    mid = y <= ERFC_MID
    ym = y[mid]
    ratio = horner(ERFC_MID_NUM, ym)
    ratio /= horner(ERFC_MID_DEN, ym)
    out[mid] = ratio
    far = ~mid
    yf = np.minimum(y[far], ERFC_CLAMP)  # NaN stays NaN
    z = yf * yf
    np.reciprocal(z, out=z)
    ratio = horner(ERFC_TAIL_NUM, z)
    ratio /= horner(ERFC_TAIL_DEN, z)
    ratio *= z
    np.subtract(INV_SQRT_PI, ratio, out=ratio)
    ratio /= yf
    out[far] = ratio
    # times exp(-y^2) = exp(-t^2) exp(-(y - t)(y + t)) with t = y rounded down to 1/16: t^2 is
    # exact, so exp's argument carries no rounding error (Cody's trick for relative accuracy).
    yc = np.minimum(y, ERFC_CLAMP)
    t = yc * 16
    np.floor(t, out=t)
    t /= 16
    d = yc - t
    yc += t
    d *= yc
    np.negative(d, out=d)
    np.exp(d, out=d)
    t *= t
    np.negative(t, out=t)
    np.exp(t, out=t)
    out *= t
    out *= d
    return out


def erf_cody(x, complement: bool = False):
    """erf(x), or erfc(x) with ``complement=True``, for a float32/float64 array."""
    x = np.asarray(x)
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    y = np.abs(flat)
    small = y <= ERF_SMALL
    xs = flat[small]
    z = xs * xs
    part = horner(ERF_NUM, z)
    part /= horner(ERF_DEN, z)
    part *= xs  # erf(x) for |x| <= ERF_SMALL
    if complement:
        np.subtract(1, part, out=part)
    out[small] = part
    large = ~small
    negative = flat[large] < 0
    part = _erfc_large(y[large])  # erfc(|x|)
    if complement:  # erfc(-y) = 2 - erfc(y)
        np.subtract(2, part, out=part, where=negative)
    else:  # erf(y) = 1 - erfc(y), as (0.5 - erfc) + 0.5 (Cody); erf(-y) = -erf(y)
        np.subtract(0.5, part, out=part)
        part += 0.5
        np.negative(part, out=part, where=negative)
    out[large] = part
    return out.reshape(x.shape)


# float32 and narrower: the rational approximation of Eigen and XLA on [-4, 4] (erf is 1 to
# float32 precision beyond), evaluated in float64: at most 1.6 float32 ulps from the true
# value. Half the passes of Cody's, and no masked gathers (which cost 20x a plain pass).
ERF32_NUM = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
             -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
ERF32_DEN = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
             -1.42647390514189e-02)


def erf_float32(x):
    """erf(x) for a float32/float16/bfloat16 array, in its own dtype."""
    c = np.asarray(x).astype(np.float64)
    np.clip(c, -4, 4, out=c)  # NaN stays NaN
    z = c * c
    r = horner(ERF32_NUM, z)
    r *= c
    r /= horner(ERF32_DEN, z)
    return r.astype(x.dtype)


@kernel("erf")
def erf(x):
    return erf_cody(x) if x.dtype == np.float64 else erf_float32(x)


# -- binary with a twist ------------------------------------------------------------------------
@kernel("div")
def div(x, y):
    if x.dtype.kind in "iub" and y.dtype.kind in "iub":
        if not np.all(y):  # NumPy would give 0 with a warning; every executor raises instead
            raise ZeroDivisionError("integer division by zero")
        # Truncate toward zero (C, ONNX), exactly: x - fmod(x, y) is a multiple of y.
        return np.floor_divide(x - np.fmod(x, y), y)
    return np.true_divide(x, y)


@kernel("mod", out=True)
def mod(x, y, out=None):
    """Floor mod: the sign of the divisor, for ints and floats (as NumPy and Python's ``%``)."""
    if y.dtype.kind in "iub" and x.dtype.kind in "iub" and not np.all(y):
        raise ZeroDivisionError("integer modulo by zero")
    if out is not None and usable_out(out, np.broadcast_shapes(np.shape(x), np.shape(y)), np.result_type(x, y)):
        return np.mod(x, y, out=out)
    return np.mod(x, y)


@kernel("where")
def where(cond, x, y):
    if x.dtype != y.dtype and _is_low_precision(x.dtype) and _is_low_precision(y.dtype):
        # float16 with bfloat16: NumPy has no common type; irflow's promotion says float32.
        x, y = x.astype(np.float32), y.astype(np.float32)
    if x.dtype == y.dtype and x.dtype.itemsize in _UINT_OF_SIZE and max(cond.size, x.size, y.size) >= 1024:
        return _select_bits(cond, x, y)
    return np.where(cond, x, y)


_UINT_OF_SIZE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _select_bits(cond, x, y):
    """np.where by bit masks: y ^ ((x ^ y) & mask). Exact for every value (NaN payloads too),
    and about 5x faster than np.where on an unpredictable mask, whose per-element branch
    dominates the ReLU gradient of an MLP step."""
    u = _UINT_OF_SIZE[x.dtype.itemsize]
    mask = cond.astype(u)
    np.negative(mask, out=mask)  # 1 -> all ones, 0 -> 0
    xb, yb = x.view(u), y.view(u)
    full = np.broadcast_shapes(cond.shape, x.shape, y.shape)
    t = np.bitwise_xor(xb, yb)
    t = np.bitwise_and(t, mask, out=t if t.shape == full else None)
    np.bitwise_xor(t, yb, out=t)
    return t.view(x.dtype)


_INT_OF_SIZE = {2: np.int16, 4: np.int32, 8: np.int64}
# The bits of +inf of the 16-bit floats (float16, bfloat16), whose comparisons NumPy runs slowly.
# The bits of +inf by dtype kind: float16 ('f'), bfloat16 ('V', ml_dtypes' custom dtype).
_INF_BITS_16 = {"f": 0x7C00, "V": 0x7F80}


def _keep_where_positive(g, x, out=None):
    """relu_grad by a bit mask: g's bits where x > 0, all zero bits (+0.0) elsewhere. Exactly
    np.where(x > 0, g, 0), NaN payloads included. On a float32 (8, 16, 32, 32): 35 us, against
    146 us for the greater, zeros_like and where kernels it replaces and 520 us for np.where,
    which branches on every element of a mask as unpredictable as a ReLU's."""
    inf_bits = _INF_BITS_16.get(x.dtype.kind) if is_float16_or_bfloat16(x.dtype) else None
    if inf_bits is None:
        positive = np.greater(x, 0)
    else:
        # For 16-bit floats, x > 0 means bits in [1, inf_bits] (sign clear, not zero, not NaN):
        # one unsigned compare of bits - 1 (0 wraps to 0xFFFF), 20-50x faster than NumPy's
        # float16/bfloat16 compare. The tests check it against np.greater on all 65536 values.
        bits = x.view(np.uint16) - np.uint16(1)
        positive = np.less(bits, np.uint16(inf_bits))
    mask = positive.view(np.int8)
    np.negative(mask, out=mask)  # True -> -1 (all bits set); negating the bytes before widening is cheapest
    if out is None:
        bits = mask.astype(_INT_OF_SIZE[g.dtype.itemsize])
    else:
        bits = out.view(_INT_OF_SIZE[g.dtype.itemsize])
        bits[...] = mask  # sign-extends -1 to all bits set
    bits &= g.view(bits.dtype)
    return out if out is not None else bits.view(g.dtype)


# -- cast, clip ----------------------------------------------------------------------------------
@kernel("cast")
def cast(x, dtype, saturate=True, round_mode="up"):
    to = as_dtype(dtype)
    if to.is_storage:  # float8, int4, ...: ONNX's saturation and rounding rules
        from irflow.executors.numpy.kernels.storage import to_storage

        return to_storage(x, to, saturate, round_mode)
    return x.astype(to.numpy, copy=False)


@kernel("clip")
def clip(x, min=None, max=None):
    if min is not None:
        x = np.maximum(x, _bound(min, x.dtype))
    if max is not None:
        x = np.minimum(x, _bound(max, x.dtype))
    return x


def _bound(value, dtype: np.dtype):
    """A clip bound as a scalar of x's dtype, so the result keeps it (np.clip would upcast
    bfloat16). 0.5 for an int tensor is a ValueError, which eager dispatch turns into the type
    rule's DTypeError."""
    bound = dtype.type(value)
    if dtype.kind in "iu" and bound != value:
        raise ValueError(f"clip bound {value!r} is not an integer")
    return bound
