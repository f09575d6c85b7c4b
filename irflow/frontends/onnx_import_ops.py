"""The ONNX op table: ``IMPORTERS[op_type](node) -> output(s)``, elementwise, reduction and
linear-algebra ops (shape ops in ``onnx_import_shape_ops``, nn ops in ``onnx_import_nn``; the
table itself and the helpers importers share are in ``onnx_import_base``).

An importer gets a ``NodeView`` (IR input tensors, attributes, import-time input values) and
returns its outputs, computed with irflow ops through ``bind``. It runs symbolically (inside
the builder) or eagerly on NumPy when the inputs are known at import time (constant folding),
so it must not care which. Constants are passed as NumPy arrays, never created by hand.
Ops that ONNX defines as functions of other ops (Celu, HardSwish, LayerNormalization,
Attention, ...) need no entry here: the importer expands the schema's function body.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from irflow.ir.dtypes import FLOAT8_DTYPES, DType
from irflow.ops.dispatch import bind

from irflow.frontends.onnx_import_base import (  # noqa: F401  (importer, np_dtype, ... re-exported for older imports)
    IMPORTERS, NOT_FOLDABLE, ImportContext, NodeView, importer, ints, np_dtype, rank_of, scalar, to_dtype,
)


# -- elementwise -------------------------------------------------------------------------------------

_UNARY = {
    "Abs": "abs", "Neg": "neg", "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Reciprocal": "reciprocal",
    "Sin": "sin", "Cos": "cos", "Tan": "tan", "Tanh": "tanh", "Sigmoid": "sigmoid", "Relu": "relu",
    "Erf": "erf", "Floor": "floor", "Ceil": "ceil", "Round": "round", "Sign": "sign", "IsNaN": "isnan",
    "Not": "logical_not", "Identity": "identity", "Softplus": "softplus",
    "Asin": "asin", "Acos": "acos", "Atan": "atan",
    "BitwiseNot": "bitwise_not",
}
_BINARY = {
    "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div",
    "Equal": "equal", "Less": "less", "LessOrEqual": "less_equal", "Greater": "greater",
    "GreaterOrEqual": "greater_equal", "And": "logical_and", "Or": "logical_or", "Xor": "logical_xor",
    "BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor",
}


def _unary(ir_op: str) -> Callable:
    def imp(n):
        return bind(ir_op, n.input(0))
    imp.__name__ = f"import_{ir_op}"
    return imp


def _binary(ir_op: str) -> Callable:
    def imp(n):
        return bind(ir_op, n.input(0), n.input(1))
    imp.__name__ = f"import_{ir_op}"
    return imp


for _onnx, _ir in _UNARY.items():
    IMPORTERS[_onnx] = _unary(_ir)
for _onnx, _ir in _BINARY.items():
    IMPORTERS[_onnx] = _binary(_ir)


@importer("Sinh", "Cosh")
def _sinh_cosh(n):
    x = n.input(0)
    e, em = bind("exp", x), bind("exp", bind("neg", x))
    both = bind("sub", e, em) if n.op_type == "Sinh" else bind("add", e, em)
    return bind("mul", both, scalar(0.5, x))


@importer("Asinh")
def _asinh(n):  # log(x + sqrt(x^2 + 1))
    x = n.input(0)
    return bind("log", bind("add", x, bind("sqrt", bind("add", bind("mul", x, x), scalar(1, x)))))


@importer("Acosh")
def _acosh(n):  # log(x + sqrt(x^2 - 1))
    x = n.input(0)
    return bind("log", bind("add", x, bind("sqrt", bind("sub", bind("mul", x, x), scalar(1, x)))))


@importer("Atanh")
def _atanh(n):  # 0.5 * log((1 + x) / (1 - x))
    x = n.input(0)
    one = scalar(1, x)
    return bind("mul", bind("log", bind("div", bind("add", one, x), bind("sub", one, x))), scalar(0.5, x))


@importer("IsInf")
def _isinf(n):
    x = n.input(0)
    inf = bind("isinf", x)
    pos, neg = n.attr("detect_positive", 1), n.attr("detect_negative", 1)
    if pos and neg:
        return inf
    if not pos and not neg:
        return bind("logical_and", inf, np.asarray(False))
    side = bind("greater", x, scalar(0, x)) if pos else bind("less", x, scalar(0, x))
    return bind("logical_and", inf, side)


@importer("Pow")
def _pow(n):
    x, y = n.input(0), n.input(1)
    if np_dtype(x).kind in "iu":  # integer powers: computed in float64, cast back (exact for ints < 2**53)
        f = bind("pow", bind("cast", x, dtype="float64"), bind("cast", y, dtype="float64"))
        return bind("cast", f, dtype=x.dtype)
    if np_dtype(y) != np_dtype(x):  # ONNX allows e.g. a float base with an int exponent
        y = bind("cast", y, dtype=x.dtype)
    return bind("pow", x, y)


@importer("Mod")
def _mod(n):
    x, y = n.input(0), n.input(1)
    if not n.attr("fmod", 0):
        return bind("mod", x, y)  # the sign of the divisor, as Python and NumPy
    if np_dtype(x).kind in "iu":  # C fmod: the sign of the dividend; IR int div truncates
        return bind("sub", x, bind("mul", bind("div", x, y), y))
    q = bind("div", x, y)
    trunc = bind("where", bind("less", q, scalar(0, q)), bind("ceil", q), bind("floor", q))
    return bind("sub", x, bind("mul", trunc, y))


@importer("Max", "Min", "Sum", "Mean")
def _variadic(n):
    ir = {"Max": "maximum", "Min": "minimum", "Sum": "add", "Mean": "add"}[n.op_type]
    xs = [x for x in n.inputs if x is not None]
    out = xs[0]
    for x in xs[1:]:
        out = bind(ir, out, x)
    if n.op_type == "Mean":
        out = bind("div", out, scalar(len(xs), out))
    elif len(xs) == 1:
        out = bind("identity", out)
    return out


@importer("Where")
def _where(n):
    return bind("where", n.input(0), n.input(1), n.input(2))


@importer("PRelu")
def _prelu(n):
    x, slope = n.input(0), n.input(1)
    return bind("where", bind("less", x, scalar(0, x)), bind("mul", x, slope), x)


@importer("LeakyRelu")
def _leaky_relu(n):
    x = n.input(0)
    return bind("where", bind("less", x, scalar(0, x)), bind("mul", x, scalar(n.attr("alpha", 0.01), x)), x)


@importer("Elu")
def _elu(n):
    x = n.input(0)
    alpha = scalar(n.attr("alpha", 1.0), x)
    neg = bind("mul", alpha, bind("sub", bind("exp", bind("minimum", x, scalar(0, x))), scalar(1, x)))
    return bind("where", bind("greater", x, scalar(0, x)), x, neg)


@importer("Gelu")
def _gelu(n):
    # the gelu op, not its formula: export writes ONNX Gelu back (opset >= 20), which
    # onnxruntime runs as one fused kernel where the formula is five elementwise ops
    return bind("gelu", n.input(0), approximate=n.attr("approximate", "none"))


@importer("Clip")
def _clip(n):
    x = n.input(0)
    lo, hi = n.input(1), n.input(2)
    known = [n.ctx.known_value(n.input_names[i]) if n.has_input(i) else None for i in (1, 2)]
    if np_dtype(x).kind == "f" and all((k is not None and np.asarray(k).size == 1) or not n.has_input(i)
                                       for k, i in zip(known, (1, 2))):
        # constant bounds (ReLU6 and friends): the clip op, which exports back as ONNX Clip,
        # which onnxruntime fuses into a preceding Conv
        bounds = [None if k is None else float(np.asarray(k).reshape(())) for k in known]
        return bind("clip", x, min=bounds[0], max=bounds[1])
    if lo is not None:
        x = bind("maximum", x, lo)
    if hi is not None:
        x = bind("minimum", x, hi)
    return x if (lo is not None or hi is not None) else bind("identity", x)


def _cast_to(n, x, to):
    """Cast with ONNX's saturate (float8 targets) and round_mode (float8_e8m0fnu) when they differ
    from the defaults; elsewhere they change nothing and are left out of the IR node."""
    attrs = {}
    if not n.attr("saturate", 1) and (to in FLOAT8_DTYPES or to is DType.float8_e8m0fnu):
        attrs["saturate"] = False
    round_mode = n.attr("round_mode", "up")
    round_mode = round_mode.decode() if isinstance(round_mode, bytes) else round_mode
    if round_mode != "up" and to is DType.float8_e8m0fnu:
        attrs["round_mode"] = round_mode
    return bind("cast", x, dtype=to, **attrs)


@importer("Cast")
def _cast(n):
    return _cast_to(n, n.input(0), to_dtype(n.attr("to"), n.where()))


@importer("BitCast")
def _bit_cast(n):
    return bind("bit_cast", n.input(0), dtype=to_dtype(n.attr("to"), n.where()))


@importer("CastLike")
def _cast_like(n):
    return _cast_to(n, n.input(0), n.input(1).dtype)


# -- reductions --------------------------------------------------------------------------------------

def reduction_axes(n) -> tuple[int, ...] | None | str:
    """The axes of a Reduce* node (attribute before opset 18, or ReduceSum before 13; input after).

    Returns None for all axes, or "noop" when ``noop_with_empty_axes`` asks for the identity.
    """
    axes = n.attr("axes")
    if axes is None and n.has_input(1):
        axes = n.const_ints(1, "axes")
    if axes is None or len(axes) == 0:
        return "noop" if n.attr("noop_with_empty_axes", 0) else None
    rank = rank_of(n.input(0))
    axes = tuple(n.axis(a, rank, "axes") for a in axes)
    if len(set(axes)) != len(axes):
        raise n.error(f"axes {axes} repeat an axis")
    return axes


# What ONNX's Reduce* give over an empty set, for the IR reductions that refuse one.
_EMPTY_IDENTITY = {"reduce_max": ("-inf", False), "reduce_min": ("inf", True), "logsumexp": ("-inf", None)}


def _empty_reduction(n, ir_op: str, x, axes, keepdims: bool):
    """A constant when a reduced axis has static size 0 (the result depends on the shape only)."""
    shape = tuple(x.shape)
    ax = range(len(shape)) if axes is None else list(axes)  # already normalized by reduction_axes
    if ir_op not in _EMPTY_IDENTITY or not any(shape[a] == 0 for a in ax) or not all(isinstance(d, int) for d in shape):
        return None
    out = tuple(1 if i in ax else d for i, d in enumerate(shape)) if keepdims else tuple(d for i, d in enumerate(shape) if i not in ax)
    dtype = np_dtype(x)
    n.check_fits(out, dtype, "the result of an empty reduction")
    inf, boolean = _EMPTY_IDENTITY[ir_op]
    if dtype.kind == "b":
        value = boolean
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        value = info.min if inf == "-inf" else info.max
    else:
        value = float(inf)
    return np.full(out, value, dtype=dtype)


def _reduce(ir_op: str, pre: Callable | None = None, post: Callable | None = None) -> Callable:
    def imp(n):
        x = n.input(0)
        axes = reduction_axes(n)
        if axes == "noop":  # a reduction over no axis: pre and post still apply (ReduceL2 -> |x|), as onnx's reference
            if pre is None and post is None:
                return bind("identity", x)
            y = x if pre is None else pre(x)
            return y if post is None else post(y)
        empty = _empty_reduction(n, ir_op, x, axes, bool(n.attr("keepdims", 1)))
        if empty is not None:
            return empty if post is None else post(empty)
        if pre is not None:
            x = pre(x)
        out = bind(ir_op, x, axes=axes, keepdims=bool(n.attr("keepdims", 1)))
        return post(out) if post is not None else out
    return imp


IMPORTERS.update(
    ReduceSum=_reduce("reduce_sum"),
    ReduceMean=_reduce("reduce_mean"),
    ReduceMax=_reduce("reduce_max"),
    ReduceMin=_reduce("reduce_min"),
    ReduceProd=_reduce("reduce_prod"),
    ReduceLogSumExp=_reduce("logsumexp"),
    ReduceL1=_reduce("reduce_sum", pre=lambda x: bind("abs", x)),
    ReduceL2=_reduce("reduce_sum", pre=lambda x: bind("mul", x, x), post=lambda y: bind("sqrt", y)),
    ReduceSumSquare=_reduce("reduce_sum", pre=lambda x: bind("mul", x, x)),
    ReduceLogSum=_reduce("reduce_sum", post=lambda y: bind("log", y)),
)


@importer("ArgMax", "ArgMin")
def _arg(n):
    x = n.input(0)
    op = "argmax" if n.op_type == "ArgMax" else "argmin"
    axis = n.axis(n.attr("axis", 0), rank_of(x))
    keep = bool(n.attr("keepdims", 1))
    if not n.attr("select_last_index", 0):
        return bind(op, x, axis=axis, keepdims=keep)
    # The last index of the extremum = size - 1 - (first index in the flipped tensor).
    size = x.shape[axis]
    if not isinstance(size, int):
        raise n.unsupported("select_last_index needs a static size on the reduced axis")
    first = bind(op, bind("flip", x, axes=(axis,)), axis=axis, keepdims=keep)
    return bind("sub", np.asarray(size - 1, dtype=np.int64), first)


@importer("CumSum")
def _cumsum(n):
    axis = n.axis(n.const_scalar(1, "axis"), rank_of(n.input(0)))
    return bind("cumsum", n.input(0), axis=axis, exclusive=bool(n.attr("exclusive", 0)), reverse=bool(n.attr("reverse", 0)))


# -- linear algebra ----------------------------------------------------------------------------------

@importer("MatMul")
def _matmul(n):
    return bind("matmul", n.input(0), n.input(1))


@importer("Gemm")
def _gemm(n):
    a, b, c = n.input(0), n.input(1), n.input(2)
    if n.attr("transA", 0):
        a = bind("transpose", a, perm=(1, 0))
    if n.attr("transB", 0):
        b = bind("transpose", b, perm=(1, 0))
    y = bind("matmul", a, b)
    alpha, beta = n.attr("alpha", 1.0), n.attr("beta", 1.0)
    if alpha != 1.0:
        y = bind("mul", y, scalar(alpha, y))
    if c is not None and beta != 0.0:
        if beta != 1.0:
            c = bind("mul", c, scalar(beta, c))
        y = bind("add", y, c)
    return y


@importer("Einsum")
def _einsum(n):
    from irflow.ops.linalg import einsum  # rewrites '...' into letters for the given ranks

    return einsum(n.attr("equation").replace(" ", ""), *n.inputs)


@importer("CumProd")
def _cumprod(n):
    """Cumulative product by doubling (Hillis-Steele): log2(n) multiplications of the running
    product with itself shifted by 1, 2, 4, ... places (the vacated places filled with ones)."""
    x = n.input(0)
    a = n.axis(n.const_scalar(1, "axis"), rank_of(x))
    size = x.shape[a]
    if not isinstance(size, int):
        raise n.unsupported("CumProd needs a static size along its axis")
    def part(t, start, stop):
        return bind("slice", t, starts=(start,), ends=(stop,), axes=(a,), steps=None)

    def shift(t, k):  # t moved k places along the axis, ones in front
        return bind("concat", bind("ones_like", part(t, 0, k)), part(t, 0, size - k), axis=a)

    y = bind("flip", x, axes=(a,)) if n.attr("reverse", 0) else x
    if n.attr("exclusive", 0) and size:
        y = shift(y, 1)
    k = 1
    while k < size:
        y = bind("mul", y, shift(y, k))
        k *= 2
    if n.attr("reverse", 0):
        y = bind("flip", y, axes=(a,))
    return y if y is not x else bind("identity", x)
