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
from typing import Any, Callable, Sequence

from irflow.errors import DTypeError, ExecutorError, IrflowError, ShapeError
from irflow.frontends.spec import TensorSpec
from irflow.passes.fold_constants import fold_constants
from irflow.passes.prune import prune
from irflow.passes.name_outputs import name_outputs
from irflow.ir.graph import Graph
from irflow.ops.dispatch import BUILDER_STACK

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


_FLAT_TREES: dict[int, Any] = {}  # tree of n flat positional arguments and no keywords

# one trace's graph and how to call it; the builder a trace runs under; host_callback
from irflow.frontends.concrete import (ConcreteFunction, TraceBuilder, _is_tensor_leaf, _leaf_key,  # noqa: E402,F401
                                       _leaf_spec, host_callback)


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
