"""One trace of an ``irf.function``: ``ConcreteFunction`` (its graph and how to call it),
``TraceBuilder`` (the builder the Python body runs under) and ``host_callback``.

``irflow/frontends/trace.py`` holds ``irf.function`` itself: the cache of traces by input
signature, and the tracing; it re-exports these names.

>>> cf = f.get_concrete_function(irf.TensorSpec((None, 3), "float32"))   # doctest: +SKIP
>>> cf(np.ones((2, 3), "float32"))                                        # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from irflow.errors import DTypeError, IrflowError, ShapeError
from irflow.executors import get_runner
from irflow.frontends.eager import RECORDERS, Tensor, _wrap
from irflow.frontends.spec import TensorSpec
from irflow.frontends.structure import flatten, unflatten
from irflow.frontends.variables import StateBuilder, Variable
from irflow.ir.dtypes import dtype_of_array
from irflow.ir.graph import Graph
from irflow.ops.builder import SymbolicTensor
from irflow.ops.dispatch import BUILDER_STACK, bind
from irflow.ops.registry import REGISTRY
from irflow.passes.prune import prune

_TENSOR_TYPES = (Tensor, np.ndarray, SymbolicTensor, TensorSpec)


def _leaf_key(x: Any) -> tuple:
    """What the cache compares for one argument leaf."""
    t = type(x)
    if t is Tensor:
        v = x._value
        return ("T", v.dtype, v.shape)
    if t is np.ndarray:
        return ("T", x.dtype, x.shape)
    if t is TensorSpec:
        return ("T", x.dtype.numpy, x.shape)
    if t is SymbolicTensor:
        return ("T", x.dtype.numpy, x.shape)
    if isinstance(x, Variable):
        return ("V", id(x))
    if isinstance(x, np.generic):
        return ("T", x.dtype, ())
    try:
        hash(x)
    except TypeError:
        return ("I", id(x))
    return ("P", t, x)


def _is_tensor_leaf(x: Any) -> bool:
    return isinstance(x, _TENSOR_TYPES) or isinstance(x, np.generic)


def _leaf_spec(x: Any) -> TensorSpec:
    if isinstance(x, TensorSpec):
        return x
    if isinstance(x, SymbolicTensor):
        return TensorSpec(x.shape, x.dtype)
    arr = x._value if type(x) is Tensor else np.asarray(x)
    return TensorSpec(arr.shape, dtype_of_array(arr))


# -- the result of one trace --------------------------------------------------------------------
@dataclass
class ConcreteFunction:
    """One traced graph of an ``irf.function`` and how to call it.

    - ``graph``: inputs are the flattened tensor arguments (``arg_inputs``), then one input per
      Variable read (``variable_inputs``: input name -> Variable); outputs are the flattened
      results (``result_outputs``), then one output per Variable assigned
      (``variable_outputs``: output name -> Variable to write back).
    - ``input_specs``: the TensorSpec of each tensor argument it was traced for.
    - ``unflatten_outputs(values)`` rebuilds the user's output structure from the result values.

    >>> cf = f.get_concrete_function(irf.TensorSpec((None, 3), "float32"))   # doctest: +SKIP
    >>> cf.graph.input_names, cf.result_outputs                               # doctest: +SKIP
    """

    graph: Graph
    arg_inputs: list[str]
    variable_inputs: list[tuple[str, Variable]]
    result_outputs: list[str]
    variable_outputs: list[tuple[str, Variable]]
    input_specs: list[TensorSpec]
    output_tree: Any
    output_slots: list[tuple[str, Any]]  # ("t", index into result_outputs) or ("c", a Python value)
    name: str = "function"
    executor: str = "numpy"
    device: str = "cpu"
    ort_options: Any = None  # an irflow.executors.onnx.OrtOptions, for executor="ort"
    # host_callback calls made while tracing: (fn, its arguments with ("o", output name) for
    # a graph value and ("c", object) for a constant); run after each call, in trace order.
    callbacks: list[tuple[Callable, list[tuple[str, Any]]]] = field(default_factory=list)
    _runner: Any = field(default=None, repr=False)

    def unflatten_outputs(self, values: Sequence[Any]) -> Any:
        """The user's output structure around ``values`` (one per ``result_outputs`` entry)."""
        leaves = [values[s] if kind == "t" else s for kind, s in self.output_slots]
        return unflatten(self.output_tree, iter(leaves))

    def bound_graph(self) -> Graph:
        """The graph with every Variable it reads bound as an initializer (its current value,
        copied) and the Variable updates dropped: a pure function of the user's arguments,
        runnable by ``irf.run`` with only those (as a frozen TF graph or a JAX jaxpr with its
        constants), and what inference export writes. Variable initializers keep the
        Variable's name (``mlp/linear/weight``).

        >>> g = f.get_concrete_function(irf.TensorSpec((None, 4), "float32")).bound_graph()   # doctest: +SKIP
        >>> irf.run(g, {"x": x})                                                             # doctest: +SKIP
        """
        types = {v.name: v.type for v in self.graph.inputs}
        initializers = dict(self.graph.initializers)
        for name, var in self.variable_inputs:
            value = np.array(var.numpy())  # a copy: the bound graph must not change if training goes on
            t = types[name]
            if value.dtype != t.dtype.numpy:
                raise DTypeError(f"variable {var.name!r}: value is {value.dtype} but graph input {name!r} is {t.dtype.value}")
            if len(value.shape) != t.rank or any(isinstance(d, int) and d != n for d, n in zip(t.shape, value.shape)):
                raise ShapeError(f"variable {var.name!r}: value has shape {value.shape}, graph input {name!r} is {t}")
            initializers[name] = value
        results = set(self.result_outputs)
        return prune(Graph(
            name=self.graph.name,
            inputs=tuple(v for v in self.graph.inputs if v.name not in initializers),
            outputs=tuple(v for v in self.graph.outputs if v.name in results),
            nodes=self.graph.nodes,
            initializers=initializers,
            opset_version=self.graph.opset_version,
        ))

    def __repr__(self) -> str:
        types = {v.name: v.type for v in self.graph.inputs}
        args = ", ".join(f"{n}: {types[n]}" if n in types else n for n in self.arg_inputs)
        outs = ", ".join(self.result_outputs)
        state = ""
        if self.variable_inputs or self.variable_outputs:
            state = f"; reads {len(self.variable_inputs)} variable(s), assigns {len(self.variable_outputs)}"
        return f"<ConcreteFunction {self.name}({args}) -> ({outs}){state}; {len(self.graph.nodes)} nodes>"

    def __str__(self) -> str:
        return f"{self!r}\n{self.graph}"

    def accepts(self, leaves: Sequence[Any]) -> bool:
        """True if tensor argument leaves fit ``input_specs`` (None and symbol dims match any size)."""
        if len(leaves) != len(self.input_specs):
            return False
        bound: dict = {}
        for x, spec in zip(leaves, self.input_specs):
            arr = x._value if type(x) is Tensor else x
            shape = arr.shape
            dtype = arr.dtype if isinstance(arr, (np.ndarray, np.generic)) else arr.dtype.numpy
            if dtype != spec.dtype.numpy or spec.accepts(spec.dtype, shape, bound) is not None:
                return False
        return True

    def call_flat(self, arg_leaves: Sequence[Any]) -> Any:
        """Run the graph on tensor argument leaves (in ``arg_inputs`` order); write Variables back."""
        n_res = len(self.result_outputs)
        if RECORDERS and "call" in REGISTRY:
            # A tape records: run the whole graph as ONE op so the tape can differentiate it.
            ins = list(arg_leaves) + [var for _, var in self.variable_inputs]
            outs = bind("call", *ins, graph=self.graph)
            outs = outs if isinstance(outs, tuple) else (outs,)
            results = list(outs[:n_res])
            n_var = len(self.variable_outputs)
            new_values = [o._value for o in outs[n_res:n_res + n_var]]
            out = {name: o._value for name, o in zip(self.graph.output_names[n_res + n_var:], outs[n_res + n_var:])}
        else:
            feeds = {}
            for name, x in zip(self.arg_inputs, arg_leaves):
                feeds[name] = x._value if type(x) is Tensor else x
            for name, var in self.variable_inputs:
                feeds[name] = var._value
            runner = self._runner
            if runner is None:
                runner = self._runner = get_runner(self.graph, self.executor, self.device, self.ort_options)
            # accepts() checked the arguments against the signature and Variables keep their
            # shape and dtype, so the runner's own feed check (~25 us per call) is redundant.
            out = runner.run(feeds, check=False)
            results = [_wrap(np.asarray(out[n])) for n in self.result_outputs]
            new_values = [np.asarray(out[n]) for n, _ in self.variable_outputs]
        for (name, var), arr in zip(self.variable_outputs, new_values):
            var._set(arr, f"assignment in irf.function {self.name!r}")
        for fn, args in self.callbacks:
            fn(*[np.asarray(out[v]) if kind == "o" else v for kind, v in args])
        return self.unflatten_outputs(results)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        leaves: list = []
        flatten((args, kwargs), leaves)
        tensors = [x for x in leaves if _is_tensor_leaf(x)]
        if not self.accepts(tensors):
            got = ", ".join(str(_leaf_spec(x)) for x in tensors)
            raise IrflowError(f"concrete function {self.name!r} takes {self.input_specs}, got ({got})")
        return self.call_flat(tensors)

    def inline(self, builder: Any, arg_leaves: Sequence[Any]) -> Any:
        """Add this graph's nodes to ``builder`` (a nested call inside another trace)."""
        from irflow.autodiff.vjp import replay

        env: dict[str, SymbolicTensor] = {}
        for name, x in zip(self.arg_inputs, arg_leaves):
            env[name] = builder.to_symbolic(x, None)
        for name, var in self.variable_inputs:
            env[name] = builder.to_symbolic(var, None)
        for name, arr in self.graph.initializers.items():
            env[name] = builder.constant(arr, name=name)
        replay(self.graph, builder, env)
        for name, var in self.variable_outputs:
            var.assign(env[name])
        for fn, args in self.callbacks:  # the outer trace calls them after each of its calls
            host_callback(fn, *[env[v] if kind == "o" else v for kind, v in args])
        return self.unflatten_outputs([env[n] for n in self.result_outputs])


