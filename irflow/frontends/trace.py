"""``irf.function``: trace a Python function once per input signature, then run its graph.

As ``tf.function`` and ``jax.jit``: the first call with a new signature runs the Python body
once on symbolic tensors (a ``TraceBuilder`` is active, so every ``bind`` adds a node), the
resulting Graph is cached, and later calls with the same signature only run the graph.

The cache key is the structure of the arguments plus, per leaf: (dtype, shape) for tensors
(Tensor, ndarray, TensorSpec), the identity for Variables, and the value for other Python
objects (ints, floats, strings: they are baked into the graph, as TensorFlow does).

State: a Variable read in the body becomes a graph input that each call feeds with the
variable's current value; an assignment becomes a graph output written back after the call.

>>> @irf.function
... def f(x):
...     return irf.relu(x) * 2.0
>>> f(np.ones((2, 3), "float32")).shape                     # doctest: +SKIP
(2, 3)
>>> f.get_graph(irf.TensorSpec((None, 3), "float32"))       # doctest: +SKIP
"""
from __future__ import annotations

import functools
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from irflow.errors import DTypeError, ExecutorError, IrflowError, ShapeError
from irflow.executors import get_runner
from irflow.frontends.eager import RECORDERS, Tensor, _wrap
from irflow.frontends.spec import TensorSpec
from irflow.frontends.variables import StateBuilder, Variable
from irflow.passes.fold_constants import fold_constants
from irflow.passes.prune import prune
from irflow.passes.name_outputs import name_outputs
from irflow.ir.dtypes import dtype_of_array
from irflow.ir.graph import Graph
from irflow.ops.builder import SymbolicTensor
from irflow.ops.dispatch import BUILDER_STACK, bind
from irflow.ops.registry import REGISTRY

# After this many traces of one function, each further trace warns (TensorFlow warns at 5).
RETRACE_WARNING_THRESHOLD = 5


class RetracingWarning(UserWarning):
    """An ``irf.function`` traced again and again: its signature keeps changing."""


# argument structures: irflow/frontends/structure.py (re-exported: ragged registers here)
from irflow.frontends import structure as _structure  # noqa: E402
from irflow.frontends.structure import (_PART_NAMES, _STRUCTURES, _Registered, flatten,  # noqa: E402,F401
                                        register_structure, unflatten)


def output_leaf_names(out: Any) -> list[str]:
    """One readable name per leaf of a traced function's result, in ``flatten`` order.

    Dict keys and namedtuple fields name their leaves (nested ones joined by ``/``: ``{"a":
    {"b": t}}`` gives ``a/b``); positions in a tuple or list add ``_<i>`` (``{"a": (t, u)}``
    gives ``a_0``, ``a_1``); a bare tensor or a top-level tuple gives ``output_0``, ``output_1``,
    ... as TensorFlow names a concrete function's outputs.

    >>> output_leaf_names({"loss": 1, "acc": 2}), output_leaf_names((1, 2))
    (['loss', 'acc'], ['output_0', 'output_1'])
    """
    names: list[str] = []

    def walk(x: Any, base: str | None) -> None:
        t = type(x)
        if t is dict or (isinstance(x, tuple) and hasattr(x, "_fields")):
            items = x.items() if t is dict else zip(x._fields, x)
            for k, v in items:
                walk(v, f"{base}/{k}" if base else str(k))
        elif t is tuple or t is list:
            for i, v in enumerate(x):
                walk(v, f"{base}_{i}" if base else f"output_{i}")
        else:
            names.append(base or "output_0")

    walk(out, None)
    return names


_TENSOR_TYPES = (Tensor, np.ndarray, SymbolicTensor, TensorSpec)
_FLAT_TREES: dict[int, Any] = {}  # tree of n flat positional arguments and no keywords


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


# -- irf.function ---------------------------------------------------------------------------------
def _naming_signature(fn: Callable, sig: inspect.Signature | None) -> inspect.Signature | None:
    """The signature whose parameter names become graph input names.

    A callable object that only forwards ``*args`` to a ``forward`` method (an ``nn.Module``,
    as in PyTorch) is named after ``forward``'s parameters, so a Module's input is ``x``, not
    ``arg0``.
    """
    forward = getattr(fn, "forward", None)
    if sig is not None and callable(forward) and any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values()):
        try:
            return inspect.signature(forward)
        except (TypeError, ValueError):
            pass
    return sig


