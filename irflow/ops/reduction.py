"""Reductions: reduce_sum/mean/max/min/prod and logsumexp over axes, argmax/argmin, cumsum.

Conventions shared by the whole family:

- Axes. The public functions take ``axis=`` as NumPy and TF do: an int, a tuple of ints, or
  None for all axes; negative axes count from the end. The IR attr is ``axes`` (a tuple or
  None) plus ``keepdims`` (bool). ``axis=()`` reduces nothing (NumPy's rule), not everything
  (ONNX's default). An axis out of range is a ShapeError naming the op and the rank.
- Symbolic dims. Type rules only drop or keep dims, so "batch" and None dims pass through;
  VJP rules never read a static size they do not have (``reduce_mean``'s count is computed in
  the graph from ``shape_of`` when a reduced dim is symbolic, a constant otherwise).
- Dtypes. Outputs keep the input dtype (float32 stays float32; int8 sums wrap in int8 as NumPy
  does). float16/bfloat16 accumulate in float32 in the NumPy kernels and are rounded once at the
  end. ``reduce_sum``/``reduce_prod``/``cumsum`` take int and float tensors, not bool (cast a
  mask first: a bool "sum" would be a logical or). ``reduce_mean`` and ``logsumexp`` take
  floats only: the mean of an int tensor is not an int, and irflow changes no dtype silently,
  so cast first. ``reduce_max``/``reduce_min``/``argmax``/``argmin`` take any dtype.
- Empty reductions. A sum over a size-0 axis is 0, a product 1, a mean NaN (0/0, as NumPy).
  ``reduce_max``/``reduce_min``/``logsumexp``/``argmax``/``argmin`` have no identity, so a
  known size-0 reduced dim is a ShapeError when the type rule runs (a symbolic dim that turns
  out 0 at run time fails in the executor instead).
- NaN. As NumPy: a slice holding a NaN has max/min NaN and argmax/argmin the index of its
  first NaN (the ONNX lowering adds what onnxruntime needs to agree); sums and products
  propagate NaN anyway.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from irflow.errors import DTypeError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import TensorType
from irflow.ops.common import bind, norm_axes
from irflow.ops.batching import reduction_rule
from irflow.ops.extension import HANDLERS, handler
from irflow.ops.registry import Attr, defbatch, defop, defvjp

_AXES = {"axes": Attr("ints", default=None, optional=True), "keepdims": Attr("bool", default=False)}


# -- type-rule helpers ----------------------------------------------------------------------

def _check_dtype(op: str, dtype: DType, kinds: str) -> None:
    if kinds == "float" and not dtype.is_float:
        raise DTypeError(f"{op} takes float tensors, got {dtype.value}: cast to a float dtype first (irf.cast)")
    if kinds == "numeric" and dtype is DType.bool:
        raise DTypeError(f"{op} takes int or float tensors, got bool: cast the mask to an int or float dtype first (irf.cast)")


def _check_nonempty(op: str, x: TensorType, axes: tuple[int, ...]) -> None:
    for a in axes:
        if x.shape[a] == 0:
            raise ShapeError(f"{op}: cannot reduce over axis {a} of size 0 (shape {x.shape}): {op} of nothing is undefined")


def reduced_type(x: TensorType, axes, keepdims: bool, op: str, dtype: DType | None = None) -> TensorType:
    """The type of ``x`` reduced over ``axes`` (None: all), keeping size-1 dims if ``keepdims``."""
    ax = norm_axes(axes, x.rank, op)
    if keepdims:
        shape = tuple(1 if i in ax else d for i, d in enumerate(x.shape))
    else:
        shape = tuple(d for i, d in enumerate(x.shape) if i not in ax)
    return TensorType(dtype=dtype or x.dtype, shape=shape)


def _reduction_rule(op: str, kinds: str, nonempty: bool = False):
    def type_rule(x: TensorType, axes, keepdims) -> TensorType:
        _check_dtype(op, x.dtype, kinds)
        if nonempty:
            _check_nonempty(op, x, norm_axes(axes, x.rank, op))
        return reduced_type(x, axes, keepdims, op)

    type_rule.__name__ = f"{op}_type"
    return type_rule


def _axes_attr(axis) -> tuple[int, ...] | None:
    if axis is None:
        return None
    if isinstance(axis, int):
        return (axis,)
    return tuple(int(a) for a in axis)


# -- VJP helpers ----------------------------------------------------------------------------

def keep_reduced(t, x, axes, keepdims):
    """Give a reduced tensor ``t`` size-1 dims on the reduced axes (a no-op if ``keepdims``)."""
    if not keepdims:
        ax = norm_axes(axes, x.type.rank, "reduce")
        if ax:
            t = bind("expand_dims", t, axes=ax)
    return t


def restore_reduced(g, x, axes, keepdims):
    """Bring a reduced gradient back to ``x``'s rank (size 1 on reduced axes), then broadcast to x."""
    return bind("broadcast_like", keep_reduced(g, x, axes, keepdims), x)


