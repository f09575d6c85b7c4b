"""GradientTape: reverse mode for eager code, and the same tape inside traces.

Recording is light: while a tape is active, the eager handler calls ``record(op, inputs,
result, attrs)`` per op, and the tape appends that tuple to a list; no IR objects, no types.

When asked for a gradient the tape turns the recorded path from the watched sources to the
target into a graph (``_TapeGraph``: Node-like records, typed from the arrays), runs
``autodiff.backward`` on it into a fresh GraphBuilder whose inputs are the forward values it
needs, prunes the result, and EXECUTES the gradient graph node by node through ``bind``. So
an outer tape that records sees the backward ops like any other ops: nested tapes give second
derivatives, and the gradient graph is the same IR the other frontends use.

Inside a trace (a GraphBuilder is active) ops are symbolic and not recorded; ``gradient`` on
symbolic tensors calls ``symbolic_gradients``, which emits backward nodes into the trace.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

from irflow.autodiff.structure import flatten, is_symbolic, unflatten
from irflow.autodiff.nested import in_vmap, nested_gradients
from irflow.autodiff.symbolic import symbolic_gradients, symbolic_jacobian
from irflow.autodiff.vjp import backward, run_through_bind
from irflow.errors import IrflowError
from irflow.frontends.eager import RECORDERS, Tensor, _scalar_array, _weak_dtype
from irflow.ir.dtypes import dtype_of_array
from irflow.ir.types import TensorType
from irflow.ops.builder import GraphBuilder
from irflow.ops.dispatch import bind
from irflow.ops.registry import get_op
from irflow.passes.prune import prune

UNCONNECTED = ("zero", "none")


class _VarRead:
    """A Variable as an op input: the variable (identity, watching) and the array read then."""

    __slots__ = ("var", "value")

    def __init__(self, var: Any, value: np.ndarray):
        self.var = var
        self.value = value


_TYPES: dict[tuple, TensorType] = {}


_TYPE_KEYS: dict[int, tuple] = {}  # id(TensorType in _TYPES) -> (dtype name, shape): cheap to hash


def _type_of(arr: np.ndarray) -> TensorType:
    key = (arr.dtype, arr.shape)
    t = _TYPES.get(key)
    if t is None:
        t = _TYPES[key] = TensorType(dtype=dtype_of_array(arr), shape=arr.shape)
        _TYPE_KEYS[id(t)] = (arr.dtype.str, arr.shape)
    return t


class _V:
    """A Value-like (name, type) pair of a tape graph."""

    __slots__ = ("name", "type")

    def __init__(self, name: str, type: TensorType):
        self.name = name
        self.type = type


class _N:
    """A Node-like record of a tape graph: what ``backward`` reads of a node."""

    __slots__ = ("op", "inputs", "outputs", "attrs", "name")

    def __init__(self, op, inputs, outputs, attrs, name):
        self.op, self.inputs, self.outputs, self.attrs, self.name = op, inputs, outputs, attrs, name


class _TapeGraph:
    __slots__ = ("nodes",)

    def __init__(self, nodes):
        self.nodes = nodes


class _LazyInputs(dict):
    """name -> SymbolicTensor; a forward value becomes a builder input the first time it is read."""

    def __init__(self, builder: GraphBuilder, types: dict[str, TensorType]):
        super().__init__()
        self.builder = builder
        self.types = types

    def __missing__(self, name: str):
        t = self.types[name]
        s = self.builder.input(name, t.dtype, t.shape)
        self[name] = s
        return s


def _is_variable(x: Any) -> bool:
    return type(x) is not Tensor and hasattr(x, "_eager_value")


class GradientTape:
    """Records eager ops so gradients can be computed afterwards (as ``tf.GradientTape``).

    >>> x = irf.tensor([1.0, 2.0])
    >>> with irf.GradientTape() as tape:      # doctest: +SKIP
    ...     tape.watch(x)
    ...     y = irf.reduce_sum(x * x)
    >>> tape.gradient(y, x).numpy()           # doctest: +SKIP
    array([2., 4.], dtype=float32)

    ``persistent=True`` allows several ``gradient``/``jacobian`` calls; trainable Variables
    read while recording are watched unless ``watch_accessed_variables=False``.
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True):
        self.persistent = persistent
        self.watch_accessed_variables = watch_accessed_variables
        self._records: list[tuple] = []
        self._watched: dict[int, Any] = {}
        self._used = False

    # -- recording ---------------------------------------------------------------------------
    def __enter__(self) -> "GradientTape":
        if self._used:
            raise IrflowError("this non-persistent GradientTape was already used for a gradient; make a new one")
        RECORDERS.append(self)
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _stop(self) -> None:
        for i in range(len(RECORDERS) - 1, -1, -1):
            if RECORDERS[i] is self:
                del RECORDERS[i]
                return

    def record(self, op: str, inputs: tuple, result: Any, attrs: dict) -> None:
        """Called by the eager handler for each op while this tape is active. Keep it light."""
        for x in inputs:
            if type(x) is not Tensor and hasattr(x, "_eager_value"):  # a Variable: remember the value read
                inputs = tuple(_VarRead(v, v._eager_value()) if _is_variable(v) else v for v in inputs)
                break
        self._records.append((op, inputs, result, attrs))

    def watch(self, tensor: Any) -> None:
        """Track ``tensor`` (a Tensor, a Variable, or a list/tuple/dict of them) as a source."""
        for t in flatten(tensor)[0]:
            if is_symbolic(t):
                continue  # inside a trace every value is differentiable already
            if not isinstance(t, Tensor) and not _is_variable(t):
                raise IrflowError(f"GradientTape.watch takes Tensors or Variables, got {type(t).__name__}")
            self._watched[id(t)] = t

    def watched_variables(self) -> list:
        """The Variables this tape watches (explicitly, or read while recording)."""
        found = {k: v for k, v in self._watched.items() if _is_variable(v)}
        if self.watch_accessed_variables:
            for rec in self._records:
                for x in rec[1]:
                    if type(x) is _VarRead and getattr(x.var, "trainable", False):
                        found.setdefault(id(x.var), x.var)
        return list(found.values())

    @contextmanager
    def stop_recording(self) -> Iterator[None]:
        """Ops inside this block are not recorded (as ``tf.GradientTape.stop_recording``)."""
        was = any(r is self for r in RECORDERS)
        self._stop()
        try:
            yield
        finally:
            if was:
                RECORDERS.append(self)

    def reset(self) -> None:
        """Forget everything recorded and watched so far."""
        self._records = []
        self._watched = {}

    # -- gradients ---------------------------------------------------------------------------
    def gradient(self, target: Any, sources: Any, output_gradients: Any = None,
                 unconnected_gradients: str = "zero") -> Any:
        """d(sum of target)/d(sources); the result mirrors ``sources`` (tensor, list, tuple, dict).

        A non-scalar target is summed (as TF); a list of targets adds up their gradients.
        ``output_gradients`` (one per target) replaces the implicit ones. Sources the target
        does not depend on give zeros, or None with ``unconnected_gradients="none"``.
        """
        if unconnected_gradients not in UNCONNECTED:
            raise IrflowError(f"unconnected_gradients must be 'zero' or 'none', got {unconnected_gradients!r}")
        targets, _ = flatten(target)
        srcs, tree = flatten(sources)
        ogs = None if output_gradients is None else flatten(output_gradients)[0]
        if ogs is not None and len(ogs) != len(targets):
            raise IrflowError(f"gradient: {len(ogs)} output_gradients for {len(targets)} targets")
        if in_vmap() and (any(is_symbolic(t) for t in targets) or any(is_symbolic(o) for o in ogs or ())):
            # inside vmap: the gradient may cross vmap levels down to this tape's records
            grads = nested_gradients(targets, srcs, ogs, tape=self, unconnected_gradients=unconnected_gradients)
            return unflatten(tree, grads)
        if any(is_symbolic(t) for t in targets):
            grads = symbolic_gradients(targets, srcs, ogs, unconnected_gradients=unconnected_gradients)
            return unflatten(tree, grads)
        self._check_usable()
        graph, feeds, outs = self._gradient_graph(targets, srcs, ogs)
        # With no tape recording, run the gradient graph on the interpreter (cached with the
        # graph); otherwise node by node through bind, so the recording tapes see every op.
        values = execute(graph, feeds) if RECORDERS else run_unrecorded(graph, feeds)
        grads = []
        for s, name in zip(srcs, outs):
            g = values[name] if name is not None else None
            if g is None and unconnected_gradients == "zero":
                g = bind("zeros_like", s)
            grads.append(g)
        self._after_use()
        return unflatten(tree, grads)

    def jacobian(self, target: Any, sources: Any, unconnected_gradients: str = "zero",
                 parallel_iterations: Any = None, experimental_use_pfor: bool = True) -> Any:
        """d target / d source for each source: shape ``target.shape + source.shape``.

        Vectorized (``experimental_use_pfor=True``, the default, as TF): the gradient graph is
        built once with the target's cotangent as an input and ``vmap``ped over all one-hot
        cotangents: ONE batched graph (``autodiff.vmap_transform``), run on the interpreter, or through
        ``bind`` when an outer tape records (so the jacobian is differentiable: hessians).
        ``experimental_use_pfor=False`` runs the gradient graph once per target element.
        ``parallel_iterations`` is accepted for TF compatibility and ignored.
        """
        if unconnected_gradients not in UNCONNECTED:
            raise IrflowError(f"unconnected_gradients must be 'zero' or 'none', got {unconnected_gradients!r}")
        srcs, tree = flatten(sources)
        if is_symbolic(target) or in_vmap():
            return unflatten(tree, symbolic_jacobian(target, srcs, unconnected_gradients=unconnected_gradients,
                                                     tape=self))
        self._check_usable()
        seed = Tensor(np.zeros(target.shape, dtype=target.numpy().dtype))
        graph, feeds, outs = self._gradient_graph([target], srcs, [seed])
        seed_name = graph_seed_name(feeds, seed)
        results = jacobian_from_gradient_graph(graph, feeds, outs, seed_name, tuple(target.shape),
                                               target.numpy().dtype, experimental_use_pfor)
        jac = []
        for s, j in zip(srcs, results):
            if j is None and unconnected_gradients == "zero":
                j = Tensor(np.zeros(tuple(target.shape) + tuple(_shape(s)), dtype=target.numpy().dtype))
            jac.append(j)
        self._after_use()
        return unflatten(tree, jac)

    def batch_jacobian(self, target: Any, source: Any, unconnected_gradients: str = "zero",
                       parallel_iterations: Any = None, experimental_use_pfor: bool = True) -> Any:
        """Per-example jacobians, as ``tf.GradientTape.batch_jacobian``: ``target[b]`` depends on
        ``source[b]`` only; the result has shape ``(B, *target.shape[1:], *source.shape[1:])``.

        One vectorized graph: the gradient graph with a cotangent of shape ``target.shape`` is
        vmapped over the one-hot cotangents of ONE example (all examples at once, since examples
        do not interact), then each example's block is read off the gradient.

        >>> with irf.GradientTape() as t:           # doctest: +SKIP
        ...     t.watch(x); y = irf.tanh(x @ w)
        >>> t.batch_jacobian(y, x).shape           # (B, n_out, n_in)   # doctest: +SKIP
        """
        if unconnected_gradients not in UNCONNECTED:
            raise IrflowError(f"unconnected_gradients must be 'zero' or 'none', got {unconnected_gradients!r}")
        tshape, sshape = tuple(_shape(target)), tuple(_shape(source))
        if not tshape or not sshape or tshape[0] != sshape[0]:
            raise IrflowError(f"batch_jacobian: target {tshape} and source {sshape} must share their first (batch) dim")
        if not all(isinstance(d, int) for d in tshape):
            raise IrflowError(f"batch_jacobian needs a static target shape, got {tshape}")
        n = int(np.prod(tshape[1:], dtype=np.int64))
        dtype = target.dtype.numpy if is_symbolic(target) else target.numpy().dtype
        # seed k is one-hot at element k of EVERY example (examples do not interact)
        seeds = np.ascontiguousarray(np.broadcast_to(np.eye(n, dtype=dtype).reshape((n, 1) + tshape[1:]), (n,) + tshape))
        if is_symbolic(target) or in_vmap():
            from irflow.autodiff.vectorize import vmap

            j = vmap(lambda s: self.gradient(target, source, output_gradients=s,
                                             unconnected_gradients=unconnected_gradients))(seeds)
        else:
            self._check_usable()
            seed = Tensor(np.zeros(tshape, dtype=dtype))
            graph, feeds, outs = self._gradient_graph([target], [source], [seed])
            if outs[0] is None:
                self._after_use()
                if unconnected_gradients == "none":
                    return None
                return Tensor(np.zeros(tshape + sshape[1:], dtype=dtype))
            j = run_over_seeds(graph, feeds, graph_seed_name(feeds, seed), seeds, experimental_use_pfor)[outs[0]]
            self._after_use()
        if j is None:
            return None
        # (n, B, *source[1:]) -> (B, n, *source[1:]) -> (B, *target[1:], *source[1:])
        j = bind("transpose", j, perm=(1, 0) + tuple(range(2, len(sshape) + 1)))
        return bind("reshape", j, shape=tshape + sshape[1:])

    def inline_gradient(self, targets: Sequence[Any], srcs: Sequence[Any], cotangents: Sequence[Any]) -> list:
        """The gradient of recorded ``targets`` (eager) with SYMBOLIC ``cotangents`` (values of
        the graph being built, e.g. inside ``vmap``): the tape's gradient graph is added to the
        active builder, reading the forward values it needs as captured inputs. One gradient
        (or None) per source."""
        from irflow.autodiff.vjp import replay
        from irflow.ops.dispatch import BUILDER_STACK

        self._check_usable()
        b = BUILDER_STACK[-1]
        graph, feeds, outs = self._gradient_graph(list(targets), list(srcs), list(cotangents))
        env: dict[str, Any] = {}
        for k, v in feeds.items():
            if type(v) is _VarRead:
                v = v.var if v.var._eager_value() is v.value else Tensor(v.value)
            env[k] = b.to_symbolic(v, None)
        for k, arr in graph.initializers.items():
            env[k] = b.constant(arr, name=k)
        replay(graph, b, env)
        self._after_use()
        return [env[o] if o is not None else None for o in outs]

    def _check_usable(self) -> None:
        if self._used:
            raise IrflowError(
                "a non-persistent GradientTape can compute gradients only once; use GradientTape(persistent=True)"
            )

    def _after_use(self) -> None:
        if not self.persistent:
            self._used = True
            self._records = []
            self._stop()

    def _gradient_graph(self, targets: Sequence[Any], srcs: Sequence[Any], ogs: Sequence[Any] | None):
        """The recorded path from sources to targets as a gradient Graph, its feeds, and per
        source the name of its gradient output (None: unconnected)."""
        records = list(self._records)
        # 1. watched sources (explicit, and trainable Variables read while recording)
        watched = set(self._watched)
        if self.watch_accessed_variables:
            for rec in records:
                for x in rec[1]:
                    if type(x) is _VarRead and getattr(x.var, "trainable", False):
                        watched.add(id(x.var))
        # 2. forward: which results depend on a watched value through differentiable ops
        active = set(watched)
        is_active = []
        for op, inputs, result, attrs in records:
            hit = False
            for x in inputs:
                if id(x.var if type(x) is _VarRead else x) in active:
                    hit = True
                    break
            if hit and get_op(op).differentiable:
                for r in (result if type(result) is tuple else (result,)):
                    if r._value.dtype.kind == "f" or r._value.dtype.name == "bfloat16":  # bfloat16's kind is "V"
                        active.add(id(r))
                is_active.append(True)
            else:
                is_active.append(False)
        # 3. backward: the active records the targets depend on
        needed = {id(t) for t in targets}
        keep = []
        for i in range(len(records) - 1, -1, -1):
            if not is_active[i]:
                continue
            op, inputs, result, attrs = records[i]
            if any(id(r) in needed for r in (result if type(result) is tuple else (result,))):
                keep.append(i)
                for x in inputs:
                    needed.add(id(x.var if type(x) is _VarRead else x))
        keep.reverse()
        # 4. name every value on the path; build Node-like records typed from the arrays
        names: dict[int, str] = {}
        types: dict[str, TensorType] = {}
        feeds: dict[str, Any] = {}

        def leaf(x: Any, arr: np.ndarray) -> str:
            key = id(x.var if type(x) is _VarRead else x)
            nm = names.get(key)
            if nm is None:
                nm = names[key] = f"v{len(names)}"
                types[nm] = _type_of(arr)
                feeds[nm] = x
            return nm

        nodes = []
        for i in keep:
            op, inputs, result, attrs = records[i]
            in_names = []
            arrays = [x.value if type(x) is _VarRead else (x._value if type(x) is Tensor else x) for x in inputs]
            like = None
            if any(type(a) in (float, int, bool) for a in arrays):
                like = _weak_dtype([a for a in arrays if isinstance(a, np.ndarray)])
            for x, a in zip(inputs, arrays):
                if x is None:
                    in_names.append("")
                    continue
                if type(a) in (float, int, bool):
                    arr = _scalar_array(a, like)
                    nm = f"c{len(feeds)}"
                    types[nm] = _type_of(arr)
                    feeds[nm] = arr
                    in_names.append(nm)
                    continue
                key = id(x.var if type(x) is _VarRead else x)
                if key in names:
                    in_names.append(names[key])
                else:
                    in_names.append(leaf(x, np.asarray(a)))
            outs = []
            for r in (result if type(result) is tuple else (result,)):
                nm = names[id(r)] = f"v{len(names)}"
                types[nm] = _type_of(r._value)
                feeds[nm] = r
                outs.append(_V(nm, types[nm]))
            nodes.append(_N(op, tuple(in_names), tuple(outs), attrs, f"{op}_{i}"))  # attrs filled on a cache miss
        for t in targets:  # a watched target no op produced (d x / d x): a leaf of its own
            if id(t) not in names and id(t) in watched and isinstance(t, Tensor):
                leaf(t, t._value)
        graph = _TapeGraph(nodes)
        wrt = []
        for s in srcs:
            key = id(s)
            nm = names.get(key) if key in watched or key in active else None
            wrt.append(nm if nm is not None and types[nm].dtype.is_float else None)  # int sources: unconnected
        seed_specs: list[tuple[str, str | None]] = []  # (target value, its output-gradient input or None)
        for k, t in enumerate(targets):
            nm = names.get(id(t))
            if nm is None or not types[nm].dtype.is_float:
                continue  # the target is not on the tape: nothing flows
            og_name = None
            if ogs is not None and ogs[k] is not None:
                og_name = f"og{k}"
                og = ogs[k]
                if is_symbolic(og):  # a cotangent of the graph being built (inline_gradient)
                    if not og.type.is_static:
                        raise IrflowError(f"gradient: a symbolic output gradient needs a static shape, got {og.type}")
                    types[og_name] = _type_of(np.broadcast_to(np.zeros((), og.type.dtype.numpy), og.type.shape))
                else:
                    types[og_name] = _type_of(np.asarray(_array(og)))
                feeds[og_name] = ogs[k]
            seed_specs.append((nm, og_name))
        # 5. the gradient graph: from the cache when the same structure was differentiated
        # before (a training loop), else backward into a fresh builder.
        cache_key, keep_alive = _structure_key(nodes, types, wrt, seed_specs)
        hit = _GRAPH_CACHE.get(cache_key) if cache_key is not None else None
        if hit is not None:
            gg, out_names = hit[0], hit[1]
        else:
            gg, out_names = _build_gradient_graph(graph, types, wrt, seed_specs)
            if cache_key is not None:
                if len(_GRAPH_CACHE) >= _CACHE_SIZE:
                    _GRAPH_CACHE.pop(next(iter(_GRAPH_CACHE)))
                _GRAPH_CACHE[cache_key] = (gg, out_names, keep_alive)
        used = set(gg.input_names)
        return gg, {k: v for k, v in feeds.items() if k in used}, out_names


