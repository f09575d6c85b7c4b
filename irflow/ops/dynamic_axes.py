"""Ops whose axes are a run-time tensor (issue 17): what ONNX import emits when a Reduce*'s
``axes``, a Squeeze/Unsqueeze's ``axes`` or a CumSum/CumProd's ``axis`` is computed in the
graph instead of being a constant. Axes known at import keep the static ops (``reduce_sum``,
``squeeze``, ``cumsum``, ...); these ops take the axes as an INPUT.

- ``reduce_dynamic(x, axes; kind, keepdims, noop_with_empty_axes)``: ONNX Reduce{Sum, Mean,
  Max, Min, Prod} (opset 18 semantics): ``axes`` a 1-D int64 tensor, negatives from the end;
  an empty ``axes`` reduces every axis, or nothing when ``noop_with_empty_axes``. Unlike the
  static reduce_max / reduce_min (where a known empty reduction is a ShapeError), a max over an
  empty set is the dtype's lowest value (-inf for floats) and a min its highest, as ONNX says:
  whether a reduction is empty is known only at run time here.
- ``squeeze_dynamic`` / ``unsqueeze_dynamic``: ONNX Squeeze / Unsqueeze with run-time axes.
- ``cumsum_dynamic`` / ``cumprod_dynamic``: ONNX CumSum / CumProd with a run-time axis (a 0-D or
  one-element int32/int64 tensor).

Types: dims that depend on the run-time axes are None; the rank must be known, so the length
of the axes tensor must be static wherever it changes the rank (a ShapeError naming the op
otherwise). Batching: with unbatched axes the batch axis moves to the front and non-negative
axes shift by one (negative ones count from the end, unchanged); batched axes (one set of axes
per example) give each example its own result shape, so that node runs in a loop.
"""
from __future__ import annotations

import numpy as np

from irflow.errors import DTypeError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import TensorType
from irflow.ops.batching import LOOP_THIS, to_front
from irflow.ops.common import bind
from irflow.ops.registry import Attr, defbatch, defop, defvjp

REDUCE_KINDS = ("sum", "mean", "max", "min", "prod")


def _axes_vector(op: str, axes: TensorType) -> int | None:
    """Check a run-time axes input (1-D int64); return its static length or None."""
    if axes.dtype is not DType.int64 or axes.rank != 1:
        raise DTypeError(f"{op}: axes must be a 1-D int64 tensor, got {axes}")
    k = axes.shape[0]
    return k if isinstance(k, int) else None


def _shift(axes):
    """Run-time axes of one example -> the same axes of a value batched at axis 0: non-negative
    axes move right by one, negative ones (counted from the end) stay."""
    return bind("where", bind("less", axes, np.zeros((), axes.type.dtype.numpy)), axes,
                bind("add", axes, np.ones((), axes.type.dtype.numpy)))


# -- reduce_dynamic ------------------------------------------------------------------------------

def _reduce_dynamic_type(x: TensorType, axes: TensorType, kind: str, keepdims: bool,
                         noop_with_empty_axes: bool) -> TensorType:
    if kind not in REDUCE_KINDS:
        raise ShapeError(f"reduce_dynamic: kind must be one of {REDUCE_KINDS}, got {kind!r}")
    if kind in ("sum", "prod") and x.dtype is DType.bool:
        raise DTypeError(f"reduce_dynamic ({kind}) takes int or float tensors, got bool: cast first (irf.cast)")
    if kind == "mean" and not x.dtype.is_float:
        raise DTypeError(f"reduce_dynamic (mean) takes float tensors, got {x.dtype.value}: cast first (irf.cast)")
    k = _axes_vector("reduce_dynamic", axes)
    if k == 0:  # known at build time after all: nothing, or everything
        if noop_with_empty_axes:
            return x
        return TensorType(dtype=x.dtype, shape=(1,) * x.rank if keepdims else ())
    if k is not None and k > x.rank:
        raise ShapeError(f"reduce_dynamic: {k} axes for an input of rank {x.rank} ({x.shape})")
    if k == x.rank:  # distinct axes (ONNX requires it) as many as the rank: all of them
        return TensorType(dtype=x.dtype, shape=(1,) * x.rank if keepdims else ())
    if keepdims:  # which axes become 1 is known at run time only; a 1 stays a 1 either way
        return TensorType(dtype=x.dtype, shape=tuple(1 if d == 1 else None for d in x.shape))
    if k is None:
        raise ShapeError(f"reduce_dynamic: with keepdims=False the length of axes must be known to know the "
                         f"result's rank (axes has shape {axes.shape})")
    return TensorType(dtype=x.dtype, shape=(None,) * (x.rank - k))