def _reciprocal_count(x, axes):
    """1 / (how many elements each output of a reduction of ``x`` over ``axes`` averages).

    A Python float when every reduced dim is a known int. Otherwise computed in the graph
    from the run-time shape (shape_of, gather, reduce_prod) in float32 (float64 for float64
    x) and only then cast to x's dtype: a float16 count would overflow above 65504, while its
    reciprocal stays representable up to about 1.6e7. A count of 0 is read as 1: x is then
    empty and so is its gradient, which must not be computed from 1/0.
    """
    ax = norm_axes(axes, x.type.rank, "reduce_mean")
    dims = [x.type.shape[a] for a in ax]
    if all(isinstance(d, int) for d in dims):
        return 1.0 / max(math.prod(dims), 1)
    count = bind("reduce_prod", bind("gather", bind("shape_of", x), np.asarray(ax, dtype=np.int64), axis=0))
    wide = DType.float64 if x.type.dtype is DType.float64 else DType.float32
    reciprocal = 1.0 / bind("cast", bind("maximum", count, 1), dtype=wide)
    return reciprocal if wide is x.type.dtype else bind("cast", reciprocal, dtype=x.type.dtype)


# -- reduce_sum -----------------------------------------------------------------------------

defop("reduce_sum", _reduction_rule("reduce_sum", "numeric"), attrs=_AXES, family="reduction",
      doc="Sum over axes; over a size-0 axis the sum is 0.")
defvjp("reduce_sum", lambda g, x, *, out, axes, keepdims: restore_reduced(g, x, axes, keepdims))
defbatch("reduce_sum", reduction_rule("reduce_sum"))