# Gradient graphs by the structure of the recorded path (ops, attrs, wiring, types, sources,
# seeds): a training loop differentiates the same structure every step, and building the
# graph (type rules, IR objects) costs more than running it on small tensors.
_GRAPH_CACHE: dict[tuple, tuple] = {}
_CACHE_SIZE = 128


def _structure_key(nodes: list, types: dict, wrt: list, seed_specs: list) -> tuple[tuple | None, list]:
    """A hashable key of everything the gradient graph depends on, and the attr objects keyed
    by identity (kept alive with the cache entry so their ids cannot be reused)."""
    keep_alive: list = []
    parts = []
    try:
        for n in nodes:
            attrs = []
            for k, v in n.attrs.items():
                if isinstance(v, (np.ndarray, list, dict)) or getattr(type(v), "__hash__", None) is None:
                    keep_alive.append(v)
                    v = ("id", id(v))
                attrs.append((k, v))
            parts.append((n.op, tuple(attrs), n.inputs, tuple(o.name for o in n.outputs)))
        used = {i for n in nodes for i in n.inputs} | {o for o, _ in seed_specs} | {w for w in wrt if w}
        used |= {og for _, og in seed_specs if og}
        typed = tuple(sorted((nm, _TYPE_KEYS[id(types[nm])]) for nm in used if nm in types))
        key = (tuple(parts), typed, tuple(wrt), tuple(seed_specs))
        hash(key)
    except TypeError:
        return None, []
    return key, keep_alive