class Function:
    """A Python function traced to a graph per input signature; see ``irf.function``."""

    def __init__(
        self,
        fn: Callable,
        *,
        executor: str = "numpy",
        device: str = "cpu",
        input_signature: Sequence[Any] | None = None,
        name: str | None = None,
        ort_options: Any = None,
    ):
        self.python_function = fn
        self.name = name or getattr(fn, "__name__", "function")
        self.executor = executor
        self.device = device
        if ort_options is not None and executor != "ort":
            raise ExecutorError(f"irf.function {self.name!r}: ort_options were given but executor={executor!r}; "
                                "pass executor='ort'")
        self.ort_options = ort_options
        self.input_signature = None if input_signature is None else list(input_signature)
        self.trace_count = 0
        self._cache: dict[tuple, ConcreteFunction] = {}
        self._relaxed: list[tuple[tuple, ConcreteFunction]] = []  # traced with None/symbol dims
        try:
            self._signature = inspect.signature(fn)
        except (TypeError, ValueError):
            self._signature = None
        self._naming_signature = _naming_signature(fn, self._signature)
        functools.update_wrapper(self, fn)

    # -- public API ------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs and not any(isinstance(a, _structure._CONTAINERS) for a in args):
            leaves = list(args)  # the common case, flat positional arguments: no recursive flatten
            tree = _FLAT_TREES.get(len(args))
            if tree is None:
                tree = _FLAT_TREES[len(args)] = flatten((args, {}), [])
        else:
            leaves = []
            tree = flatten((args, kwargs), leaves)
        key = (tree, tuple(_leaf_key(x) for x in leaves))
        concrete = self._cache.get(key)
        if BUILDER_STACK:  # called inside another trace (or Program): inline the graph there
            if concrete is None:
                concrete = self._concrete(args, kwargs, leaves, tree, key)
            return concrete.inline(BUILDER_STACK[-1], [x for x in leaves if _is_tensor_leaf(x)])
        tensors = [x for x in leaves if _is_tensor_leaf(x)]
        if concrete is None:
            concrete = self._concrete(args, kwargs, leaves, tree, key)
        return concrete.call_flat(tensors)

    def get_concrete_function(self, *args_or_specs: Any, **kwargs: Any) -> ConcreteFunction:
        """The ConcreteFunction for these arguments or TensorSpecs (traced now if not cached).

        >>> cf = f.get_concrete_function(irf.TensorSpec(("batch", 4), "float32"))   # doctest: +SKIP
        """
        if not args_or_specs and not kwargs and self.input_signature is not None:
            args_or_specs = tuple(self.input_signature)
        leaves: list = []
        tree = flatten((args_or_specs, kwargs), leaves)
        key = (tree, tuple(_leaf_key(x) for x in leaves))
        concrete = self._cache.get(key)
        if concrete is None:
            concrete = self._concrete(args_or_specs, kwargs, leaves, tree, key)
        return concrete

    def get_graph(self, *args_or_specs: Any, bind_variables: bool = False, **kwargs: Any) -> Graph:
        """The traced Graph for these arguments or TensorSpecs.

        The Variables the function reads are graph inputs and their assignments graph outputs
        (the IR stays pure); ``bind_variables=True`` instead returns
        ``ConcreteFunction.bound_graph()``: Variables as initializers holding their current
        values, runnable with the user's arguments alone.

        >>> g = f.get_graph(irf.TensorSpec((None, 100), "float32"), bind_variables=True)   # doctest: +SKIP
        >>> irf.run(g, {"x": x})                                                         # doctest: +SKIP
        """
        cf = self.get_concrete_function(*args_or_specs, **kwargs)
        return cf.bound_graph() if bind_variables else cf.graph

    def export_onnx(self, path: str, *specs: Any, training: bool = False) -> Any:
        """Export the traced graph to an ONNX file (as ``irf.onnx.export``).

        >>> irf.function(lambda x: x * 2.0).export_onnx("double.onnx", irf.TensorSpec((3,), "float32"))  # doctest: +SKIP
        """
        from irflow.frontends.onnx_export import export_traced

        return export_traced(self, path, *specs, training=training)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return _BoundFunction(self, obj)

    def __repr__(self) -> str:
        sig = str(self._signature) if self._signature is not None else "(...)"
        return f"<irf.function {self.name}{sig}, executor={self.executor!r}, traced {self.trace_count}x>"

    # -- cache and tracing -----------------------------------------------------------------------
    def _concrete(self, args: tuple, kwargs: dict, leaves: list, tree: Any, key: tuple) -> ConcreteFunction:
        tensors = [x for x in leaves if _is_tensor_leaf(x)]
        others = tuple(k for k in key[1] if k[0] != "T")
        relaxed_key = (tree, others)
        if self.input_signature is not None:
            specs = self._check_signature(tensors)
        else:
            specs = [_leaf_spec(x) for x in tensors]
        # A trace made for None/symbol dims (or for the input_signature) serves every size it admits.
        for rkey, cf in self._relaxed:
            if rkey == relaxed_key and (self.input_signature is not None or cf.accepts(tensors)):
                self._cache[key] = cf
                return cf
        cf = self._trace(args, kwargs, leaves, tree, specs)
        self._cache[key] = cf
        if self.input_signature is not None or any(not isinstance(d, int) for s in specs for d in s.shape):
            self._relaxed.append((relaxed_key, cf))
        return cf

    def _check_signature(self, tensors: list) -> list[TensorSpec]:
        sig_leaves: list = []
        flatten(self.input_signature, sig_leaves)
        specs = [s if isinstance(s, TensorSpec) else _leaf_spec(s) for s in sig_leaves]
        if len(tensors) != len(specs):
            raise IrflowError(
                f"irf.function {self.name!r}: input_signature has {len(specs)} tensor(s), the call passed {len(tensors)}"
            )
        bound: dict = {}
        for i, (x, spec) in enumerate(zip(tensors, specs)):
            if isinstance(x, TensorSpec):
                continue
            s = _leaf_spec(x)
            why = spec.accepts(s.dtype, s.shape, bound)
            if why is not None:
                error = DTypeError if why.startswith("dtype") else ShapeError
                raise error(f"irf.function {self.name!r}: tensor argument {i}: {why} (input_signature {spec})")
        return specs

    def _arg_names(self, args: tuple, kwargs: dict) -> list[str]:
        """Readable graph input names: parameter names, with _<i> for nested leaves."""
        names: list[str] = []
        sig = self._naming_signature
        params = list(sig.parameters) if sig is not None else []
        for i, a in enumerate(args):
            base = params[i] if i < len(params) and sig.parameters[params[i]].kind in (
                inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD) else f"arg{i}"
            self._names_of(a, base, names)
        for k, v in kwargs.items():
            self._names_of(v, k, names)
        return names

    def _names_of(self, x: Any, base: str, out: list[str]) -> None:
        sub: list = []
        flatten(x, sub)
        tensors = [s for s in sub if _is_tensor_leaf(s)]
        part_names = _PART_NAMES.get(type(x))
        if part_names is not None and len(part_names) == len(tensors):
            out.extend(f"{base}_{n}" for n in part_names)
        elif len(sub) == 1 and tensors:
            out.append(base)
        else:
            out.extend(f"{base}_{j}" for j in range(len(tensors)))

    def _trace(self, args: tuple, kwargs: dict, leaves: list, tree: Any, specs: list[TensorSpec]) -> ConcreteFunction:
        if self._signature is not None:
            try:
                self._signature.bind(*args, **kwargs)
            except TypeError as e:
                raise IrflowError(f"irf.function {self.name!r}{self._signature} called with wrong arguments: {e}") from None
        self.trace_count += 1
        if self.trace_count > RETRACE_WARNING_THRESHOLD:
            warnings.warn(
                f"irf.function {self.name!r} has been traced {self.trace_count} times: its input shapes, dtypes or "
                "Python arguments keep changing, and every trace is expensive. Pass input_signature with None "
                "(or symbolic) dims, or pass tensors instead of Python numbers.",
                RetracingWarning,
                stacklevel=4,
            )
        b = TraceBuilder(self.name)
        names = self._arg_names(args, kwargs)
        sym_leaves = []
        arg_inputs = []
        it = iter(specs)
        k = 0
        for x in leaves:
            if _is_tensor_leaf(x):
                spec = next(it)
                nm = b.free_name(names[k] if k < len(names) else f"arg{k}")
                s = b.input(nm, spec.dtype, spec.shape)
                arg_inputs.append(nm)
                sym_leaves.append(s)
                k += 1
            else:
                sym_leaves.append(x)
        sym_args, sym_kwargs = unflatten(tree, iter(sym_leaves))
        try:
            with b:
                out = self.python_function(*sym_args, **sym_kwargs)
        except IrflowError as e:
            raise type(e)(f"while tracing irf.function {self.name!r}: {e}") from e
        out_leaves: list = []
        out_tree = flatten(out, out_leaves)
        slots: list[tuple[str, Any]] = []
        result_syms = []
        for leaf in out_leaves:
            if leaf is None or isinstance(leaf, str):
                slots.append(("c", leaf))
                continue
            s = b.to_symbolic(leaf, None)
            slots.append(("t", len(result_syms)))
            result_syms.append(s)
        wanted = [name for name, leaf in zip(output_leaf_names(out), out_leaves) if not (leaf is None or isinstance(leaf, str))]
        finals = b.final_assignments()
        wanted += [f"{var.name}_new" for var, _ in finals]
        # host_callback values are extra outputs after the Variables' (as assignments are).
        callback_syms = [v for _, cb_args in b.host_callbacks for kind, v in cb_args if kind == "s"]
        wanted += [f"callback_{i}" for i in range(len(callback_syms))]
        for s in result_syms + [s for _, s in finals] + callback_syms:
            b.output(s)
        # Graph inputs: tensor arguments first, then variables in first-read order.
        by_name = {v.name: v for v in b.inputs}
        b.inputs = [by_name[n] for n in arg_inputs] + [by_name[n] for n, _ in b.variable_inputs]
        # Dead code out: a GradientTape in the body also emits cotangents nobody asked for (the
        # gradient of a matmul with respect to the data batch), which would run on every call.
        # Small values known before any feed (a loss gradient's seed, scaled and broadcast)
        # become initializers instead of nodes that would run on every call.
        graph = name_outputs(b.build(), wanted)
        out_names = [v.name for v in graph.outputs]
        n_res, n_var = len(result_syms), len(finals)
        result_names, var_names = out_names[:n_res], out_names[n_res:n_res + n_var]
        callback_names = iter(out_names[n_res + n_var:])
        callbacks = [(fn, [("o", next(callback_names)) if kind == "s" else (kind, v) for kind, v in cb_args])
                     for fn, cb_args in b.host_callbacks]
        graph = prune(fold_constants(graph))
        return ConcreteFunction(
            graph=graph,
            arg_inputs=arg_inputs,
            variable_inputs=list(b.variable_inputs),
            result_outputs=result_names,
            variable_outputs=[(n, var) for n, (var, _) in zip(var_names, finals)],
            input_specs=list(specs),
            output_tree=out_tree,
            output_slots=slots,
            name=self.name,
            executor=self.executor,
            device=self.device,
            ort_options=self.ort_options,
            callbacks=callbacks,
        )


