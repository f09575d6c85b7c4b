"""Python operators and tensor methods shared by eager Tensors, Variables and symbolic tensors.

Each is a ``bind`` call (or an op function), so the same expression runs eagerly or adds
nodes to the graph being built. Indexing (``__getitem__``) is added by
``irflow.frontends.indexing``, which knows NumPy's slicing rules.
"""
from __future__ import annotations

from typing import Any

from irflow.ops.dispatch import bind


def _ops():
    import irflow.ops as ops  # op functions are declared after this module is imported

    return ops


def _is_int_operand(x: Any) -> bool:
    d = getattr(x, "dtype", None)
    if d is None:
        return isinstance(x, int) and not isinstance(x, bool)
    kind = getattr(d, "kind", None)  # a NumPy dtype
    if kind is not None:
        return kind in "iu"
    return bool(getattr(d, "is_int", False))


def floor_divide(a: Any, b: Any) -> Any:
    """``a // b`` with Python's rounding: floor(a / b) for floats, a - mod(a, b) over b for ints."""
    tensors = [t for t in (a, b) if hasattr(t, "dtype")]
    if tensors and all(_is_int_operand(t) for t in tensors):
        # mod has the sign of the divisor (as Python and NumPy), so a - mod(a, b) divides exactly.
        return bind("div", bind("sub", a, bind("mod", a, b)), b)
    return bind("floor", bind("div", a, b))


class TensorOperators:
    """Mixin: ``+ - * / // % ** @``, unary ``-``, ``abs`` and comparisons through ``bind``."""

    __slots__ = ()
    __array_priority__ = 1000  # make ndarray + Tensor call our __radd__, not NumPy's loop

    def __add__(self, o): return bind("add", self, o)
    def __radd__(self, o): return bind("add", o, self)
    def __sub__(self, o): return bind("sub", self, o)
    def __rsub__(self, o): return bind("sub", o, self)
    def __mul__(self, o): return bind("mul", self, o)
    def __rmul__(self, o): return bind("mul", o, self)
    def __truediv__(self, o): return bind("div", self, o)
    def __rtruediv__(self, o): return bind("div", o, self)
    def __floordiv__(self, o): return floor_divide(self, o)
    def __rfloordiv__(self, o): return floor_divide(o, self)
    def __mod__(self, o): return bind("mod", self, o)
    def __rmod__(self, o): return bind("mod", o, self)
    def __pow__(self, o): return bind("pow", self, o)
    def __rpow__(self, o): return bind("pow", o, self)
    def __matmul__(self, o): return bind("matmul", self, o)
    def __rmatmul__(self, o): return bind("matmul", o, self)
    def __neg__(self): return bind("neg", self)
    def __pos__(self): return self
    def __abs__(self): return bind("abs", self)
    def __invert__(self): return bind("logical_not", self)
    def __and__(self, o): return bind("logical_and", self, o)
    def __rand__(self, o): return bind("logical_and", o, self)
    def __or__(self, o): return bind("logical_or", self, o)
    def __ror__(self, o): return bind("logical_or", o, self)
    def __xor__(self, o): return bind("logical_xor", self, o)
    def __rxor__(self, o): return bind("logical_xor", o, self)
    def __lt__(self, o): return bind("less", self, o)
    def __le__(self, o): return bind("less_equal", self, o)
    def __gt__(self, o): return bind("greater", self, o)
    def __ge__(self, o): return bind("greater_equal", self, o)
    def __eq__(self, o): return bind("equal", self, o)  # type: ignore[override]
    def __ne__(self, o): return bind("not_equal", self, o)  # type: ignore[override]
    __hash__ = object.__hash__  # tensors are used as dict keys (feeds, tapes) by identity

    # -- methods (NumPy / PyTorch names) ----------------------------------------------------------
    @property
    def T(self):
        """The axes reversed (the transpose of a matrix), as ``ndarray.T``."""
        return bind("transpose", self, perm=None)

    def reshape(self, *shape):
        """``x.reshape(2, -1)`` or ``x.reshape((2, -1))``."""
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        return _ops().reshape(self, shape)

    def astype(self, dtype):
        """The values cast to ``dtype`` (this tensor itself when it already has it)."""
        from irflow.ir.dtypes import as_dtype

        if as_dtype(self.dtype) is as_dtype(dtype):
            return self
        return _ops().cast(self, dtype)

    def transpose(self, *perm):
        """``x.transpose(1, 0)``; no arguments reverses the axes."""
        if len(perm) == 1 and not isinstance(perm[0], int):
            perm = tuple(perm[0])
        return _ops().transpose(self, perm or None)

    def sum(self, axis=None, keepdims: bool = False):
        return _ops().reduce_sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return _ops().reduce_mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False):
        return _ops().reduce_max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims: bool = False):
        return _ops().reduce_min(self, axis=axis, keepdims=keepdims)

    def flatten(self):
        """All elements in one axis (``reshape(-1)``)."""
        return _ops().reshape(self, (-1,))

    def nonzero(self, as_tuple: bool = False):
        """``x.nonzero()`` as PyTorch: the (N, rank) indices of the non-zero entries (``irf.nonzero``)."""
        return _ops().nonzero(self, as_tuple=as_tuple)

    def unique(self, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, axis=None):
        """``x.unique()`` as PyTorch: the distinct entries (``irf.unique``)."""
        return _ops().unique(self, sorted=sorted, return_inverse=return_inverse, return_counts=return_counts, axis=axis)