def _build_gradient_graph(graph: _TapeGraph, types: dict, wrt: list, seed_specs: list):
    """Run ``backward`` into a fresh builder (forward values become its inputs when first read)."""
    for n in graph.nodes:  # VJP rules get every attr, defaults included
        n.attrs = get_op(n.op).fill_attrs(n.attrs, f"tape record {n.name}")
    b = GraphBuilder("tape_gradient")
    env = _LazyInputs(b, types)
    with b:
        seeds: dict[str, Any] = {}
        for nm, og_name in seed_specs:
            seed = env[og_name] if og_name is not None else bind("ones_like", env[nm])
            seeds[nm] = seeds[nm] + seed if nm in seeds else seed
        grads = backward(graph, env, seeds, [w for w in wrt if w is not None]) if seeds else {}
        out_names: list[str | None] = []
        for w in wrt:
            g = grads.get(w) if w is not None else None
            if g is None:
                out_names.append(None)
                continue
            b.output(g)
            out_names.append(g.name)
    return prune(b.build(), keep_inputs=False), out_names


_BATCHED: dict[tuple, tuple] = {}  # (id(gradient graph), seed name, n) -> (graph, its vmapped graph)


def run_over_seeds(graph: Any, feeds: dict, seed_name: str | None, seeds: np.ndarray, pfor: bool = True) -> dict:
    """Run a gradient graph on every cotangent in ``seeds`` (stacked on axis 0): outputs gain a
    leading axis. ``pfor``: one vmapped graph (cached per gradient graph); else a loop.
    Executed through ``bind`` when a tape records (so the result is differentiable)."""
    n = seeds.shape[0]
    if seed_name is None:
        return {v.name: None for v in graph.outputs}
    if pfor:
        from irflow.autodiff.vmap_transform import vmap_graph

        key = (id(graph), seed_name, n)
        hit = _BATCHED.get(key)
        if hit is None or hit[0] is not graph:
            if len(_BATCHED) >= _CACHE_SIZE:
                _BATCHED.pop(next(iter(_BATCHED)))
            bg = vmap_graph(graph, [0 if v.name == seed_name else None for v in graph.inputs], n)
            _BATCHED[key] = hit = (graph, bg)
        f = dict(feeds)
        f[seed_name] = Tensor(seeds)
        bg = hit[1]
        values = execute(bg, f) if RECORDERS else run_unrecorded(bg, f)
        return {v.name: values[bv.name] for v, bv in zip(graph.outputs, bg.outputs)}  # outputs in order
    rows: dict[str, list] = {v.name: [] for v in graph.outputs}
    for i in range(n):
        f = dict(feeds)
        f[seed_name] = Tensor(seeds[i])
        values = execute(graph, f) if RECORDERS else run_unrecorded(graph, f)
        for k in rows:
            rows[k].append(values[k])
    return {k: bind("stack", *r, axis=0) for k, r in rows.items()}