defop("reduce_dynamic", _reduce_dynamic_type, inputs=2, family="dynamic_axes",
      attrs={"kind": Attr("str"), "keepdims": Attr("bool", default=True),
             "noop_with_empty_axes": Attr("bool", default=False)},
      doc="ONNX Reduce{Sum,Mean,Max,Min,Prod} with axes read at run time (opset 18 semantics).")


def _keep(t, axes, keepdims: bool):
    """A reduced tensor with size-1 dims back on the reduced axes (nothing to do if keepdims).
    An empty axes tensor inserts nothing: the result is then x itself (noop) or a scalar,
    which broadcasts against x as it is."""
    return t if keepdims else bind("unsqueeze_dynamic", t, axes)


def _reduce(x, axes, kind, **attrs):
    return bind("reduce_dynamic", x, axes, kind=kind, **attrs)


def _reciprocal_count(x, out):
    """1 / (elements per output) = size(out) / size(x), from the run-time shapes; both floored at
    1 (an empty x has an empty gradient, which must not come from 0/0). float32 (float64 for
    float64 x) before the cast to x's dtype, as reduction.py's _reciprocal_count."""
    wide = DType.float64 if x.type.dtype is DType.float64 else DType.float32

    def size(t):
        return bind("cast", bind("maximum", bind("reduce_prod", bind("shape_of", t)), np.int64(1)), dtype=wide)

    r = bind("div", size(out), size(x))
    return r if wide is x.type.dtype else bind("cast", r, dtype=x.type.dtype)


@defvjp("reduce_dynamic")
def _reduce_dynamic_vjp(g, x, axes, *, out, kind, keepdims, noop_with_empty_axes):
    attrs = dict(keepdims=True, noop_with_empty_axes=noop_with_empty_axes)
    gk = _keep(g, axes, keepdims)
    if kind == "sum":
        return bind("broadcast_like", gk, x), None
    if kind == "mean":
        return bind("broadcast_like", bind("mul", gk, _reciprocal_count(x, out)), x), None
    if kind in ("max", "min"):
        # Shared evenly among the tied extrema, as the static reduce_max's rule (and JAX).
        outk = _keep(out, axes, keepdims)
        beaten = bind("greater", outk, x) if kind == "max" else bind("greater", x, outk)
        hit = bind("where", beaten, bind("zeros_like", x), bind("ones_like", x))
        return bind("mul", bind("div", gk, _reduce(hit, axes, "sum", **attrs)), hit), None
    # prod: the product of the other elements, zeros handled apart (as the static rule)
    zeros, ones = bind("zeros_like", x), bind("ones_like", x)
    nonzero = bind("where", bind("greater", x, zeros), ones, bind("where", bind("greater", zeros, x), ones, zeros))
    is_zero = bind("sub", ones, nonzero)
    x_or_one = bind("add", x, is_zero)
    p = _reduce(x_or_one, axes, "prod", **attrs)
    n_zeros = _reduce(is_zero, axes, "sum", **attrs)
    factor = bind("where", bind("greater", n_zeros, np.asarray(1.5, x.type.dtype.numpy)), zeros,
                  bind("where", bind("greater", n_zeros, np.asarray(0.5, x.type.dtype.numpy)),
                       bind("mul", p, is_zero), bind("div", p, x_or_one)))
    return bind("mul", gk, factor), None


@defbatch("reduce_dynamic")
def _reduce_dynamic_batch(inputs, dims, size, *, kind, keepdims, noop_with_empty_axes):
    (x, axes), (dx, da) = inputs, dims
    if da is not None:  # axes per example: each example its own result shape
        return LOOP_THIS
    k = axes.type.shape[0]
    x = to_front(x, dx)
    attrs = dict(kind=kind, keepdims=keepdims, noop_with_empty_axes=noop_with_empty_axes)
    if k == 0 and not noop_with_empty_axes:  # "every axis" of an example: all but the batch
        static = {"sum": "reduce_sum", "mean": "reduce_mean", "max": "reduce_max", "min": "reduce_min",
                  "prod": "reduce_prod"}[kind]
        if kind in ("max", "min") and any(d == 0 for d in x.type.shape[1:]):
            return LOOP_THIS  # the static op refuses an empty max; the kernel's identity applies
        return bind(static, x, axes=tuple(range(1, x.type.rank)), keepdims=keepdims), 0
    if not isinstance(k, int):
        # An empty axes tensor would mean "every axis", the batch axis included: which case
        # applies is known only at run time.
        return LOOP_THIS
    return bind("reduce_dynamic", x, _shift(axes), **attrs), 0


