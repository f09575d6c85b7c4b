"""``irf.vmap`` and ``irf.vectorized_map``: vectorizing Python functions through the IR.

``vmap(fn)(*args)`` traces ``fn`` once on ONE example (symbolic inputs without the batch
axis) into a graph, then emits the batched graph (``autodiff.vmap_transform.batch_nodes``: each op's
batching rule, or a scan for ops without one):

- inside a trace or a Program (a builder is active) into that builder, so the vmapped
  function is part of the one traced graph (it exports to ONNX like any other);
- eagerly, it builds the batched graph and runs it node by node through ``bind``, so an
  active GradientTape records every op and ``grad(vmap(f))`` works like any eager code.

Values ``fn`` uses without receiving them as arguments (eager tensors, Variables, symbolic
tensors of an enclosing trace) are captured as unbatched inputs of the traced graph, standing
for the original objects: a tape watching them sees the batched ops that use them.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from irflow.autodiff.structure import flatten, unflatten
from irflow.autodiff.vjp import run_through_bind
from irflow.autodiff.vmap_transform import batch_nodes, move_out, vmap_graph
from irflow.errors import IrflowError
from irflow.ir.dtypes import dtype_of_array
from irflow.ir.types import TensorType
from irflow.ops.batching import first_batched
from irflow.passes.prune import prune
from irflow.ops.builder import AssignmentLog, GraphBuilder, SymbolicTensor
from irflow.ops.dispatch import BUILDER_STACK, bind


class VmapBuilder(AssignmentLog, GraphBuilder):
    """The builder ``fn`` is traced into: one input per batched argument leaf, and captured
    inputs for outer values (``origins[i]`` is what input i stands for, ``in_dims[i]`` its batch
    axis in that outer value, None for captures)."""

    def __init__(self, name: str, size: Any):
        GraphBuilder.__init__(self, name)
        # Variable assignments made by fn (AssignmentLog) are hoisted out of the vmapped call
        # (applied once), which needs an unbatched value.
        AssignmentLog.__init__(self)
        self.size = size
        self.origins: list = []
        self.in_dims: list = []
        self._captured: dict[tuple, SymbolicTensor] = {}
        self._index: SymbolicTensor | None = None

    def batch_index(self) -> SymbolicTensor:
        """This example's index in the batch (int64 scalar; ``arange(size)`` once batched)."""
        if self._index is None:
            self._index = self.add_arg(np.arange(self.size, dtype=np.int64), TensorType(dtype="int64", shape=()), 0,
                                       "batch_index")
        return self._index

    def add_arg(self, origin: Any, example_type: TensorType, dim: int | None, name: str) -> SymbolicTensor:
        sym = self.input(self.free_name(name), example_type.dtype, example_type.shape)
        self.origins.append(origin)
        self.in_dims.append(dim)
        return sym

    def _capture_key(self, key: tuple, origin: Any, t: TensorType, name: str) -> SymbolicTensor:
        hit = self._captured.get(key)
        if hit is None:
            hit = self._captured[key] = self.add_arg(origin, t, None, f"captured_{name}")
        return hit

    def capture(self, x: SymbolicTensor) -> SymbolicTensor:
        if x.builder not in BUILDER_STACK:
            return super().capture(x)  # a value of a finished trace: the base class's error
        return self._capture_key(("sym", id(x.builder), x.name), x, x.type, x.name)

    def captured_input(self, x: Any) -> SymbolicTensor | None:
        """The input standing for outer value ``x`` (a tensor of an enclosing builder, an eager
        Tensor or a Variable), or None when the traced function did not use it."""
        if isinstance(x, SymbolicTensor):
            return self._captured.get(("sym", id(x.builder), x.name))
        return self._captured.get(("obj", id(x)))

    def to_symbolic(self, x: Any, weak_dtype: Any) -> SymbolicTensor | None:
        if _is_eager_tensor(x):
            t = TensorType(dtype=dtype_of_array(x._value), shape=x._value.shape)
            return self._capture_key(("obj", id(x)), x, t, "tensor")
        return super().to_symbolic(x, weak_dtype)

    def read_variable(self, var: Any) -> SymbolicTensor:
        """A Variable read inside ``fn``: its value assigned earlier in ``fn``, else the enclosing
        trace's read, or the Variable itself eagerly."""
        if id(var) in self._current:
            return self._current[id(var)]
        # only builders ENCLOSING this one: with two vmap levels the inner one is above the outer
        # on the stack, and asking it back would recurse forever
        enclosing = BUILDER_STACK[:BUILDER_STACK.index(self)] if self in BUILDER_STACK else BUILDER_STACK
        for outer in reversed(enclosing):
            if outer is not self and getattr(outer, "read_variable", None) is not None:
                return self.to_symbolic(outer.read_variable(var), None)
        t = TensorType(dtype=var.dtype, shape=var.shape)
        return self._capture_key(("obj", id(var)), var, t, getattr(var, "name", "variable"))


