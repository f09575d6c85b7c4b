"""Linear algebra: matmul (batched, broadcasting, 1-D rules as NumPy) and einsum."""
from __future__ import annotations

from irflow.errors import ShapeError
from irflow.ir.types import TensorType
from irflow.ops.common import bind, broadcast_shape, promote_dtype, unbroadcast
from irflow.ops.registry import defop, defvjp


def _matmul_type(a: TensorType, b: TensorType) -> TensorType:
    dtype = promote_dtype(a.dtype, b.dtype)
    if a.rank == 0 or b.rank == 0:
        raise ShapeError("matmul needs operands of rank >= 1, got a scalar")
    sa = (1,) + a.shape if a.rank == 1 else a.shape
    sb = b.shape + (1,) if b.rank == 1 else b.shape
    k1, k2 = sa[-1], sb[-2]
    if isinstance(k1, int) and isinstance(k2, int) and k1 != k2:
        raise ShapeError(f"contracted dims differ: {k1} vs {k2}")
    batch = broadcast_shape(sa[:-2], sb[:-2])
    shape = batch + ((sa[-2],) if a.rank > 1 else ()) + ((sb[-1],) if b.rank > 1 else ())
    return TensorType(dtype=dtype, shape=shape)


defop("matmul", _matmul_type, inputs=2, family="linalg")


@defvjp("matmul")
def _matmul_vjp(g, a, b, *, out):
    # Promote 1-D operands to matrices so one pair of formulas serves every case.
    a2 = bind("expand_dims", a, axes=(0,)) if a.type.rank == 1 else a
    b2 = bind("expand_dims", b, axes=(1,)) if b.type.rank == 1 else b
    g2 = g
    if a.type.rank == 1:
        g2 = bind("expand_dims", g2, axes=(g2.type.rank - 1 if b.type.rank == 1 else g2.type.rank - 1,))
    if b.type.rank == 1:
        g2 = bind("expand_dims", g2, axes=(g2.type.rank,))
    ga = matmul(g2, _mT(b2))
    gb = matmul(_mT(a2), g2)
    if a.type.rank == 1:
        ga = bind("squeeze", ga, axes=(ga.type.rank - 2,))
    if b.type.rank == 1:
        gb = bind("squeeze", gb, axes=(gb.type.rank - 1,))
    return unbroadcast(ga, ga.type, a.type), unbroadcast(gb, gb.type, b.type)


def _mT(x):
    perm = tuple(range(x.type.rank - 2)) + (x.type.rank - 1, x.type.rank - 2)
    return bind("transpose", x, perm=perm)


def matmul(a, b):
    """Matrix product with NumPy's rules (batched, broadcasting, 1-D operands).

    >>> irf.matmul(x, w)  # doctest: +SKIP
    """
    return bind("matmul", a, b)


__all__ = ["matmul"]
