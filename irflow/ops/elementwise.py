"""Elementwise ops. Each op: one line declaring it (type rule from a factory) with its VJP rule.

A VJP rule gets the output cotangent ``g``, the inputs and ``out`` (the primal output), all
symbolic, and returns one gradient per input, computed with irf ops so that gradients are IR.
"""
from __future__ import annotations

from irflow.ir.dtypes import DType
from irflow.ir.types import TensorType
from irflow.ops.common import binary_op, bind, broadcast_shape, promote_dtype, unary_op, unbroadcast
from irflow.ops.registry import defop, defvjp
from irflow.errors import DTypeError

# -- unary ----------------------------------------------------------------------------------
neg = unary_op("neg", lambda g, x, *, out: -g, kinds="numeric")
exp = unary_op("exp", lambda g, x, *, out: g * out)
relu = unary_op("relu", lambda g, x, *, out: where(x > 0, g, zeros_like(g)), kinds="numeric",
                doc="max(x, 0). Its gradient at 0 is 0, as in PyTorch and JAX.\n\n>>> irf.relu(x)  # doctest: +SKIP")


# -- binary ---------------------------------------------------------------------------------
def _add_vjp(g, x, y, *, out):
    return unbroadcast(g, out.type, x.type), unbroadcast(g, out.type, y.type)


def _sub_vjp(g, x, y, *, out):
    return unbroadcast(g, out.type, x.type), unbroadcast(-g, out.type, y.type)


def _mul_vjp(g, x, y, *, out):
    return unbroadcast(g * y, out.type, x.type), unbroadcast(g * x, out.type, y.type)


def _div_vjp(g, x, y, *, out):
    gx = g / y
    return unbroadcast(gx, out.type, x.type), unbroadcast(-gx * out, out.type, y.type)


add = binary_op("add", _add_vjp)
sub = binary_op("sub", _sub_vjp)
mul = binary_op("mul", _mul_vjp)
div = binary_op("div", _div_vjp)

greater = binary_op("greater", kinds="numeric", out_dtype=DType.bool, differentiable=False)


# -- where --------------------------------------------------------------------------------------
def _where_type(cond: TensorType, x: TensorType, y: TensorType) -> TensorType:
    if cond.dtype is not DType.bool:
        raise DTypeError(f"where's condition must be bool, got {cond.dtype.value}")
    return TensorType(dtype=promote_dtype(x.dtype, y.dtype), shape=broadcast_shape(cond.shape, x.shape, y.shape))


defop("where", _where_type, inputs=3, family="elementwise")


@defvjp("where")
def _where_vjp(g, cond, x, y, *, out):
    zero = zeros_like(g)
    return None, unbroadcast(where(cond, g, zero), out.type, x.type), unbroadcast(where(cond, zero, g), out.type, y.type)


def where(cond, x, y):
    """Pick ``x`` where ``cond`` is true, else ``y`` (broadcasting all three).

    >>> irf.where(x > 0, x, 0.0)  # doctest: +SKIP
    """
    return bind("where", cond, x, y)


def zeros_like(x):
    """Zeros of ``x``'s shape and dtype.

    >>> irf.zeros_like(x)  # doctest: +SKIP
    """
    return bind("zeros_like", x)


def ones_like(x):
    """Ones of ``x``'s shape and dtype.

    >>> irf.ones_like(x)  # doctest: +SKIP
    """
    return bind("ones_like", x)


defop("zeros_like", lambda x: x, inputs=1, differentiable=False, family="elementwise")
defop("ones_like", lambda x: x, inputs=1, differentiable=False, family="elementwise")

__all__ = ["neg", "exp", "relu", "add", "sub", "mul", "div", "greater", "where", "zeros_like", "ones_like"]
