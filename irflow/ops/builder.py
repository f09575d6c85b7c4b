"""GraphBuilder and SymbolicTensor: how every frontend (and every VJP rule) makes IR.

A SymbolicTensor is a handle to a Value of one builder. Applying an op to symbolic tensors
runs the op's type rule at once and records one Node.

>>> b = GraphBuilder("g")
>>> x = b.input("x", "float32", ("batch", 4))
>>> b.output(b.op("relu", x))
>>> print(b.build())                                    # doctest: +NORMALIZE_WHITESPACE
graph g(%x: float32['batch', 4]) {
  %relu_0: float32['batch', 4] = relu(%x)
  return %relu_0
}
"""
from __future__ import annotations

import gc
import itertools
from typing import Any, Sequence

import numpy as np

from irflow.errors import DTypeError, IrflowError, IRValidationError, ShapeError
from irflow.ir.dtypes import DType, as_dtype, dtype_of_array
from irflow.ir.graph import Graph, Node, Value
from irflow.ir.types import TensorType
from irflow.ops.dispatch import BUILDER_STACK
from irflow.ops.operators import TensorOperators
from irflow.ops.registry import get_op


class SymbolicTensor(TensorOperators):
    """A value being built in a graph: has ``.name``, ``.type``, ``.shape``, ``.dtype``."""

    __slots__ = ("builder", "name", "type")

    def __init__(self, builder: "GraphBuilder", name: str, type: TensorType):
        self.builder = builder
        self.name = name
        self.type = type

    @property
    def shape(self) -> tuple:
        return self.type.shape

    @property
    def dtype(self) -> DType:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.rank

    def __repr__(self) -> str:
        return f"<symbolic %{self.name}: {self.type}>"

    def __bool__(self) -> bool:
        raise IrflowError(
            f"the truth value of symbolic tensor %{self.name} ({self.type}) is not known while tracing: "
            "a Python `if`/`while` cannot branch on it; use irf.cond or irf.while_loop"
        )

    def __iter__(self):
        raise IrflowError(f"cannot iterate over symbolic tensor %{self.name} while tracing; use irf.scan or index it")

    def __len__(self) -> int:
        if self.type.rank and isinstance(self.type.shape[0], int):
            return self.type.shape[0]
        raise IrflowError(f"len() of symbolic tensor %{self.name} ({self.type}) is not known while tracing")


def _python_scalar_dtype(x: Any) -> DType:
    if isinstance(x, bool):
        return DType.bool
    if isinstance(x, int):
        return DType.int64
    return DType.float32