_SEEDS: dict[tuple, np.ndarray] = {}


def one_hot_seeds(shape: tuple, dtype: Any) -> np.ndarray:
    """``eye(size)`` shaped ``(size, *shape)``: the one-hot cotangents of a jacobian, cached
    read-only (a fresh multi-megabyte eye costs more than the batched gradient at n = 32)."""
    key = (tuple(shape), np.dtype(dtype).str)
    hit = _SEEDS.get(key)
    if hit is None:
        n = int(np.prod(shape, dtype=np.int64))
        hit = np.eye(n, dtype=dtype).reshape((n,) + tuple(shape))
        hit.flags.writeable = False
        if len(_SEEDS) > 8:
            _SEEDS.pop(next(iter(_SEEDS)))
        _SEEDS[key] = hit
    return hit


def jacobian_from_gradient_graph(graph: Any, feeds: dict, outs: list, seed_name: str | None, tshape: tuple,
                                 dtype: Any, pfor: bool = True) -> list:
    """Jacobians (shape ``tshape + source shape``) from a gradient graph whose target cotangent
    is the input ``seed_name``: the graph run on all one-hot cotangents (None: unconnected)."""
    if seed_name is None or all(o is None for o in outs):
        return [None] * len(outs)
    n = int(np.prod(tshape, dtype=np.int64))
    if n == 0:
        raise IrflowError("jacobian of an empty target")
    values = run_over_seeds(graph, feeds, seed_name, one_hot_seeds(tshape, dtype), pfor)
    out = []
    for o in outs:
        if o is None:
            out.append(None)
            continue
        v = values[o]
        out.append(bind("reshape", v, shape=tshape + tuple(_shape(v))[1:]))
    return out


