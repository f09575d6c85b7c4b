"""``irf.static``: define-and-run graphs, as TensorFlow 1 (Program + Session).

Inside ``with prog:`` every ``irf`` op adds a node to the program's builder (the same
``bind`` + ``GraphBuilder`` core as tracing). A ``Session`` runs only the part of the graph
its fetches need (``irflow.passes.prune``), holds the variables' values, feeds them in and
writes back the assignments the fetches need (directly, through a ``group`` or through a
``control_dependencies`` block).

>>> prog = irf.static.Program()
>>> with prog:
...     x = irf.static.placeholder("x", (None, 4), "float32")
...     w = irf.static.variable(np.ones((4, 2), "float32"), name="w")
...     y = irf.relu(x @ w)
...     step = irf.static.group(w.assign_sub(0.1 * w))
>>> sess = irf.static.Session(prog)
>>> sess.run(y, {x: np.ones((3, 4), "float32")}).shape      # doctest: +SKIP
(3, 2)
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np

from irflow.errors import DTypeError, IrflowError, ShapeError
from irflow.executors import get_runner
from irflow.frontends.structure import flatten, unflatten
from irflow.frontends.variables import StateBuilder, Variable
from irflow.ir.dtypes import dtype_of_array
from irflow.ir.graph import Graph, Value
from irflow.ir.types import TensorType
from irflow.ops.builder import SymbolicTensor
from irflow.ops.dispatch import BUILDER_STACK
from irflow.passes.prune import prune

__all__ = [
    "Program", "Session", "Group", "placeholder", "variable", "constant", "group",
    "control_dependencies", "gradients",
]


class ProgramBuilder(StateBuilder):
    """The builder of a Program: placeholders, variable reads, assignments, control deps."""

    reads_see_assignments = False  # TF1: a read is the value the run started with

    def __init__(self, name: str):
        super().__init__(name)
        self.placeholders: list[str] = []
        self.assign_values: dict[str, Variable] = {}  # assignment value name -> variable
        self.control_deps: dict[str, frozenset[str]] = {}  # value name -> values that must run first
        self._ctrl_stack: list[frozenset[str]] = []
        self.program: "Program | None" = None  # set by the Program that owns this builder

    def read_variable(self, var: Variable) -> SymbolicTensor:
        if self._ctrl_stack:  # inside control_dependencies([v.assign(...)]) a read sees the new value
            active = frozenset().union(*self._ctrl_stack)
            for v, sym in reversed(self.assignments):
                if v is var and sym.name in active:
                    return sym
        return super().read_variable(var)

    def assign_variable(self, var: Variable, value: SymbolicTensor) -> SymbolicTensor:
        # An identity node of its own: fetching `new` must not apply `v.assign(new)`.
        sym = self.add_node("identity", [value], {}, name=self.fresh_name(f"{var.name}_assign"))
        self.assign_values[sym.name] = var
        return super().assign_variable(var, sym)

    def add_node(self, op: str, syms: Sequence[Any], attrs: dict, name: str | None = None) -> Any:
        out = super().add_node(op, syms, attrs, name=name)
        if self._ctrl_stack:
            deps = frozenset().union(*self._ctrl_stack)
            for s in out if isinstance(out, tuple) else (out,):
                self.control_deps[s.name] = deps
        return out

    def full_graph(self, outputs: Sequence[str]) -> Graph:
        """Every node so far; inputs: placeholders (declaration order), then variables (first read)."""
        by_name = {v.name: v for v in self.inputs}
        types = self.types
        return Graph(
            name=self.name,
            inputs=tuple(by_name[n] for n in self.placeholders) + tuple(by_name[n] for n, _ in self.variable_inputs),
            outputs=tuple(Value(name=n, type=types[n]) for n in outputs),
            nodes=tuple(self.nodes),
            initializers=dict(self.initializers),
        )


class Group:
    """Several ops run together when the group is fetched (``irf.static.group``); fetches as None."""

    __slots__ = ("members", "name")

    def __init__(self, members: Sequence[Any], name: str = "group"):
        self.members = tuple(members)
        self.name = name

    def __repr__(self) -> str:
        return f"<irf.static.Group {self.name} of {len(self.members)}>"


class Program:
    """A graph built by running Python once under ``with prog:``; run it with a ``Session``.

    >>> prog = irf.static.Program("mlp")
    >>> with prog:
    ...     x = irf.static.placeholder("x", (None, 3))
    ...     y = irf.relu(x)
    >>> prog.to_ir([y]).output_names                  # doctest: +SKIP
    ('relu_0',)
    """

    def __init__(self, name: str = "program"):
        self.name = name
        self.builder = ProgramBuilder(name)
        self.builder.program = self
        self.variables: list[Variable] = []

    def __enter__(self) -> "Program":
        self.builder.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.builder.__exit__(*exc)

    @property
    def placeholders(self) -> list[SymbolicTensor]:
        b = self.builder
        return [SymbolicTensor(b, n, b.types[n]) for n in b.placeholders]

    def to_ir(self, fetches: Any = None, *, prune_unused: bool = True) -> Graph:
        """The program as a Graph.

        With ``fetches`` (a tensor or a structure of them, groups allowed), the outputs are the
        fetched values followed by the assignments they trigger, and only what they need is
        kept (placeholders and variables stay inputs). Without, every value nobody reads and
        every assignment is an output.

        >>> g = prog.to_ir([loss])     # doctest: +SKIP
        """
        b = self.builder
        if fetches is None:
            used = {i for n in b.nodes for i in n.inputs}
            outputs = [v.name for n in b.nodes for v in n.outputs if v.name not in used]
        else:
            targets, _ = _fetch_targets(self, fetches)
            outputs = _with_assignments(b, targets)
        outputs = list(dict.fromkeys(outputs))
        g = b.full_graph(outputs)
        return prune(g) if prune_unused else g


# -- building inside a Program -------------------------------------------------------------------
def _active(what: str) -> ProgramBuilder:
    b = BUILDER_STACK[-1] if BUILDER_STACK else None
    if not isinstance(b, ProgramBuilder):
        where = f"graph {b.name!r}" if b is not None else "eager mode"
        raise IrflowError(f"irf.static.{what} must be called inside `with program:` (called in {where})")
    return b


def placeholder(name: str, shape: Sequence[int | str | None], dtype: Any = "float32") -> SymbolicTensor:
    """A graph input fed at run time (``feed_dict={x: array}`` or ``{"x": array}``).

    >>> x = irf.static.placeholder("x", (None, 784), "float32")   # doctest: +SKIP
    """
    b = _active("placeholder")
    s = b.input(name, dtype, tuple(shape))
    b.placeholders.append(name)
    return s


def variable(initial: Any, name: str | None = None, trainable: bool = True, dtype: Any = None) -> Variable:
    """A Variable of the active Program; each Session starts it at ``initial``.

    >>> w = irf.static.variable(np.zeros((4, 2), "float32"), name="w")   # doctest: +SKIP
    """
    b = _active("variable")
    var = Variable(initial, name=name, trainable=trainable, dtype=dtype)
    if b.program is not None:
        b.program.variables.append(var)
    return var


def constant(value: Any, dtype: Any = None, name: str | None = None) -> SymbolicTensor:
    """A constant of the active Program (an initializer of the graph).

    >>> c = irf.static.constant(np.eye(3, dtype="float32"))   # doctest: +SKIP
    """
    return _active("constant").constant(value, name=name, dtype=dtype)


def group(*ops: Any, name: str = "group") -> Group:
    """Ops (assignments, tensors, groups) that run together when the group is fetched.

    >>> step = irf.static.group(w.assign_sub(lr * gw), b.assign_sub(lr * gb))   # doctest: +SKIP
    """
    flat: list = []
    for op in ops:
        if isinstance(op, (list, tuple)):
            flat.extend(op)
        else:
            flat.append(op)
    for op in flat:
        if not isinstance(op, (SymbolicTensor, Group)):
            raise IrflowError(f"irf.static.group takes tensors, assignments or groups, got a {type(op).__name__}")
    return Group(flat, name)


@contextlib.contextmanager
def control_dependencies(ops: Sequence[Any]) -> Iterator[None]:
    """Ops created inside run after ``ops``; variable reads inside see their assignments (TF1).

    >>> with irf.static.control_dependencies([w.assign(w0)]):   # doctest: +SKIP
    ...     y = w * 2          # fetching y also runs the assignment, and reads the new w
    """
    b = _active("control_dependencies")
    names = frozenset(_names_of(ops, b, "control_dependencies"))
    b._ctrl_stack.append(names)
    try:
        yield
    finally:
        b._ctrl_stack.pop()


def gradients(ys: Any, xs: Sequence[Any], grad_ys: Any = None) -> list:
    """Gradient nodes of sum(ys) with respect to ``xs`` (tensors or Variables), in the Program.

    Implemented by ``irflow.autodiff.symbolic_gradients``.

    >>> (gw,) = irf.static.gradients(loss, [w])   # doctest: +SKIP
    """
    from irflow.autodiff import symbolic_gradients

    return symbolic_gradients(ys, xs, grad_ys)


def _names_of(ops: Any, b: ProgramBuilder, what: str) -> list[str]:
    out: list[str] = []
    stack = list(ops) if isinstance(ops, (list, tuple)) else [ops]
    while stack:
        op = stack.pop(0)
        if isinstance(op, Group):
            stack = list(op.members) + stack
        elif isinstance(op, SymbolicTensor):
            if op.builder is not b:
                raise IrflowError(f"{what}: %{op.name} belongs to graph {op.builder.name!r}, not to program {b.name!r}")
            out.append(op.name)
        else:
            raise IrflowError(f"{what}: expected tensors, assignments or groups, got a {type(op).__name__}")
    return out


def _fetch_targets(prog: Program, fetches: Any) -> tuple[list[str], list]:
    """Value names the fetches need, and the fetch leaves (structure kept by the caller)."""
    b = prog.builder
    leaves: list = []
    flatten(fetches, leaves)
    targets: list[str] = []
    for leaf in leaves:
        if isinstance(leaf, Variable):
            continue  # read from the session's store
        if isinstance(leaf, str):
            if leaf not in b.types:
                raise IrflowError(f"fetch {leaf!r} is not a value of program {prog.name!r}")
            targets.append(leaf)
        else:
            targets.extend(_names_of([leaf], b, "fetch"))
    return targets, leaves


def _with_assignments(b: ProgramBuilder, targets: list[str]) -> list[str]:
    """Targets plus the control dependencies and assignments they need, to a fixed point."""
    wanted = list(dict.fromkeys(targets))
    while True:
        needed = set(wanted)
        for node in reversed(b.nodes):
            if any(v.name in needed for v in node.outputs):
                needed.update(i for i in node.inputs if i)
        extra = [d for n in needed for d in b.control_deps.get(n, ()) if d not in needed]
        if not extra:
            break
        wanted.extend(dict.fromkeys(sorted(extra)))
    assigns = [s.name for _, s in b.assignments if s.name in needed and s.name not in wanted]
    return wanted + assigns


class _Plan:
    __slots__ = ("graph", "runner", "placeholders", "variables", "assignments")


class Session:
    """Runs a Program; holds the values of its variables (each starts at its initial value).

    ``run(fetches, feed_dict)``: ``fetches`` is a tensor, a Variable, a group or any list,
    tuple or dict of them (the result has the same structure; groups give None).
    Only the nodes the fetches need run; an assignment applies only when the fetches need it.

    >>> sess = irf.static.Session(prog, executor="numpy")                       # doctest: +SKIP
    >>> loss_v, _ = sess.run([loss, step], feed_dict={x: batch})               # doctest: +SKIP
    """

    def __init__(self, program: Program, executor: str = "numpy", device: str = "cpu"):
        if not isinstance(program, Program):
            raise IrflowError(f"Session takes an irf.static.Program, got a {type(program).__name__}")
        self.program = program
        self.executor = executor
        self.device = device
        self._values: dict[int, np.ndarray] = {}
        self._plans: dict[tuple, _Plan] = {}
        for var in program.variables:
            self._values[id(var)] = var._value

    def value(self, var: Variable) -> np.ndarray:
        """The session's current value of ``var``."""
        v = self._values.get(id(var))
        if v is None:
            v = self._values[id(var)] = var._value  # a variable made outside the program: its value now
        return v

    def run(self, fetches: Any, feed_dict: dict | None = None) -> Any:
        """Run what ``fetches`` need; return their values in the same structure."""
        b = self.program.builder
        targets, leaves = _fetch_targets(self.program, fetches)
        key = (tuple(targets), len(b.nodes), len(b.inputs))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(targets)
        feeds = self._feeds(feed_dict or {}, plan)
        for name, var in plan.variables:
            feeds[name] = self.value(var)
        out = plan.runner.run(feeds) if plan.graph.outputs else {}
        for name, var in plan.assignments:
            arr = np.asarray(out[name])
            if arr.shape != var.shape:
                raise ShapeError(f"Session.run: assignment {name!r} gives {var.name!r} shape {arr.shape}, the variable has {var.shape}")
            self._values[id(var)] = arr
        results = []
        for leaf in leaves:
            if isinstance(leaf, Group):
                results.append(None)
            elif isinstance(leaf, Variable):
                results.append(self.value(leaf))
            else:
                results.append(out[leaf if isinstance(leaf, str) else leaf.name])
        return unflatten(flatten(fetches, []), iter(results))

    def graph_for(self, fetches: Any) -> Graph:
        """The pruned graph ``run(fetches)`` executes (fetches, then the assignments they trigger).

        >>> [n.op for n in sess.graph_for(loss).nodes]     # doctest: +SKIP
        """
        b = self.program.builder
        targets, _ = _fetch_targets(self.program, fetches)
        key = (tuple(targets), len(b.nodes), len(b.inputs))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(targets)
        return plan.graph

    # -- internals -------------------------------------------------------------------------------
    def _plan(self, targets: list[str]) -> _Plan:
        b = self.program.builder
        outputs = list(dict.fromkeys(_with_assignments(b, targets)))
        graph = prune(b.full_graph(outputs), keep_inputs=False)
        plan = _Plan()
        plan.graph = graph
        plan.runner = get_runner(graph, self.executor, self.device) if graph.outputs else None
        inputs = set(graph.input_names)
        plan.placeholders = [n for n in b.placeholders if n in inputs]
        plan.variables = [(n, v) for n, v in b.variable_inputs if n in inputs]
        plan.assignments = [(n, b.assign_values[n]) for n in outputs if n in b.assign_values]
        return plan

    def _feeds(self, feed_dict: dict, plan: _Plan) -> dict[str, Any]:
        b = self.program.builder
        feeds: dict[str, Any] = {}
        bound: dict[str, tuple[int, str]] = {}
        for key, value in feed_dict.items():
            if isinstance(key, SymbolicTensor):
                if key.builder is not b or key.name not in b.placeholders:
                    raise IrflowError(
                        f"feed_dict key %{key.name} is not a placeholder of program {self.program.name!r}; "
                        f"placeholders: {', '.join(b.placeholders) or 'none'}"
                    )
                name = key.name
            elif isinstance(key, str):
                if key not in b.placeholders:
                    raise IrflowError(
                        f"feed_dict: unknown placeholder {key!r} in program {self.program.name!r}; "
                        f"placeholders: {', '.join(b.placeholders) or 'none'}"
                    )
                name = key
            else:
                raise IrflowError(f"feed_dict keys are placeholders or their names, got a {type(key).__name__}")
            feeds[name] = _check_feed(name, b.types[name], value, bound)
        missing = [n for n in plan.placeholders if n not in feeds]
        if missing:
            shown = ", ".join(f"'{n}' ({b.types[n]})" for n in missing)
            raise IrflowError(f"Session.run: missing feed for placeholder {shown}, which the fetches need")
        return {n: feeds[n] for n in plan.placeholders}


