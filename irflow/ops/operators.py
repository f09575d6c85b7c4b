"""Python operators shared by eager Tensors and symbolic tensors: each is one ``bind`` call.

Indexing (``__getitem__``) is added by the frontends, which know slicing rules.
"""
from __future__ import annotations

from irflow.ops.dispatch import bind


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
    def __floordiv__(self, o): return bind("floor", bind("div", self, o))
    def __rfloordiv__(self, o): return bind("floor", bind("div", o, self))
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
