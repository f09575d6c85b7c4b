"""The error hierarchy. Every error a user can cause derives from IrflowError.

A message names what was wrong and where: the node, the op and the shapes or dtypes involved.
"""
from __future__ import annotations


class IrflowError(Exception):
    """Base class of every error irflow raises on purpose."""


class IRValidationError(IrflowError):
    """A graph breaks an IR rule (SSA, order, arity, attrs, types); raised by ``Graph.verify``."""


class ShapeError(IrflowError):
    """Shapes do not fit an op's rule (broadcasting, matmul, reshape, ...)."""


class DTypeError(IrflowError):
    """Dtypes do not fit an op's rule, or a value has the wrong dtype for a feed."""


class UnsupportedOpError(IrflowError):
    """An op name the registry, a kernel table, a lowering table or an importer does not know."""


class ExecutorError(IrflowError):
    """An executor failed to run a node, or cannot run at all (missing device, bad feeds)."""


class NumericsError(ExecutorError):
    """A value held NaN or Inf where a numerics check was asked for (``irf.debugging``)."""


def integer_division_by_zero(node: str, op: str) -> ExecutorError:
    """The one error every executor raises for an integer ``div`` or ``mod`` by zero.

    >>> str(integer_division_by_zero("div_3", "div"))
    'node div_3 (div): integer division by zero'
    """
    kind = "modulo" if op == "mod" else "division"
    return ExecutorError(f"node {node} ({op}): integer {kind} by zero")
