"""Variables: named, mutable tensors, and the graph builders that turn their state into IR.

A Variable holds a NumPy array and reads like a Tensor (operators, ``shape``, ``dtype``,
``numpy()``). Assignments replace the array; they never write into it, so a Tensor that read
the old value keeps it.

In a graph the state becomes explicit (the IR stays pure SSA):
- a read inside a trace or a Program is a graph input (``StateBuilder.read_variable``);
- an assignment is a value the caller writes back (``StateBuilder.assign_variable``):
  ``irf.function`` writes it back after each call, a ``Session`` when the fetches need it.

>>> w = irf.Variable(np.zeros(3, "float32"), name="w")   # doctest: +SKIP
>>> w.assign_add(1.0); w.numpy()                          # doctest: +SKIP
array([1., 1., 1.], dtype=float32)
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import numpy as np

from irflow.errors import DTypeError, IrflowError, ShapeError
from irflow.ir.dtypes import DType, as_dtype, dtype_of_array
from irflow.ops.builder import AssignmentLog, GraphBuilder, SymbolicTensor
from irflow.ops.dispatch import BUILDER_STACK, bind
from irflow.frontends.eager import ArrayBacked

# Creator functions of the active variable_creator_scope blocks, outermost first.
_CREATORS: list[Callable[..., Any]] = []


class _VariableMeta(type):
    """Routes ``Variable(...)`` through the active creator scopes, as TensorFlow does."""

    def __call__(cls, initial: Any = None, name: str | None = None, trainable: bool = True, dtype: Any = None, **extra):
        if initial is None and "initial_value" in extra:  # TensorFlow's keyword
            initial = extra.pop("initial_value")
        if initial is None:
            raise IrflowError("Variable needs an initial value: irf.Variable(initial, name=None, trainable=True, dtype=None)")
        if not _CREATORS:
            return super().__call__(initial, name=name, trainable=trainable, dtype=dtype, **extra)

        def base_creator(**kwargs: Any) -> "Variable":
            init = kwargs.pop("initial_value")
            return type.__call__(cls, init, **kwargs)

        creator = base_creator
        for fn in _CREATORS:  # the innermost scope is called first; next_creator leads outward
            creator = (lambda f, nxt: (lambda **kw: f(nxt, **kw)))(fn, creator)
        return creator(initial_value=initial, name=name, trainable=trainable, dtype=dtype, **extra)


@contextlib.contextmanager
def variable_creator_scope(creator: Callable[..., Any]) -> Iterator[None]:
    """Intercept Variable creation: ``creator(next_creator, **kwargs)`` (TensorFlow semantics).

    ``kwargs`` holds ``initial_value``, ``name``, ``trainable`` and ``dtype``; the creator may
    change them, call ``next_creator(**kwargs)`` to make the variable, or return something else.

    >>> def no_train(next_creator, **kw):
    ...     kw["trainable"] = False
    ...     return next_creator(**kw)
    >>> with irf.variable_creator_scope(no_train):          # doctest: +SKIP
    ...     v = irf.Variable(1.0)
    >>> v.trainable                                         # doctest: +SKIP
    False
    """
    _CREATORS.append(creator)
    try:
        yield
    finally:
        _CREATORS.remove(creator)


def _as_array_for(var: "Variable", value: Any, what: str) -> np.ndarray:
    """``value`` as an array of ``var``'s dtype: Python data is weakly typed, arrays must match."""
    if isinstance(value, Variable):
        arr = value._value
    elif hasattr(value, "_value") and isinstance(getattr(value, "_value"), np.ndarray):  # eager Tensor
        arr = value._value
    elif isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
    elif isinstance(value, SymbolicTensor):
        raise IrflowError(f"Variable {var.name!r}: {what} got symbolic tensor %{value.name} outside its graph")
    else:  # Python scalars and lists take the variable's dtype (weak typing)
        py = np.asarray(value)
        if py.dtype.kind == "f" and not var.dtype.is_float:
            raise DTypeError(f"Variable {var.name!r} ({var.dtype.value}): {what} got a Python float; cast explicitly")
        if py.dtype.kind not in "fiub":
            raise DTypeError(f"Variable {var.name!r}: {what} got a {type(value).__name__}, not a number or array")
        return py.astype(var._value.dtype)
    got = dtype_of_array(arr)
    if got is not var.dtype:
        raise DTypeError(
            f"Variable {var.name!r} ({var.dtype.value}{list(var.shape)}): {what} got a {got.value} value; "
            f"cast explicitly (irf.cast / .astype)"
        )
    return arr