def _check_feed(name: str, t: TensorType, value: Any, bound: dict) -> np.ndarray:
    """A feed as an array of the placeholder's dtype and shape (Python data takes its dtype)."""
    if isinstance(value, np.ndarray):
        arr = value
    elif hasattr(value, "_eager_value"):
        arr = value._eager_value()
    elif hasattr(value, "_value") and isinstance(value._value, np.ndarray):
        arr = value._value
    elif isinstance(value, np.generic):
        arr = np.asarray(value)
    else:
        arr = np.asarray(value)
        if arr.dtype.kind == "f" and not t.dtype.is_float:
            raise DTypeError(f"feed for placeholder '{name}' ({t}): Python floats cannot become {t.dtype.value}")
        arr = arr.astype(t.dtype.numpy)
    got = dtype_of_array(arr)
    if got is not t.dtype:
        raise DTypeError(f"feed for placeholder '{name}' must be {t.dtype.value}, got {got.value} (shape {arr.shape}); cast explicitly")
    if arr.ndim != t.rank or any(isinstance(d, int) and d != s for d, s in zip(t.shape, arr.shape)):
        raise ShapeError(f"feed for placeholder '{name}' must have shape {t.shape}, got {arr.shape}")
    for d, s in zip(t.shape, arr.shape):
        if isinstance(d, str):
            seen = bound.setdefault(d, (s, name))
            if seen[0] != s:
                raise ShapeError(f"feed for placeholder '{name}': dim {d!r} is {s}, but {seen[0]} in placeholder '{seen[1]}'")
    return arr
