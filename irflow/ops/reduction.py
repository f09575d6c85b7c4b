"""Reductions over axes (int, tuple or None = all) with keepdims, as NumPy and TF."""
from __future__ import annotations

from irflow.ir.types import TensorType
from irflow.ops.common import bind, norm_axes
from irflow.ops.registry import Attr, defop, defvjp

_AXES = {"axes": Attr("ints", default=None, optional=True), "keepdims": Attr("bool", default=False)}


def reduced_type(x: TensorType, axes, keepdims: bool, op: str, dtype=None) -> TensorType:
    ax = norm_axes(axes, x.rank, op)
    if keepdims:
        shape = tuple(1 if i in ax else d for i, d in enumerate(x.shape))
    else:
        shape = tuple(d for i, d in enumerate(x.shape) if i not in ax)
    return TensorType(dtype=dtype or x.dtype, shape=shape)


def _axes_attr(axis):
    return (axis,) if isinstance(axis, int) else (None if axis is None else tuple(axis))


def restore_reduced(g, x, axes, keepdims):
    """Bring a reduced gradient back to ``x``'s rank (size 1 on reduced axes), then broadcast to x."""
    if not keepdims:
        ax = norm_axes(axes, x.type.rank, "reduce")
        if ax:
            g = bind("expand_dims", g, axes=ax)
    return bind("broadcast_like", g, x)


defop("reduce_sum", lambda x, axes, keepdims: reduced_type(x, axes, keepdims, "reduce_sum"), attrs=_AXES, family="reduction")
defvjp("reduce_sum", lambda g, x, *, out, axes, keepdims: restore_reduced(g, x, axes, keepdims))


def reduce_sum(x, axis=None, keepdims: bool = False):
    """Sum over ``axis`` (int, tuple or None for all).

    >>> irf.reduce_sum(x, axis=1, keepdims=True)  # doctest: +SKIP
    """
    return bind("reduce_sum", x, axes=_axes_attr(axis), keepdims=keepdims)


__all__ = ["reduce_sum"]