def _is_eager_tensor(x: Any) -> bool:
    """An eager Tensor (an array in ``_value``; a Variable also has ``_eager_value``), told by
    its fields so that autodiff does not import the eager frontend."""
    return hasattr(x, "_value") and not hasattr(x, "_eager_value") and not isinstance(x, SymbolicTensor)


def _is_tensor_leaf(x: Any) -> bool:
    return isinstance(x, (SymbolicTensor, np.ndarray, np.generic)) or hasattr(x, "_value") or hasattr(x, "_eager_value")


def _type_of(x: Any) -> TensorType:
    if isinstance(x, SymbolicTensor):
        return x.type
    arr = x._eager_value() if hasattr(x, "_eager_value") else (x._value if hasattr(x, "_value") else np.asarray(x))
    return TensorType(dtype=dtype_of_array(arr), shape=arr.shape)


def _prefix_axes(axes: Any, tree_value: Any, path: str, out: list) -> None:
    """Broadcast an axes spec (a pytree prefix of ``tree_value``) to one entry per leaf."""
    if axes is None or isinstance(axes, int):
        leaves, _ = flatten(tree_value)
        out.extend((axes, path) for _ in leaves)
        return
    if isinstance(axes, dict):
        if not isinstance(tree_value, dict) or set(axes) != set(tree_value):
            raise IrflowError(f"vmap: the axes {axes!r} given for {path} do not fit its structure "
                              f"({type(tree_value).__name__} with keys {sorted(tree_value) if isinstance(tree_value, dict) else '-'})")
        for k in tree_value:
            _prefix_axes(axes[k], tree_value[k], f"{path}[{k!r}]", out)
        return
    if isinstance(axes, (list, tuple)):
        if not isinstance(tree_value, (list, tuple)) or len(axes) != len(tree_value):
            n = len(tree_value) if isinstance(tree_value, (list, tuple)) else "not a sequence"
            raise IrflowError(f"vmap: the axes {axes!r} given for {path} have {len(axes)} entries, but it has {n}")
        for i, (a, v) in enumerate(zip(axes, tree_value)):
            _prefix_axes(a, v, f"{path}[{i}]", out)
        return
    raise IrflowError(f"vmap: an axis spec must be an int, None, or a tuple/list/dict of them; got {axes!r} for {path}")


def _args_axes(in_axes: Any, args: tuple) -> list:
    """(axis, path) per argument leaf; ``in_axes`` an int/None or one entry per argument."""
    out: list = []
    if isinstance(in_axes, (list, tuple)):
        if len(in_axes) != len(args):
            raise IrflowError(f"vmap: in_axes has {len(in_axes)} entries but the function was called with "
                              f"{len(args)} positional argument(s)")
        for i, (a, v) in enumerate(zip(in_axes, args)):
            _prefix_axes(a, v, f"argument {i}", out)
    else:
        for i, v in enumerate(args):
            _prefix_axes(in_axes, v, f"argument {i}", out)
    return out