class TraceBuilder(StateBuilder):
    """The builder a trace runs under: reads after an assignment see the assigned value."""

    reads_see_assignments = True

    def __init__(self, name: str = "graph"):
        super().__init__(name)
        self.host_callbacks: list[tuple[Callable, list[tuple[str, Any]]]] = []  # ("s", sym) / ("c", object)


def host_callback(fn: Callable[..., Any], *args: Any) -> None:
    """Call ``fn`` on the NumPy values of ``args``: now, when not tracing; after every call of
    the traced function, with the values the graph computed, when called inside
    ``irf.function`` (as ``jax.debug.callback``). How ``irf.summary`` records traced values.

    Tensors, Variables and arrays reach ``fn`` as NumPy arrays (inside a trace a Variable is
    read at this point of the program, so an earlier assignment in the step is seen); any other
    argument is passed through unchanged. Inside a static Program or a control-flow body it is
    an ``IrflowError``.

    >>> irf.host_callback(print, irf.tensor([1.0, 2.0]))   # doctest: +SKIP
    [1. 2.]
    """
    if not BUILDER_STACK:
        fn(*[a._eager_value() if isinstance(a, Variable) else a._value if type(a) is Tensor else a for a in args])
        return
    builder = BUILDER_STACK[-1]
    if not isinstance(builder, TraceBuilder):
        raise IrflowError(f"host_callback({getattr(fn, '__name__', fn)!r}) inside a {type(builder).__name__}: only "
                          "eager code and irf.function (not a static Program or a control-flow body) support it")
    slots: list[tuple[str, Any]] = []
    for a in args:
        if isinstance(a, (SymbolicTensor, Variable)):
            slots.append(("s", builder.to_symbolic(a, None)))
        elif type(a) is Tensor:
            slots.append(("c", a._value))
        else:
            slots.append(("c", a))
    builder.host_callbacks.append((fn, slots))