class Variable(ArrayBacked, metaclass=_VariableMeta):
    """A named, mutable tensor: ``Variable(initial, name=None, trainable=True, dtype=None)``.

    Reads like a Tensor; ``assign``, ``assign_add`` and ``assign_sub`` change it (same dtype and
    shape, else DTypeError/ShapeError). Inside ``irf.function`` and ``irf.static.Program`` the
    reads and assignments become graph inputs and outputs.

    >>> w = irf.Variable(np.ones((2, 2), "float32"), name="w")   # doctest: +SKIP
    >>> (w * 2).numpy()                                          # doctest: +SKIP
    """

    __slots__ = ("_value", "name", "trainable", "__weakref__")

    def __init__(self, initial: Any, name: str | None = None, trainable: bool = True, dtype: Any = None):
        if isinstance(initial, SymbolicTensor):
            raise IrflowError(
                f"Variable {name or 'Variable'!r}: the initial value is symbolic tensor %{initial.name}; "
                "create Variables outside traced functions, from concrete values"
            )
        if callable(initial) and not isinstance(initial, np.ndarray):
            initial = initial()  # TF accepts an initializer function
        raw = initial._eager_value() if hasattr(initial, "_eager_value") else getattr(initial, "_value", initial)
        if dtype is not None:
            arr = np.array(raw, dtype=as_dtype(dtype).numpy)
        else:
            arr = np.array(raw)
            if arr.dtype == np.float64 and not isinstance(raw, (np.ndarray, np.generic)):
                arr = arr.astype(np.float32)  # Python floats and lists default to float32, as Tensors do
        dtype_of_array(arr)  # an unsupported dtype is a DTypeError now, not later
        self._value = arr
        self.name = name or "Variable"
        self.trainable = bool(trainable)

    # -- reading ---------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The current value (shared; assignments replace it rather than write into it)."""
        return self._value

    def _eager_value(self) -> np.ndarray:
        """What the eager handler computes with."""
        return self._value

    def __irflow_symbolic__(self, builder: GraphBuilder) -> SymbolicTensor:
        """The variable inside ``builder``: a graph input of the enclosing trace or Program."""
        read = getattr(builder, "read_variable", None)
        if read is not None:
            return read(self)
        for outer in reversed(BUILDER_STACK):
            if getattr(outer, "read_variable", None) is not None and outer is not builder:
                return builder.to_symbolic(outer.read_variable(self), None)  # a nested (control-flow) builder captures it
        # A bare GraphBuilder (built by hand, or a transform's scratch builder) has no state:
        # the variable is a constant there, as an eager Tensor is.
        return builder.constant(self._value)

    def read_value(self) -> Any:
        """The value now: an eager Tensor, or the symbolic read inside a graph."""
        if BUILDER_STACK:
            return BUILDER_STACK[-1].to_symbolic(self, None)
        from irflow.frontends.eager import _wrap

        return _wrap(self._value)

    value = read_value

    def __repr__(self) -> str:
        body = np.array2string(self._value, separator=", ", prefix="irf.Variable(")
        return f"irf.Variable({body}, name={self.name!r}, dtype={self.dtype.value}, shape={self.shape})"

    def __bool__(self) -> bool:
        from irflow.frontends.eager import scalar_value

        return bool(scalar_value(self._value, "bool", f"Variable {self.name!r}"))

    def __float__(self) -> float:
        from irflow.frontends.eager import scalar_value

        return float(scalar_value(self._value, "float", f"Variable {self.name!r}"))

    def __int__(self) -> int:
        from irflow.frontends.eager import scalar_value

        return int(scalar_value(self._value, "int", f"Variable {self.name!r}"))

    def __len__(self) -> int:
        return len(self._value)

    def __iter__(self):
        if self._value.ndim == 0:
            raise IrflowError(f"iteration over 0-d Variable {self.name!r}")
        return (self[i] for i in range(len(self._value)))

    # -- assigning -----------------------------------------------------------------------------
    def assign(self, value: Any) -> Any:
        """Set the value (same dtype and shape). Eager: returns the Variable; in a graph: the new value.

        >>> v.assign(np.zeros(3, "float32"))   # doctest: +SKIP
        """
        if BUILDER_STACK:
            return self._assign_symbolic(value, "assign")
        arr = _as_array_for(self, value, "assign")
        self._set(arr, "assign")
        return self

    def assign_add(self, delta: Any) -> Any:
        """``v += delta`` (delta broadcasts, the result keeps v's shape)."""
        if BUILDER_STACK:
            return self._assign_symbolic(bind("add", self, delta), "assign_add")
        self._set(np.add(self._value, _as_array_for(self, delta, "assign_add")), "assign_add")
        return self

    def assign_sub(self, delta: Any) -> Any:
        """``v -= delta`` (delta broadcasts, the result keeps v's shape)."""
        if BUILDER_STACK:
            return self._assign_symbolic(bind("sub", self, delta), "assign_sub")
        self._set(np.subtract(self._value, _as_array_for(self, delta, "assign_sub")), "assign_sub")
        return self

    def _set(self, arr: np.ndarray, what: str) -> None:
        if arr.shape != self._value.shape:
            raise ShapeError(f"Variable {self.name!r}: {what} of a value of shape {arr.shape} to a variable of shape {self._value.shape}")
        if arr.dtype != self._value.dtype:
            raise DTypeError(f"Variable {self.name!r}: {what} of a {arr.dtype} value to a {self._value.dtype} variable")
        self._value = arr

    def _assign_symbolic(self, value: Any, what: str) -> SymbolicTensor:
        builder = BUILDER_STACK[-1]
        assign = getattr(builder, "assign_variable", None)
        if assign is None:
            if any(getattr(b, "assign_variable", None) is not None for b in BUILDER_STACK):
                raise IrflowError(
                    f"Variable {self.name!r}: {what} inside a nested graph (a control-flow branch or body) "
                    "is not supported; return the new value and assign it outside"
                )
            raise IrflowError(
                f"Variable {self.name!r}: {what} inside graph {builder.name!r}, which holds no state; "
                "assign inside irf.function or an irf.static.Program"
            )
        sym = builder.to_symbolic(value, self.dtype)
        if sym.dtype is not self.dtype:
            raise DTypeError(
                f"Variable {self.name!r} ({self.dtype.value}{list(self.shape)}): {what} got a {sym.dtype.value} value "
                f"(%{sym.name}); cast explicitly (irf.cast / .astype)"
            )
        if len(sym.shape) != len(self.shape) or any(
            isinstance(d, int) and d != s for d, s in zip(sym.shape, self.shape)
        ):
            raise ShapeError(
                f"Variable {self.name!r}: {what} of a value of shape {sym.shape} (%{sym.name}) to a variable of shape {self.shape}"
            )
        return assign(self, sym)


class StateBuilder(AssignmentLog, GraphBuilder):
    """A GraphBuilder that turns Variable reads into graph inputs and records assignments.

    ``reads_see_assignments``: in a trace (True) a read after an assignment sees the new
    value, as Python code runs in order; in a static Program (False) every read is the value
    the run started with, unless inside ``control_dependencies`` on the assignment (TF1).
    """

    reads_see_assignments = True

    def __init__(self, name: str = "graph"):
        GraphBuilder.__init__(self, name)
        AssignmentLog.__init__(self)  # assignments in program order, each variable's latest value
        self.variable_inputs: list[tuple[str, Variable]] = []  # graph input name -> variable, in first-read order
        self._read: dict[int, SymbolicTensor] = {}  # id(variable) -> its input

    def read_variable(self, var: Variable) -> SymbolicTensor:
        key = id(var)
        if self.reads_see_assignments:
            cur = self._current.get(key)
            if cur is not None:
                return cur
        sym = self._read.get(key)
        if sym is None:
            sym = self.input(self.free_name(var.name), var.dtype, var.shape)
            self._read[key] = sym
            self.variable_inputs.append((sym.name, var))
        return sym