def reduce_dynamic(x, axes, kind: str, keepdims: bool = True, noop_with_empty_axes: bool = False):
    """Reduce ``x`` over the axes in the 1-D int64 tensor ``axes``, read at run time, as ONNX
    Reduce{Sum,Mean,Max,Min,Prod} (opset 18): ``kind`` is "sum", "mean", "max", "min" or
    "prod"; an empty ``axes`` reduces everything (nothing with ``noop_with_empty_axes``); an
    empty max is the dtype's lowest value, an empty min its highest.

    >>> irf.reduce_dynamic(irf.tensor([[1.0, 2.0], [3.0, 4.0]]), irf.tensor(np.array([-1])), "sum").numpy()
    array([[3.],
           [7.]], dtype=float32)
    """
    return bind("reduce_dynamic", x, axes, kind=kind, keepdims=bool(keepdims),
                noop_with_empty_axes=bool(noop_with_empty_axes))


# -- squeeze_dynamic / unsqueeze_dynamic ---------------------------------------------------------

def _squeeze_dynamic_type(x: TensorType, axes: TensorType) -> TensorType:
    k = _axes_vector("squeeze_dynamic", axes)
    if k is None:
        raise ShapeError(f"squeeze_dynamic: the length of axes must be known to know the result's rank "
                         f"(axes has shape {axes.shape})")
    if k > x.rank:
        raise ShapeError(f"squeeze_dynamic: {k} axes for an input of rank {x.rank} ({x.shape})")
    maybe_one = [i for i, d in enumerate(x.shape) if not isinstance(d, int) or d == 1]
    if len(maybe_one) < k:
        raise ShapeError(f"squeeze_dynamic: {k} axes to squeeze but only {len(maybe_one)} dims of {x.shape} can be 1")
    if len(maybe_one) == k:  # the squeezed axes are exactly these
        return TensorType(dtype=x.dtype, shape=tuple(d for i, d in enumerate(x.shape) if i not in maybe_one))
    return TensorType(dtype=x.dtype, shape=(None,) * (x.rank - k))


def _unsqueeze_dynamic_type(x: TensorType, axes: TensorType) -> TensorType:
    k = _axes_vector("unsqueeze_dynamic", axes)
    if k is None:
        raise ShapeError(f"unsqueeze_dynamic: the length of axes must be known to know the result's rank "
                         f"(axes has shape {axes.shape})")
    if all(d == 1 for d in x.shape):  # ones inserted among ones
        return TensorType(dtype=x.dtype, shape=(1,) * (x.rank + k))
    return TensorType(dtype=x.dtype, shape=(None,) * (x.rank + k))


defop("squeeze_dynamic", _squeeze_dynamic_type, inputs=2, family="dynamic_axes",
      doc="ONNX Squeeze with axes read at run time (each squeezed dim must be 1).")
defop("unsqueeze_dynamic", _unsqueeze_dynamic_type, inputs=2, family="dynamic_axes",
      doc="ONNX Unsqueeze with axes (positions in the result) read at run time.")
defvjp("squeeze_dynamic", lambda g, x, axes, *, out: (bind("reshape_like", g, x), None))
defvjp("unsqueeze_dynamic", lambda g, x, axes, *, out: (bind("reshape_like", g, x), None))


def _squeeze_batch(op: str):
    def rule(inputs, dims, size):
        (x, axes), (dx, da) = inputs, dims
        if da is not None:  # axes per example: each example its own result shape
            return LOOP_THIS
        return bind(op, to_front(x, dx), _shift(axes)), 0

    rule.__name__ = f"batch_{op}"
    return rule


defbatch("squeeze_dynamic", _squeeze_batch("squeeze_dynamic"))
defbatch("unsqueeze_dynamic", _squeeze_batch("unsqueeze_dynamic"))


def squeeze_dynamic(x, axes):
    """Remove the size-1 axes of ``x`` listed in the 1-D int64 tensor ``axes`` (read at run
    time; negatives count from the end), as ONNX Squeeze.

    >>> irf.squeeze_dynamic(irf.tensor(np.zeros((2, 1, 3))), irf.tensor(np.array([1]))).shape
    (2, 3)
    """
    return bind("squeeze_dynamic", x, axes)


def unsqueeze_dynamic(x, axes):
    """Insert size-1 axes at the positions (in the result) listed in the 1-D int64 tensor
    ``axes``, read at run time, as ONNX Unsqueeze.

    >>> irf.unsqueeze_dynamic(irf.tensor(np.zeros((2, 3))), irf.tensor(np.array([0, -1]))).shape
    (1, 2, 3, 1)
    """
    return bind("unsqueeze_dynamic", x, axes)


# -- cumsum_dynamic / cumprod_dynamic ------------------------------------------------------------

_CUM_ATTRS = {"exclusive": Attr("bool", default=False), "reverse": Attr("bool", default=False)}