class _BoundFunction:
    """``Function`` accessed on an instance: the instance is the first (Python) argument."""

    def __init__(self, function: Function, obj: Any):
        self._function = function
        self._obj = obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function(self._obj, *args, **kwargs)

    def get_concrete_function(self, *args: Any, **kwargs: Any) -> ConcreteFunction:
        return self._function.get_concrete_function(self._obj, *args, **kwargs)

    def get_graph(self, *args: Any, bind_variables: bool = False, **kwargs: Any) -> Graph:
        return self._function.get_graph(self._obj, *args, bind_variables=bind_variables, **kwargs)

    def export_onnx(self, path: str, *specs: Any, training: bool = False) -> Any:
        from irflow.frontends.onnx_export import export_traced

        return export_traced(self, path, *specs, training=training)

    @property
    def trace_count(self) -> int:
        return self._function.trace_count


def function(
    fn: Callable | None = None,
    *,
    executor: str = "numpy",
    device: str = "cpu",
    input_signature: Sequence[Any] | None = None,
    autograph: bool = False,
    ort_options: Any = None,
) -> Any:
    """Trace ``fn`` to a graph once per input signature and run the graph (``tf.function``).

    Usable bare (``@irf.function``) or with options (``@irf.function(executor="ort")``).
    Tensor arguments (Tensors, arrays) are graph inputs; other Python arguments are part of
    the cache key and constants of the graph. ``input_signature`` (TensorSpecs, one per tensor
    argument, None or symbolic dims allowed) fixes the signature: one trace serves all sizes.
    ``autograph=True`` rewrites Python ``if``/``while``/``for i in irf.range(n)`` on traced
    tensors into ``irf.cond``/``irf.while_loop``/``irf.scan`` (see docs/control-flow.md).
    ``ort_options`` (an ``irflow.executors.onnx.OrtOptions``, with ``executor="ort"``) sets the
    onnxruntime session: threads, spinning, optimization level, opset.

    >>> @irf.function(input_signature=[irf.TensorSpec((None, 4), "float32")])
    ... def f(x):
    ...     return irf.reduce_sum(x, axis=1)
    >>> f(np.ones((3, 4), "float32")).numpy()                  # doctest: +SKIP
    array([4., 4., 4.], dtype=float32)
    """
    if fn is None:
        return lambda f: function(f, executor=executor, device=device, input_signature=input_signature,
                                  autograph=autograph, ort_options=ort_options)
    if autograph:  # Python if/while/for-range on traced tensors become cond/while_loop/scan (docs/control-flow.md)
        from irflow.frontends.autograph import autograph_wrapper

        fn = autograph_wrapper(fn)
    return Function(fn, executor=executor, device=device, input_signature=input_signature, ort_options=ort_options)