def _batch_size(leaves: list, axes: list, axis_size: Any) -> tuple[Any, list]:
    """The batch size and each leaf's normalized batch axis; IrflowError naming the argument."""
    sizes: list = []
    norm: list = []
    for x, (a, path) in zip(leaves, axes):
        if a is None:
            norm.append(None)
            continue
        if not _is_tensor_leaf(x):
            raise IrflowError(f"vmap: {path} is a {type(x).__name__}, which has no axis {a} to map over "
                              "(give it in_axes None)")
        t = _type_of(x)
        if not -t.rank <= a < t.rank:
            raise IrflowError(f"vmap: in_axes {a} is out of range for {path} of rank {t.rank} (shape {t.shape})")
        a = a % t.rank
        norm.append(a)
        sizes.append((path, t.shape[a]))
    known = [(p, s) for p, s in sizes if isinstance(s, int)]
    if axis_size is not None:
        known = [("axis_size", axis_size)] + known
    if len({s for _, s in known}) > 1:
        shown = ", ".join(f"{p} has size {s}" for p, s in known)
        raise IrflowError(f"vmap: the mapped axes have different sizes: {shown}")
    if known:
        return known[0][1], norm
    if sizes:
        return sizes[0][1], norm
    raise IrflowError("vmap: no argument is mapped (all in_axes are None); give axis_size to set the batch size")


def vmap(fn: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_size: int | None = None) -> Callable:
    """Vectorize ``fn`` over a batch axis of its arguments, as ``jax.vmap``.

    ``in_axes``: an int or None (every argument), or one entry per positional argument, each
    an int, None (not mapped: the same value for every example) or a tuple/list/dict matching
    that argument's structure. ``out_axes`` likewise for the outputs. ``axis_size`` sets the
    batch size when no argument is mapped. Keyword arguments are mapped over axis 0.
    The result is one batched computation in the IR (see docs/vectorization.md).

    >>> import irflow as irf, numpy as np
    >>> xs = np.arange(6.0).reshape(3, 2)
    >>> irf.vmap(lambda x, w: irf.reduce_sum(x * w), in_axes=(0, None))(xs, np.ones(2)).numpy()
    array([1., 5., 9.])
    """

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        all_args = tuple(args) + (tuple(kwargs.values()) if kwargs else ())
        axes = _args_axes(in_axes, tuple(args))
        for k, v in kwargs.items():
            _prefix_axes(0, v, f"keyword argument {k!r}", axes)
        leaves, tree = flatten(list(all_args))
        size, dims = _batch_size(leaves, axes, axis_size)
        b = VmapBuilder(f"vmap_{getattr(fn, '__name__', 'fn')}", size)
        example = []
        for x, d, (_, path) in zip(leaves, dims, axes):
            if d is None:
                # unmapped: a tensor becomes an input standing for itself (as a capture would);
                # anything else (a Python scalar, a string, None) is passed as it is
                example.append(b.to_symbolic(x, None) if _is_tensor_leaf(x) and not isinstance(x, (np.ndarray, np.generic))
                               else x)
                continue
            t = _type_of(x)
            et = TensorType(dtype=t.dtype, shape=t.shape[:d] + t.shape[d + 1:])
            example.append(b.add_arg(x, et, d, "x"))
        rebuilt = unflatten(tree, example)
        with b:
            result = fn(*rebuilt[:len(args)], **dict(zip(kwargs, rebuilt[len(args):])))
            out_leaves, out_tree = flatten(result)
            out_syms = [b.to_symbolic(o, None) for o in out_leaves]
            finals = b.final_assignments()
            b.output(*out_syms, *[sym for _, sym in finals])
        # Dead code out before batching: a grad traced inside fn also emits gradients nobody
        # asked for (pow's exponent gradient takes log(x): NaN warnings and wasted work).
        graph = prune(b.build())
        _check_unbatched_assignments(graph, b, finals, len(out_syms))
        oaxes: list = []
        _prefix_axes(out_axes, result, "the output", oaxes)
        outs = apply_batched(graph, b.origins, b.in_dims, size, [a for a, _ in oaxes] + [None] * len(finals))
        # The assignments happen once, as if hoisted out of the vmapped call: eagerly now (after
        # the batched graph ran), in a trace into the enclosing builder (a state output there).
        for (var, _), value in zip(finals, outs[len(out_syms):]):
            var.assign(value)
        return unflatten(out_tree, outs[:len(out_syms)])

    wrapped.__name__ = f"vmap_{getattr(fn, '__name__', 'fn')}"
    wrapped.__doc__ = fn.__doc__
    return wrapped