def graph_seed_name(feeds: dict, seed: Any) -> str | None:
    for k, v in feeds.items():
        if v is seed:
            return k
    return None


def _array(x: Any) -> Any:
    if type(x) is Tensor:
        return x._value
    if _is_variable(x):
        return x._eager_value()
    return x


def _shape(x: Any) -> tuple:
    return tuple(x.shape) if is_symbolic(x) else tuple(np.shape(_array(x)))


def _feed_array(v: Any) -> np.ndarray:
    if type(v) is Tensor:
        return v._value
    if type(v) is _VarRead:
        return v.value
    if _is_variable(v):
        return v._eager_value()
    return np.asarray(v)


def run_unrecorded(graph, feeds: dict[str, Any]) -> dict[str, Any]:
    """Run ``graph`` as ONE eager ``call`` op (the NumPy interpreter behind the eager handler;
    autodiff imports no executor) while no tape records; outputs as Tensors by name."""
    out = bind("call", *[_feed_array(feeds[n]) for n in graph.input_names], graph=graph)
    out = out if isinstance(out, tuple) else (out,)
    return dict(zip(graph.output_names, out))


def execute(graph, feeds: dict[str, Any]) -> dict[str, Any]:
    """Run ``graph`` node by node through ``bind`` (so active tapes record every op).

    ``feeds`` hold the original objects (Tensors, Variables, _VarReads, arrays); a Variable
    whose value changed since it was read is fed the value read, so the gradient is right.
    """
    env: dict[str, Any] = {}
    for k, v in feeds.items():
        if type(v) is _VarRead:
            v = v.var if v.var._eager_value() is v.value else Tensor(v.value)
        env[k] = v
    out = run_through_bind(graph, env)
    return {k: Tensor(r) if type(r) is np.ndarray else r for k, r in out.items()}