def reduce_sum(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Any:
    """Sum over ``axis`` (int, tuple or None for all); the dtype stays (int8 sums wrap in int8).

    >>> irf.reduce_sum(irf.tensor([[1.0, 2.0], [3.0, 4.0]]), axis=1).numpy()
    array([3., 7.], dtype=float32)
    """
    if type(x) in HANDLERS:  # an irf.ragged.RaggedTensor
        return handler(x, "reduce_sum")(x, axis=axis, keepdims=keepdims)
    return bind("reduce_sum", x, axes=_axes_attr(axis), keepdims=keepdims)


# -- reduce_mean ----------------------------------------------------------------------------

defop("reduce_mean", _reduction_rule("reduce_mean", "float"), attrs=_AXES, family="reduction",
      doc="Mean over axes (float tensors only); over a size-0 axis it is NaN.")


defbatch("reduce_mean", reduction_rule("reduce_mean"))


@defvjp("reduce_mean")
def _reduce_mean_vjp(g, x, *, out, axes, keepdims):
    # Multiply by 1/n rather than divide by n: 1/n stays representable in float16 for counts
    # far beyond float16's largest finite value (65504). Scale the small reduced gradient and
    # then broadcast it (the same products, once per output instead of once per input).
    reciprocal = _reciprocal_count(x, axes)
    if not (isinstance(reciprocal, float) and reciprocal == 1.0):
        g = g * reciprocal
    return restore_reduced(g, x, axes, keepdims)


def reduce_mean(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Any:
    """Mean over ``axis`` (int, tuple or None for all). Float tensors only: cast ints first.

    >>> irf.reduce_mean(irf.tensor([[1.0, 2.0], [3.0, 4.0]]), axis=0).numpy()
    array([2., 3.], dtype=float32)
    """
    if type(x) in HANDLERS:  # an irf.ragged.RaggedTensor
        return handler(x, "reduce_mean")(x, axis=axis, keepdims=keepdims)
    return bind("reduce_mean", x, axes=_axes_attr(axis), keepdims=keepdims)


# -- reduce_max / reduce_min ----------------------------------------------------------------

defop("reduce_max", _reduction_rule("reduce_max", "any", nonempty=True), attrs=_AXES, family="reduction",
      doc="Maximum over axes; a known size-0 reduced axis is a ShapeError.")
defop("reduce_min", _reduction_rule("reduce_min", "any", nonempty=True), attrs=_AXES, family="reduction",
      doc="Minimum over axes; a known size-0 reduced axis is a ShapeError.")


def _extremum_vjp(is_max: bool):
    def rule(g, x, *, out, axes, keepdims):
        # The gradient is split evenly among the elements equal to the extremum, as in JAX.
        # `x == out` is written as "not beaten": for the max, out > x is false exactly at ties.
        outk = keep_reduced(out, x, axes, keepdims)
        beaten = bind("greater", outk, x) if is_max else bind("greater", x, outk)
        hit = bind("where", beaten, bind("zeros_like", x), bind("ones_like", x))
        count = bind("reduce_sum", hit, axes=axes, keepdims=True)
        return (keep_reduced(g, x, axes, keepdims) / count) * hit

    rule.__name__ = f"_reduce_{'max' if is_max else 'min'}_vjp"
    return rule


defvjp("reduce_max", _extremum_vjp(True))
defvjp("reduce_min", _extremum_vjp(False))
defbatch("reduce_max", reduction_rule("reduce_max"))
defbatch("reduce_min", reduction_rule("reduce_min"))


def reduce_max(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Any:
    """Maximum over ``axis``. Its gradient is shared evenly among tied maxima (as JAX).

    >>> irf.reduce_max(irf.tensor([[1.0, 5.0], [3.0, 4.0]]), axis=1).numpy()
    array([5., 4.], dtype=float32)
    """
    if type(x) in HANDLERS:  # an irf.ragged.RaggedTensor
        return handler(x, "reduce_max")(x, axis=axis, keepdims=keepdims)
    return bind("reduce_max", x, axes=_axes_attr(axis), keepdims=keepdims)


def reduce_min(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Any:
    """Minimum over ``axis``. Its gradient is shared evenly among tied minima (as JAX).

    >>> irf.reduce_min(irf.tensor([[1.0, 5.0], [3.0, 4.0]]), axis=1).numpy()
    array([1., 3.], dtype=float32)
    """
    if type(x) in HANDLERS:  # an irf.ragged.RaggedTensor
        return handler(x, "reduce_min")(x, axis=axis, keepdims=keepdims)
    return bind("reduce_min", x, axes=_axes_attr(axis), keepdims=keepdims)


# -- reduce_prod ----------------------------------------------------------------------------

defop("reduce_prod", _reduction_rule("reduce_prod", "numeric"), attrs=_AXES, family="reduction",
      doc="Product over axes; over a size-0 axis it is 1.")


defbatch("reduce_prod", reduction_rule("reduce_prod"))


@defvjp("reduce_prod")
def _reduce_prod_vjp(g, x, *, out, axes, keepdims):
    # d prod / d x_i = product of the other elements. out / x_i is that only without zeros, so
    # (as JAX) zeros are handled apart: with no zero in the slice the factor is p / x_i; with
    # exactly one, it is p (the product of the non-zeros) at the zero and 0 elsewhere; with two
    # or more, it is 0 everywhere. Built from ops that export to plain ONNX.
    zeros, ones = bind("zeros_like", x), bind("ones_like", x)
    nonzero = bind("where", bind("greater", x, zeros), ones, bind("where", bind("greater", zeros, x), ones, zeros))
    is_zero = ones - nonzero  # 1.0 exactly where x == 0 (also where x is NaN; NaN then propagates via x + 1)
    x_or_one = x + is_zero
    p = bind("reduce_prod", x_or_one, axes=axes, keepdims=True)
    n_zeros = bind("reduce_sum", is_zero, axes=axes, keepdims=True)
    factor = bind("where", bind("greater", n_zeros, 1.5), zeros,
                  bind("where", bind("greater", n_zeros, 0.5), p * is_zero, p / x_or_one))
    return keep_reduced(g, x, axes, keepdims) * factor


def reduce_prod(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Any:
    """Product over ``axis``. Its gradient is exact with zeros in the input too (as JAX).

    >>> irf.reduce_prod(irf.tensor([[1.0, 2.0], [3.0, 4.0]]), axis=1).numpy()
    array([ 2., 12.], dtype=float32)
    """
    return bind("reduce_prod", x, axes=_axes_attr(axis), keepdims=keepdims)


# -- logsumexp ------------------------------------------------------------------------------

defop("logsumexp", _reduction_rule("logsumexp", "float", nonempty=True), attrs=_AXES, family="reduction",
      doc="log(sum(exp(x))) over axes, computed stably as m + log(sum(exp(x - m))), m the max.")


defbatch("logsumexp", reduction_rule("logsumexp"))


@defvjp("logsumexp")
def _logsumexp_vjp(g, x, *, out, axes, keepdims):
    # d/dx logsumexp(x) = softmax(x) = exp(x - out), stable because out >= max(x).
    weights = bind("exp", x - keep_reduced(out, x, axes, keepdims))
    return keep_reduced(g, x, axes, keepdims) * weights


def logsumexp(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Any:
    """``log(sum(exp(x)))`` over ``axis``, stable: the max is subtracted before ``exp``.

    An all -inf slice gives -inf; a +inf anywhere gives +inf; NaN propagates. Float only.

    >>> irf.logsumexp(irf.tensor([1000.0, 1000.0])).numpy()   # 1000 + log(2), no overflow
    array(1000.6932, dtype=float32)
    """
    return bind("logsumexp", x, axes=_axes_attr(axis), keepdims=keepdims)


# -- argmax / argmin ------------------------------------------------------------------------

_ARG_ATTRS = {"axis": Attr("int"), "keepdims": Attr("bool", default=False)}


def _arg_rule(op: str):
    def type_rule(x: TensorType, axis, keepdims) -> TensorType:
        ax = norm_axes(axis, x.rank, op)
        _check_nonempty(op, x, ax)
        return reduced_type(x, ax, keepdims, op, dtype=DType.int64)

    type_rule.__name__ = f"{op}_type"
    return type_rule


defop("argmax", _arg_rule("argmax"), attrs=_ARG_ATTRS, differentiable=False, family="reduction",
      doc="Index (int64) of the first maximum along one axis.")
defop("argmin", _arg_rule("argmin"), attrs=_ARG_ATTRS, differentiable=False, family="reduction",
      doc="Index (int64) of the first minimum along one axis.")
defbatch("argmax", reduction_rule("argmax", key="axis"))
defbatch("argmin", reduction_rule("argmin", key="axis"))


def argmax(x: Any, axis: int, keepdims: bool = False) -> Any:
    """Index (int64) of the maximum along ``axis``; the first one on ties, as NumPy.

    >>> irf.argmax(irf.tensor([[1.0, 5.0, 5.0], [3.0, 2.0, 1.0]]), axis=1).numpy()
    array([1, 0])
    """
    return bind("argmax", x, axis=int(axis), keepdims=keepdims)


def argmin(x: Any, axis: int, keepdims: bool = False) -> Any:
    """Index (int64) of the minimum along ``axis``; the first one on ties, as NumPy.

    >>> irf.argmin(irf.tensor([[1.0, 1.0, 5.0], [3.0, 2.0, 1.0]]), axis=1).numpy()
    array([0, 2])
    """
    return bind("argmin", x, axis=int(axis), keepdims=keepdims)


# -- cumsum ---------------------------------------------------------------------------------

_CUMSUM_ATTRS = {"axis": Attr("int"), "exclusive": Attr("bool", default=False), "reverse": Attr("bool", default=False)}


def _cumsum_type(x: TensorType, axis, exclusive, reverse) -> TensorType:
    _check_dtype("cumsum", x.dtype, "numeric")
    norm_axes(axis, x.rank, "cumsum")
    return x


defop("cumsum", _cumsum_type, attrs=_CUMSUM_ATTRS, family="reduction",
      doc="Running sum along one axis; exclusive and reverse as ONNX CumSum.")
defbatch("cumsum", reduction_rule("cumsum", key="axis", keeps_rank=True))


@defvjp("cumsum")
def _cumsum_vjp(g, x, *, out, axis, exclusive, reverse):
    # out_i = sum of x_j for j before i (or up to i), so x_j feeds every out_i after it: the
    # gradient is the running sum of g in the other direction, exclusive iff the forward was.
    return bind("cumsum", g, axis=axis, exclusive=exclusive, reverse=not reverse)


def cumsum(x: Any, axis: int, exclusive: bool = False, reverse: bool = False) -> Any:
    """Running sum along ``axis``. ``exclusive``: leave out the element itself (start at 0);
    ``reverse``: sum from the end. Both as ONNX CumSum; the dtype stays.

    >>> irf.cumsum(irf.tensor([1, 2, 3]), axis=0, exclusive=True).numpy()
    array([0, 1, 3])
    """
    return bind("cumsum", x, axis=int(axis), exclusive=exclusive, reverse=reverse)


__all__ = [
    "reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "logsumexp",
    "argmax", "argmin", "cumsum",
]