def _check_unbatched_assignments(graph: Any, b: VmapBuilder, finals: list, n_results: int) -> None:
    """An assignment inside vmap is applied once for the whole batch, so its new value must not
    depend on a mapped argument (or the example index): else there is one value per example and
    a Variable holds one. IrflowError naming the Variable otherwise."""
    batched = {v.name for v, d in zip(graph.inputs, b.in_dims) if d is not None}
    for node in graph.nodes:
        if any(n in batched for n in node.inputs if n):
            batched.update(o.name for o in node.outputs)
    for (var, _), out in zip(finals, graph.outputs[n_results:]):
        if out.name in batched:
            raise IrflowError(
                f"Variable {getattr(var, 'name', '?')!r}: assigned inside {b.name!r} (irf.vmap / vectorized_map) "
                "a value that depends on the mapped examples; vmap applies an assignment once for the whole "
                "batch, so its value must be the same for every example. A layer that updates statistics "
                "from its input (BatchNorm in training mode) cannot do that per example: call it in eval mode "
                "(training=False) inside vmap, or run it (and its update) on the whole batch outside vmap")


def vectorized_map(fn: Callable, elems: Any, fallback_to_while_loop: bool = True, warn: bool = True) -> Any:
    """``fn`` applied to every slice of ``elems`` along axis 0, as ``tf.vectorized_map``.

    ``elems`` is a tensor or a (nested) list/tuple/dict of tensors with equal first dims; ``fn``
    gets one slice of the same structure. The computation is vectorized (``irf.vmap``); ops
    with no batching rule run in a scan inside the graph, so ``fallback_to_while_loop`` and
    ``warn`` are accepted for TF compatibility and change nothing. ``tape.gradient`` inside
    ``fn`` differentiates through the slicing (the seed's nested jacobian works).

    >>> import irflow as irf, numpy as np
    >>> irf.vectorized_map(lambda r: irf.reduce_sum(r * r), np.arange(6.0).reshape(3, 2)).numpy()
    array([ 1., 13., 41.])
    """
    return vmap(fn, in_axes=0, out_axes=0)(elems)


def apply_batched(graph: Any, origins: list, in_dims: list, size: Any, out_axes: list) -> list:
    """Run ``graph`` batched: input i is ``origins[i]`` with batch axis ``in_dims[i]``.

    Inside a builder the batched nodes are emitted into it; eagerly the batched graph is built
    and executed through ``bind`` (so tapes record it). Returns one value per output.
    """
    if BUILDER_STACK:
        outer = BUILDER_STACK[-1]
        env = {v.name: (outer.to_symbolic(o, None), d) for v, o, d in zip(graph.inputs, origins, in_dims)}
        for nm, arr in graph.initializers.items():
            env[nm] = (outer.constant(arr, name=nm), None)
        batch_nodes(graph, env, size)
        like = _first(env)
        return [move_out(*env[v.name], oa, size, like, f"output {i}")
                for i, (v, oa) in enumerate(zip(graph.outputs, out_axes))]
    bg = vmap_graph(graph, in_dims, size, out_axes)
    values = run_through_bind(bg, {v.name: o for v, o in zip(bg.inputs, origins)})
    # an output that is a NumPy input passed through still comes back as a tensor
    return [bind("identity", r) if isinstance(r, (np.ndarray, np.generic)) else r
            for r in (values[v.name] for v in bg.outputs)]


def _first(env: dict) -> Any:
    try:
        return first_batched([p[0] for p in env.values()], [p[1] for p in env.values()])
    except Exception:
        return None


__all__ = ["vmap", "vectorized_map", "VmapBuilder", "apply_batched"]