def _cum_type(op: str):
    def rule(x: TensorType, axis: TensorType, exclusive, reverse) -> TensorType:
        if x.dtype is DType.bool:
            raise DTypeError(f"{op} takes int or float tensors, got bool: cast first (irf.cast)")
        if x.rank == 0:
            raise ShapeError(f"{op}: x must have at least one axis")
        if axis.dtype not in (DType.int32, DType.int64) or axis.shape not in ((), (1,)):
            raise DTypeError(f"{op}: axis must be a 0-D (or one-element) int32/int64 tensor, got {axis}")
        return x

    rule.__name__ = f"{op}_type"
    return rule


defop("cumsum_dynamic", _cum_type("cumsum_dynamic"), inputs=2, attrs=_CUM_ATTRS, family="dynamic_axes",
      doc="ONNX CumSum with the axis read at run time.")
defop("cumprod_dynamic", _cum_type("cumprod_dynamic"), inputs=2, attrs=_CUM_ATTRS, family="dynamic_axes",
      doc="ONNX CumProd with the axis read at run time.")
# The running sum of g in the other direction, exclusive iff the forward was (as cumsum's rule).
defvjp("cumsum_dynamic", lambda g, x, axis, *, out, exclusive, reverse: (
    bind("cumsum_dynamic", g, axis, exclusive=exclusive, reverse=not reverse), None))


@defvjp("cumprod_dynamic")
def _cumprod_dynamic_vjp(g, x, axis, *, out, exclusive, reverse):
    # d out_i / d x_j = the product of the other factors of out_i. Before the first zero z of a
    # slice (in the scan's direction) that is out_i / x_j, so grad_j = (sum over later i of
    # g_i out_i) / x_j; at z it is the same sum of g_i times the product with x_z taken as 1;
    # after z every such product holds x_z = 0. Exact with zeros, no division by one.
    def cum(op, t, excl, rev):
        return bind(op, t, axis, exclusive=excl, reverse=rev)

    zeros, ones = bind("zeros_like", x), bind("ones_like", x)
    is_zero = bind("where", bind("equal", x, zeros), ones, zeros)
    seen = cum("cumsum_dynamic", is_zero, True, reverse)  # zeros strictly before j
    first_zero = bind("logical_and", bind("equal", is_zero, ones), bind("equal", seen, zeros))
    before = bind("equal", bind("add", seen, is_zero), zeros)  # no zero up to j
    x_one = bind("where", first_zero, ones, x)  # the first zero taken as 1
    safe = bind("where", before, x, ones)
    later = cum("cumsum_dynamic", bind("mul", g, out), exclusive, not reverse)
    at_zero = cum("cumsum_dynamic", bind("mul", g, cum("cumprod_dynamic", x_one, exclusive, reverse)), exclusive,
                  not reverse)
    grad = bind("where", before, bind("div", later, safe), bind("where", first_zero, at_zero, zeros))
    return grad, None


def _cum_batch(op: str):
    def rule(inputs, dims, size, *, exclusive, reverse):
        (x, axis), (dx, da) = inputs, dims
        if da is not None:  # an axis per example: the node runs once per example
            return LOOP_THIS
        return bind(op, to_front(x, dx), _shift(axis), exclusive=exclusive, reverse=reverse), 0

    rule.__name__ = f"batch_{op}"
    return rule


defbatch("cumsum_dynamic", _cum_batch("cumsum_dynamic"))
defbatch("cumprod_dynamic", _cum_batch("cumprod_dynamic"))


def cumsum_dynamic(x, axis, exclusive: bool = False, reverse: bool = False):
    """Running sum of ``x`` along the axis held by the 0-D int tensor ``axis`` (read at run
    time), as ONNX CumSum; ``exclusive`` and ``reverse`` as ``irf.cumsum``.

    >>> irf.cumsum_dynamic(irf.tensor([[1, 2], [3, 4]]), irf.tensor(np.array(1))).numpy()
    array([[1, 3],
           [3, 7]])
    """
    return bind("cumsum_dynamic", x, axis, exclusive=bool(exclusive), reverse=bool(reverse))


def cumprod_dynamic(x, axis, exclusive: bool = False, reverse: bool = False):
    """Running product of ``x`` along the axis held by the 0-D int tensor ``axis`` (read at run
    time), as ONNX CumProd: ``exclusive`` starts from 1, ``reverse`` runs from the end.

    >>> irf.cumprod_dynamic(irf.tensor([1.0, 2.0, 3.0]), irf.tensor(np.array(0)), exclusive=True).numpy()
    array([1., 1., 2.], dtype=float32)
    """
    return bind("cumprod_dynamic", x, axis, exclusive=bool(exclusive), reverse=bool(reverse))


__all__ = ["reduce_dynamic", "squeeze_dynamic", "unsqueeze_dynamic", "cumsum_dynamic", "cumprod_dynamic"]
