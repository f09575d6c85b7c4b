"""Shape ops: reshape, transpose, expand_dims, broadcasting, concat, slicing, gathers, ..."""
from __future__ import annotations

from irflow.errors import ShapeError
from irflow.ir.types import TensorType
from irflow.ops.common import bind, broadcast_shape, norm_axes, unbroadcast
from irflow.ops.registry import Attr, defop, defvjp

defop("identity", lambda x: x, family="shape")
defvjp("identity", lambda g, x, *, out: g)


def identity(x):
    """Return ``x`` unchanged (a new value in graphs).

    >>> irf.identity(x)  # doctest: +SKIP
    """
    return bind("identity", x)


def _expand_dims_type(x: TensorType, axes) -> TensorType:
    rank = x.rank + len(axes)
    ax = norm_axes(axes, rank, "expand_dims")
    it = iter(x.shape)
    return TensorType(dtype=x.dtype, shape=tuple(1 if i in ax else next(it) for i in range(rank)))


defop("expand_dims", _expand_dims_type, attrs={"axes": Attr("ints")}, family="shape")
defvjp("expand_dims", lambda g, x, *, out, axes: bind("squeeze", g, axes=norm_axes(axes, out.type.rank, "expand_dims")))


def expand_dims(x, axis):
    """Insert size-1 axes at ``axis`` (int or tuple; positions in the result).

    >>> irf.expand_dims(x, 0)  # doctest: +SKIP
    """
    return bind("expand_dims", x, axes=(axis,) if isinstance(axis, int) else tuple(axis))


def _broadcast_like_type(x: TensorType, like: TensorType) -> TensorType:
    shape = broadcast_shape(x.shape, like.shape)
    if len(shape) != like.rank:
        raise ShapeError(f"cannot broadcast {x} to the shape of {like}")
    return TensorType(dtype=x.dtype, shape=like.shape)


defop("broadcast_like", _broadcast_like_type, inputs=2, family="shape",
      doc="Broadcast x to the shape of `like` (read at run time, so symbolic dims work).")
defvjp("broadcast_like", lambda g, x, like, *, out: (unbroadcast(g, out.type, x.type), None))


def broadcast_like(x, like):
    """Broadcast ``x`` to the shape of ``like``.

    >>> irf.broadcast_like(bias, x)  # doctest: +SKIP
    """
    return bind("broadcast_like", x, like)


def _transpose_type(x: TensorType, perm) -> TensorType:
    perm = tuple(range(x.rank))[::-1] if perm is None else perm
    if sorted(perm) != list(range(x.rank)):
        raise ShapeError(f"transpose: perm {perm} is not a permutation of {x.rank} axes")
    return TensorType(dtype=x.dtype, shape=tuple(x.shape[p] for p in perm))


def _inverse_perm(perm, rank):
    perm = tuple(range(rank))[::-1] if perm is None else perm
    inv = [0] * rank
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


defop("transpose", _transpose_type, attrs={"perm": Attr("ints", default=None, optional=True)}, family="shape")
defvjp("transpose", lambda g, x, *, out, perm: bind("transpose", g, perm=_inverse_perm(perm, x.type.rank)))


def transpose(x, perm=None):
    """Permute axes (reverse them when ``perm`` is None), as ``np.transpose``.

    >>> irf.transpose(x, (1, 0))  # doctest: +SKIP
    """
    return bind("transpose", x, perm=None if perm is None else tuple(perm))


def _squeeze_type(x: TensorType, axes) -> TensorType:
    ax = norm_axes(axes, x.rank, "squeeze") if axes is not None else tuple(i for i, d in enumerate(x.shape) if d == 1)
    for a in ax:
        if x.shape[a] != 1 and isinstance(x.shape[a], int):
            raise ShapeError(f"squeeze: axis {a} has size {x.shape[a]}, not 1")
    return TensorType(dtype=x.dtype, shape=tuple(d for i, d in enumerate(x.shape) if i not in ax))


defop("squeeze", _squeeze_type, attrs={"axes": Attr("ints", default=None, optional=True)}, family="shape")
defvjp("squeeze", lambda g, x, *, out, axes: bind("broadcast_like", bind("expand_dims", g, axes=norm_axes(axes, x.type.rank, "squeeze")), x)
       if axes is not None else bind("broadcast_like", g, x))


def squeeze(x, axis=None):
    """Drop size-1 axes (all of them when ``axis`` is None).

    >>> irf.squeeze(x, 0)  # doctest: +SKIP
    """
    return bind("squeeze", x, axes=(axis,) if isinstance(axis, int) else (None if axis is None else tuple(axis)))


__all__ = ["identity", "expand_dims", "broadcast_like", "transpose", "squeeze"]