class GraphBuilder:
    """Builds a Graph node by node. Use as a context manager to make ``irf.*`` ops symbolic.

    Methods: ``input(name, dtype, shape)``, ``constant(array)``, ``op(name, *inputs, **attrs)``,
    ``output(*tensors)``, ``build()``.
    """

    def __init__(self, name: str = "graph"):
        self.name = name
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.nodes: list[Node] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.types: dict[str, TensorType] = {}
        self._counter = itertools.count()
        self._used_names: set[str] = set()
        self._scalar_constants: dict[tuple, SymbolicTensor] = {}

    # -- context: ops called inside `with builder:` add nodes here ----------------------------
    def __enter__(self) -> "GraphBuilder":
        if not BUILDER_STACK:
            # Building a graph allocates many small objects that all stay alive; CPython's
            # cyclic GC would rescan them over and over (a third of tracing time on a
            # 1,000-op function). It is paused while the outermost builder is active.
            self._gc_was_enabled = gc.isenabled()
            gc.disable()
        BUILDER_STACK.append(self)
        return self

    def __exit__(self, *exc) -> None:
        popped = BUILDER_STACK.pop()
        assert popped is self, "builders must be exited in the order they were entered"
        if not BUILDER_STACK and getattr(self, "_gc_was_enabled", False):
            gc.enable()

    # -- naming ---------------------------------------------------------------------------------
    def free_name(self, base: str) -> str:
        """``base``, or ``base_<n>`` if taken; not reserved (``input`` reserves it)."""
        name = base
        while name in self._used_names:
            name = f"{base}_{next(self._counter)}"
        return name

    def fresh_name(self, base: str) -> str:
        """A name nobody in this graph uses yet, reserved at once."""
        name = self.free_name(base)
        self._used_names.add(name)
        return name

    def _new_node_name(self, op: str) -> str:
        return self.fresh_name(f"{op}_{next(self._counter)}")

    # -- sources -------------------------------------------------------------------------------
    def input(self, name: str, dtype: Any, shape: Sequence[Any]) -> SymbolicTensor:
        if name in self._used_names:
            raise IRValidationError(f"graph {self.name!r}: input name {name!r} is already used")
        self._used_names.add(name)
        t = TensorType(dtype=as_dtype(dtype), shape=tuple(shape))
        self.inputs.append(Value(name=name, type=t))
        self.types[name] = t
        return SymbolicTensor(self, name, t)

    def constant(self, value: Any, name: str | None = None, dtype: Any = None) -> SymbolicTensor:
        arr = np.asarray(value, dtype=as_dtype(dtype).numpy if dtype is not None else None)
        t = TensorType(dtype=dtype_of_array(arr), shape=arr.shape)
        name = self.fresh_name(name or "const")
        self.initializers[name] = arr
        self.types[name] = t
        return SymbolicTensor(self, name, t)

    # -- turning op arguments into symbolic tensors of this builder --------------------------------
    def to_symbolic(self, x: Any, weak_dtype: DType | None) -> SymbolicTensor | None:
        if type(x) is SymbolicTensor:
            if x.builder is self:
                return x
            return self.capture(x)
        if x is None:
            return None
        hook = getattr(x, "__irflow_symbolic__", None)
        if hook is not None:  # Variables, eager Tensors
            return hook(self)
        if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
            dtype = weak_dtype or _python_scalar_dtype(x)
            if isinstance(x, float) and not dtype.is_float:
                raise DTypeError(f"Python float {x!r} cannot take the dtype {dtype.value} of the other operand; cast explicitly")
            # One initializer per distinct scalar and dtype (float.hex tells 0.0 from -0.0 and keeps NaN equal).
            key = (dtype, type(x), x.hex() if isinstance(x, float) else x)
            cached = self._scalar_constants.get(key)
            if cached is None:
                cached = self._scalar_constants[key] = self.constant(np.asarray(x, dtype=dtype.numpy))
            return cached
        if isinstance(x, (np.ndarray, np.generic)):
            return self.constant(np.asarray(x))
        raise IrflowError(f"cannot use a {type(x).__name__} as a tensor in graph {self.name!r}")

    def capture(self, x: SymbolicTensor) -> SymbolicTensor:
        """A symbolic tensor of another builder used here. Control-flow builders override this."""
        raise IrflowError(
            f"symbolic tensor %{x.name} belongs to graph {x.builder.name!r}, not to {self.name!r}; "
            "a traced value cannot leave its trace"
        )

    # -- nodes ---------------------------------------------------------------------------------
    def apply(self, op: str, inputs: tuple, attrs: dict) -> Any:
        """Add one node of ``op``; return its output tensor(s). Called by ``bind``."""
        opdef = get_op(op)
        weak = None
        for x in inputs:
            if type(x) in (float, int, bool):  # only Python scalars need the weak dtype
                weak = _weak_dtype(inputs)
                break
        syms = [self.to_symbolic(x, weak) for x in inputs]
        return self.add_node(opdef.name, syms, attrs)

    def op(self, op: str, *inputs: Any, **attrs: Any) -> Any:
        """``b.op("relu", x)``: the same as calling ``irf.relu(x)`` inside ``with b:``."""
        return self.apply(op, inputs, attrs)

    def add_node(self, op: str, syms: Sequence[SymbolicTensor | None], attrs: dict, name: str | None = None) -> Any:
        opdef = get_op(op)
        node_name = name or self._new_node_name(op)
        n = len(syms)
        if n < opdef.min_inputs or (opdef.max_inputs is not None and n > opdef.max_inputs):
            want = opdef.min_inputs if opdef.min_inputs == opdef.max_inputs else f"{opdef.min_inputs}..{opdef.max_inputs or 'any'}"
            raise IRValidationError(f"node {node_name}: op '{op}' takes {want} inputs, got {n}")
        attrs = opdef.fill_attrs(attrs, f"node {node_name}")
        in_types = tuple(s.type if s is not None else None for s in syms)
        try:
            out_types = opdef.infer_type(in_types, attrs)
        except (ShapeError, DTypeError) as e:
            shown = ", ".join(str(t) for t in in_types)
            raise type(e)(f"{op} (node {node_name}) with inputs ({shown}): {e}") from None
        if len(out_types) == 1:
            out_names = [node_name]
        else:
            out_names = [self.fresh_name(f"{node_name}_{i}") for i in range(len(out_types))]
        outputs = tuple(Value(name=nm, type=t) for nm, t in zip(out_names, out_types))
        self.nodes.append(
            Node(op=op, inputs=tuple(s.name if s is not None else "" for s in syms), outputs=outputs, attrs=attrs, name=node_name)
        )
        results = []
        for v in outputs:
            self.types[v.name] = v.type
            results.append(SymbolicTensor(self, v.name, v.type))
        return results[0] if len(results) == 1 else tuple(results)

    # -- outputs -------------------------------------------------------------------------------
    def output(self, *tensors: Any, names: Sequence[str] | None = None) -> None:
        """Mark tensors as graph outputs (optionally renamed; a rename adds an identity node)."""
        for i, t in enumerate(tensors):
            s = self.to_symbolic(t, None)
            if names is not None and names[i] != s.name:
                s = self.add_node("identity", [s], {}, name=self.fresh_name(names[i]))
            self.outputs.append(Value(name=s.name, type=s.type))

    def build(self, verify: bool = False) -> Graph:
        g = Graph(
            name=self.name,
            inputs=tuple(self.inputs),
            outputs=tuple(self.outputs),
            nodes=tuple(self.nodes),
            initializers=dict(self.initializers),
        )
        return g.verify() if verify else g


