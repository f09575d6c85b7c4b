"""Gradients across vmap levels: ``tape.gradient`` and ``symbolic_gradients`` inside ``vmap``.

Inside a vmapped function the values are symbolic tensors of a ``VmapBuilder`` that stand for
ONE example; the tensors they come from live outside: in an enclosing trace, an enclosing
vmap, or eagerly on a GradientTape. TF's nested form of a jacobian needs the gradient to flow
through all of them::

    tf.vectorized_map(lambda yi: tf.vectorized_map(lambda yij: t.gradient(yij, x), yi), y)

``nested_gradients`` does it level by level, innermost first, emitting every backward op into
the innermost builder (outer forward values are captured, i.e. read, never recomputed):

1. at a level (a builder on the stack), ``backward`` over its nodes from the cotangents that
   reached it, with respect to its inputs and to the sources that live there;
2. a VmapBuilder input stands for an outer value: an unmapped input passes its cotangent on
   unchanged; a mapped one is one slice of the outer value, so its cotangent is placed at
   this example's index along the batch axis (``expand_dims(ct) * one_hot(batch_index)``);
3. cotangents that reach eager tensors are handed to the tape, whose gradient graph (with the
   cotangents as its output gradients) is inlined into the innermost builder.

Then ``vmap`` batches the whole thing like any other graph: the one-hot placements become
identity-like seeds and the result is the batched (jacobian) computation in one graph.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from irflow.autodiff.vjp import backward
from irflow.errors import IrflowError
from irflow.ops.builder import SymbolicTensor
from irflow.ops.dispatch import BUILDER_STACK, bind


def in_vmap() -> bool:
    """True while a vmapped function is being traced."""
    return any(hasattr(b, "captured_input") for b in BUILDER_STACK)


class _View:
    __slots__ = ("nodes",)

    def __init__(self, builder: Any):
        self.nodes = list(builder.nodes)


class _LevelEnv(dict):
    """name of a value of ``level`` -> that value in ``emit`` (itself, or a capture of it)."""

    def __init__(self, level: Any, emit: Any):
        super().__init__()
        self.level, self.emit = level, emit

    def __missing__(self, name: str) -> SymbolicTensor:
        s = SymbolicTensor(self.level, name, self.level.types[name])
        if self.level is not self.emit:
            s = self.emit.to_symbolic(s, None)
        self[name] = s
        return s


def _add(d: dict, key: Any, ct: Any) -> None:
    d[key] = d[key] + ct if key in d else ct


def _place(ct: Any, level: Any, d: int, emit: Any) -> Any:
    """The cotangent of a whole batched value from the cotangent of this example's slice."""
    size = level.size
    if not isinstance(size, int):
        raise IrflowError(f"a gradient with respect to a value mapped by vmap needs a static batch size, got {size!r}")
    idx = emit.to_symbolic(level.batch_index(), None)
    shape = [1] * (ct.type.rank + 1)
    shape[d] = size
    # one_hot(idx) already shaped to broadcast along axis d: elementwise ops only
    onehot = bind("cast", bind("equal", np.arange(size, dtype=np.int64).reshape(shape), idx), dtype=ct.type.dtype)
    return bind("mul", ct if d == 0 else bind("expand_dims", ct, axes=(d,)), onehot)


def _source_key(x: Any) -> tuple:
    """Where a source lives: ("sym", builder, name) or ("obj", id) for an eager object."""
    if isinstance(x, SymbolicTensor):
        return ("sym", x.builder, x.name)
    if hasattr(x, "_eager_value"):  # a Variable: its read in the innermost trace that reads state
        for b in reversed(BUILDER_STACK):
            if not hasattr(b, "captured_input") and getattr(b, "read_variable", None) is not None:
                s = b.read_variable(x)
                return ("sym", b, s.name)
    return ("obj", id(x))


def nested_gradients(ys: Sequence[Any], xs: Sequence[Any], grad_ys: Sequence[Any] | None = None,
                     tape: Any = None, unconnected_gradients: str = "zero") -> list:
    """d(sum of grad_ys * ys)/d xs with ys, xs and the seeds at any vmap level (see module doc)."""
    emit = BUILDER_STACK[-1]
    levels = list(BUILDER_STACK)
    pending: dict[int, dict[str, Any]] = {}  # id(level) -> value name -> cotangent (in emit)
    eager: dict[int, tuple[Any, Any]] = {}  # id(obj) -> (obj, cotangent)
    for k, y in enumerate(ys):
        seed = None if grad_ys is None else grad_ys[k]
        if isinstance(y, SymbolicTensor):
            if not y.type.dtype.is_float:
                continue
            ys_in_emit = y if y.builder is emit else emit.to_symbolic(y, None)
            seed = bind("ones_like", ys_in_emit) if seed is None else emit.to_symbolic(seed, y.type.dtype)
            _add(pending.setdefault(id(y.builder), {}), y.name, seed)
        else:
            arr = y._value if hasattr(y, "_value") else np.asarray(y)
            if arr.dtype.kind != "f":
                continue
            seed = bind("ones_like", emit.to_symbolic(y, None)) if seed is None else emit.to_symbolic(seed, None)
            hit = eager.get(id(y))
            eager[id(y)] = (y, seed if hit is None else hit[1] + seed)
    keys = [_source_key(x) for x in xs]
    grads: dict[int, Any] = {}
    for level in reversed(levels):
        seeds = pending.pop(id(level), None)
        if not seeds:
            continue
        is_vmap = hasattr(level, "origins")
        wrt = [nm for kind, b, nm in (k for k in keys if k[0] == "sym") if b is level]
        if is_vmap:
            wrt += [v.name for v in level.inputs if v.type.dtype.is_float]
        wrt = list(dict.fromkeys(wrt))
        got = backward(_View(level), _LevelEnv(level, emit), seeds, wrt)
        for i, key in enumerate(keys):
            if key[0] == "sym" and key[1] is level and got.get(key[2]) is not None:
                _add(grads, i, got[key[2]])
        if not is_vmap:
            continue
        for v, origin, d in zip(level.inputs, level.origins, level.in_dims):
            ct = got.get(v.name)
            if ct is None:
                continue
            if d is not None:
                ct = _place(ct, level, d, emit)
            if isinstance(origin, SymbolicTensor):
                _add(pending.setdefault(id(origin.builder), {}), origin.name, ct)
            elif hasattr(origin, "_value") or hasattr(origin, "_eager_value"):
                hit = eager.get(id(origin))
                eager[id(origin)] = (origin, ct if hit is None else hit[1] + ct)
    if eager:
        rest = []
        for obj, ct in eager.values():
            direct = [i for i, key in enumerate(keys) if key == ("obj", id(obj))]
            for i in direct:
                _add(grads, i, ct)
            if not direct:
                rest.append((obj, ct))
        if rest and tape is not None:
            eager_xs = [i for i, key in enumerate(keys) if key[0] == "obj"]
            tg = tape.inline_gradient([o for o, _ in rest], [xs[i] for i in eager_xs], [c for _, c in rest])
            for i, g in zip(eager_xs, tg):
                if g is not None:
                    _add(grads, i, g)
    out = []
    for i, x in enumerate(xs):
        g = grads.get(i)
        if g is None and unconnected_gradients == "zero":
            g = bind("zeros_like", emit.to_symbolic(x, None))
        out.append(g)
    return out


__all__ = ["nested_gradients", "in_vmap"]
