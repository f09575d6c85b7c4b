"""Gradients inside a graph being built (a trace or a static Program).

``symbolic_gradients(ys, xs)`` views the active builder's nodes so far as a graph, runs
``backward`` on it and emits the gradient nodes into the same builder, so forward, backward
and whatever uses the gradients (an optimizer update) end up in ONE graph. It is what
``GradientTape.gradient`` does on symbolic tensors and what ``irf.static.gradients`` exposes.
"""
from __future__ import annotations

from typing import Any, Sequence

from irflow.autodiff.vjp import backward
from irflow.errors import IrflowError
from irflow.ops.builder import GraphBuilder, SymbolicTensor
from irflow.ops.dispatch import BUILDER_STACK, bind


class _BuilderView:
    """The nodes a builder holds now, seen as a graph (no copy of the IR objects)."""

    __slots__ = ("nodes",)

    def __init__(self, builder: GraphBuilder):
        self.nodes = list(builder.nodes)


class _BuilderEnv(dict):
    """name -> the builder's existing SymbolicTensor of that value."""

    def __init__(self, builder: GraphBuilder):
        super().__init__()
        self.builder = builder

    def __missing__(self, name: str) -> SymbolicTensor:
        s = SymbolicTensor(self.builder, name, self.builder.types[name])
        self[name] = s
        return s


def _as_symbolic(x: Any, builder: GraphBuilder, what: str) -> SymbolicTensor | None:
    captured_input = getattr(builder, "captured_input", None)
    if captured_input is not None:  # a vmap trace: outer values it uses are its inputs
        hit = captured_input(x)
        if hit is not None:
            return hit
        if isinstance(x, SymbolicTensor) and x.builder is not builder and x.builder in BUILDER_STACK:
            return None  # an outer value the traced function does not use: not connected
    if isinstance(x, SymbolicTensor):
        if x.builder is not builder:
            raise IrflowError(f"{what} %{x.name} belongs to graph {x.builder.name!r}, not to {builder.name!r}")
        return x
    hook = getattr(x, "__irflow_symbolic__", None)
    if hook is not None and hasattr(x, "_eager_value"):  # a Variable: its read in this graph
        return hook(builder)
    return None  # constants (eager tensors, arrays): not connected


def symbolic_gradients(
    ys: Any,
    xs: Sequence[Any],
    grad_ys: Sequence[Any] | None = None,
    *,
    unconnected_gradients: str = "zero",
) -> list:
    """Gradients of sum(ys) (or of sum(grad_ys * ys)) with respect to ``xs``, as new nodes.

    ``ys``: a symbolic tensor or a list of them; ``xs``: symbolic tensors or Variables (read
    through ``x.__irflow_symbolic__(builder)``). Returns one symbolic tensor per x (zeros, or
    None with ``unconnected_gradients="none"``, where y does not depend on x).

    >>> with prog:                                              # doctest: +SKIP
    ...     (gw,) = symbolic_gradients(loss, [w])
    """
    ys = list(ys) if isinstance(ys, (list, tuple)) else [ys]
    xs = list(xs)
    if grad_ys is not None:
        grad_ys = list(grad_ys) if isinstance(grad_ys, (list, tuple)) else [grad_ys]
        if len(grad_ys) != len(ys):
            raise IrflowError(f"gradients: {len(grad_ys)} grad_ys for {len(ys)} ys")
    from irflow.autodiff.nested import in_vmap, nested_gradients

    if in_vmap():  # the values may belong to enclosing graphs: gradients across vmap levels
        return nested_gradients(ys, xs, grad_ys, unconnected_gradients=unconnected_gradients)
    builder = next((y.builder for y in ys if isinstance(y, SymbolicTensor)), None)
    if builder is None:
        builder = BUILDER_STACK[-1] if BUILDER_STACK else None
    if builder is None:
        raise IrflowError("symbolic_gradients needs symbolic tensors of a graph being built (a trace or a Program)")
    view = _BuilderView(builder)
    env = _BuilderEnv(builder)
    entered = not BUILDER_STACK or BUILDER_STACK[-1] is not builder
    if entered:
        builder.__enter__()
    try:
        sym_xs = [_as_symbolic(x, builder, "source") for x in xs]
        seeds: dict[str, Any] = {}
        for k, y in enumerate(ys):
            y = _as_symbolic(y, builder, "target")
            if y is None or not y.type.dtype.is_float:
                continue
            seed = bind("ones_like", y) if grad_ys is None or grad_ys[k] is None else builder.to_symbolic(grad_ys[k], y.type.dtype)
            seeds[y.name] = seeds[y.name] + seed if y.name in seeds else seed
        wrt = [x.name for x in sym_xs if x is not None]
        grads = backward(view, env, seeds, wrt) if seeds else {}
        out = []
        for x, s in zip(xs, sym_xs):
            g = grads.get(s.name) if s is not None else None
            if g is None and unconnected_gradients == "zero":
                g = bind("zeros_like", s if s is not None else x)
            out.append(g)
        return out
    finally:
        if entered:
            builder.__exit__(None, None, None)


def symbolic_jacobian(y: Any, xs: Sequence[Any], *, unconnected_gradients: str = "zero", tape: Any = None) -> list:
    """Jacobians of symbolic ``y`` with respect to each x: shape ``y.shape + x.shape``.

    ``vmap`` of the gradient over the one-hot cotangents of y: one batched gradient
    computation in the graph (its size does not grow with y.size). Needs a static shape for y.
    ``tape``: the GradientTape asked (when y or the xs are eager values seen from inside vmap).

    >>> with b:                                              # doctest: +SKIP
    ...     (j,) = symbolic_jacobian(irf.exp(x), [x])
    """
    import numpy as np

    from irflow.autodiff.nested import nested_gradients
    from irflow.autodiff.vectorize import vmap

    yshape = tuple(y.shape)
    if not all(isinstance(d, int) for d in yshape):
        raise IrflowError(f"jacobian inside a graph needs a static target shape, got {yshape}")
    n = int(np.prod(yshape, dtype=np.int64))
    if n == 0:
        raise IrflowError("jacobian of an empty target")
    dtype = y.dtype.numpy if isinstance(y, SymbolicTensor) else y.numpy().dtype
    seeds = np.eye(n, dtype=dtype).reshape((n,) + yshape)
    rows = vmap(lambda s: nested_gradients([y], xs, [s], tape=tape, unconnected_gradients="zero"))(seeds)
    out = []
    for x, r in zip(xs, rows):
        xshape = tuple(r.shape)[1:]
        out.append(bind("reshape", r, shape=yshape + xshape))
    return out