def _weak_dtype(inputs: tuple) -> DType | None:
    """The dtype Python scalars take in this call: the promoted dtype of the tensor inputs."""
    dtypes = []
    for x in inputs:
        d = getattr(x, "dtype", None)
        if d is not None and not isinstance(x, (bool, int, float)):
            try:
                dtypes.append(as_dtype(d))
            except DTypeError:
                pass
    if not dtypes:
        return None
    non_bool = [d for d in dtypes if d is not DType.bool]
    if not non_bool:
        return DType.bool
    from irflow.ops.common import promote_dtype

    try:
        return promote_dtype(*non_bool)
    except DTypeError:
        return None  # the op's own type rule reports the mix, naming the op


class AssignmentLog:
    """Variable assignments made while a builder is active, shared by the builders that take
    them (a trace's or Program's ``StateBuilder``, vmap's ``VmapBuilder``): each assignment in
    program order, and each Variable's latest value (what a later read in a trace sees)."""

    def __init__(self) -> None:
        self.assignments: list[tuple[Any, SymbolicTensor]] = []  # in program order
        self._current: dict[int, SymbolicTensor] = {}  # id(variable) -> its latest assigned value

    def assign_variable(self, var: Any, value: SymbolicTensor) -> SymbolicTensor:
        self._current[id(var)] = value
        self.assignments.append((var, value))
        return value

    def final_assignments(self) -> list[tuple[Any, SymbolicTensor]]:
        """The last assigned value of each assigned Variable, in first-assignment order."""
        last: dict[int, tuple[Any, SymbolicTensor]] = {}
        for var, sym in self.assignments:
            last.setdefault(id(var), (var, sym))
            last[id(var)] = (var, sym)
        return list(last.values())
