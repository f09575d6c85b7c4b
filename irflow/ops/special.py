"""Ops that autodiff and the frontends need: stop_gradient, call, custom_call.

- ``stop_gradient(x)``: the identity, with no gradient (``differentiable=False``).
- ``call(*inputs, graph=g)``: apply a whole Graph as one op. An ``irf.function`` called while an
  eager tape records becomes one ``call`` node; its VJP rule differentiates ``g`` with
  ``autodiff.vjp`` and emits the gradient graph as another ``call`` node, so second order
  keeps working and nothing leaves the IR.
- ``custom_call(*inputs, fwd=f, bwd=b)``: a function with its own gradient
  (``irf.custom_gradient``). ``fwd`` maps the inputs to the outputs; ``bwd`` maps
  (inputs..., one cotangent per float output...) to one gradient per input. Its VJP rule emits
  ``call(*inputs, *cotangents, graph=bwd)``: the custom gradient is IR, so it exports to ONNX
  and can itself be differentiated.
"""
from __future__ import annotations

from typing import Any

from irflow.errors import DTypeError, IRValidationError, ShapeError
from irflow.ir.graph import Graph
from irflow.ir.types import TensorType
from irflow.ops.common import bind
from irflow.ops.batching import elementwise_rule
from irflow.ops.registry import Attr, defbatch, defop, defvjp
from irflow.ops.transforms import graph_transform

# -- stop_gradient ----------------------------------------------------------------------------
defop("stop_gradient", lambda x: x, inputs=1, differentiable=False, family="special",
      doc="The identity whose gradient is zero (no gradient flows through it).")


defbatch("stop_gradient", elementwise_rule("stop_gradient"))


def stop_gradient(x):
    """``x`` unchanged, but no gradient flows through it (as ``jax.lax.stop_gradient``).

    >>> y = irf.stop_gradient(x) * x      # d(sum y)/dx = x, not 2x   # doctest: +SKIP
    """
    return bind("stop_gradient", x)


# -- check_numerics ---------------------------------------------------------------------------
def _check_numerics_type(x: TensorType, *, message: str) -> TensorType:
    if not x.dtype.is_float:
        raise DTypeError(f"check_numerics checks float tensors; got {x.dtype.value}")
    return x


defop("check_numerics", _check_numerics_type, inputs=1, attrs={"message": Attr("str")}, family="special",
      doc="The identity that raises NumericsError (with its message) when the tensor holds NaN or Inf.")
# As TensorFlow's CheckNumerics: the gradient is checked too.
defvjp("check_numerics", lambda g, x, *, out, message: (
    bind("check_numerics", g, message=f"NaN or Inf in the gradient of: {message}"),))


def _declare_check_numerics_batching() -> None:
    from irflow.ops.batching import elementwise_rule  # batching imports ops.common, which must load first
    from irflow.ops.registry import defbatch

    defbatch("check_numerics", elementwise_rule("check_numerics"))


_declare_check_numerics_batching()


# -- call: a Graph applied as one op ------------------------------------------------------------
def graph_call_type(input_types: tuple, graph: Graph, op: str = "call") -> tuple[TensorType, ...]:
    """Check ``input_types`` against ``graph``'s inputs; return its output types.

    Symbols of the inner graph's input dims are bound to the actual dims, so an inner
    ``float32['batch', 4]`` called on ``float32[8, 4]`` gives outputs with 8 for 'batch'.
    """
    if not isinstance(graph, Graph):
        raise IRValidationError(f"{op}: attribute 'graph' must be an irflow Graph, got {type(graph).__name__}")
    if len(input_types) != len(graph.inputs):
        raise ShapeError(
            f"{op} of graph {graph.name!r}: {len(input_types)} inputs given, the graph takes {len(graph.inputs)} "
            f"({', '.join(graph.input_names)})"
        )
    bound: dict[str, Any] = {}
    for v, t in zip(graph.inputs, input_types):
        if t is None:
            raise ShapeError(f"{op} of graph {graph.name!r}: input '{v.name}' is missing")
        if t.dtype != v.type.dtype:
            raise DTypeError(f"{op} of graph {graph.name!r}: input '{v.name}' must be {v.type.dtype.value}, got {t.dtype.value}")
        if t.rank != v.type.rank:
            raise ShapeError(f"{op} of graph {graph.name!r}: input '{v.name}' must have rank {v.type.rank} {v.type.shape}, got {t.shape}")
        for want, got in zip(v.type.shape, t.shape):
            if isinstance(want, int) and isinstance(got, int) and want != got:
                raise ShapeError(f"{op} of graph {graph.name!r}: input '{v.name}' must have shape {v.type.shape}, got {t.shape}")
            if isinstance(want, str):
                if want in bound and isinstance(bound[want], int) and isinstance(got, int) and bound[want] != got:
                    raise ShapeError(f"{op} of graph {graph.name!r}: dim '{want}' is {bound[want]} in one input, {got} in '{v.name}'")
                bound.setdefault(want, got)
    return tuple(
        TensorType(dtype=v.type.dtype, shape=tuple(bound.get(d, d) if isinstance(d, str) else d for d in v.type.shape))
        for v in graph.outputs
    )


def _call_type(*input_types, graph):
    out = graph_call_type(input_types, graph, "call")
    return out if len(out) != 1 else out[0]


defop("call", _call_type, inputs=(0, None), attrs={"graph": Attr("graph")}, family="special", storage=True,
      doc="Apply a Graph as one op: inputs are the graph's inputs in order, outputs its outputs.")

# Gradient graphs of called graphs, cached per (graph object, differentiated inputs, outputs).
_GRAD_GRAPHS: dict[tuple, tuple[Graph, Graph]] = {}


def call_gradient_graph(graph: Graph, wrt: tuple[str, ...], outputs: tuple[str, ...]) -> Graph:
    """The graph (inputs..., ct per output...) -> (grad per ``wrt``...) of ``graph``, cached."""
    key = (id(graph), wrt, outputs)
    hit = _GRAD_GRAPHS.get(key)
    if hit is not None and hit[0] is graph:
        return hit[1]
    vjp, prune = graph_transform("vjp"), graph_transform("prune")
    full = vjp(graph, wrt=list(wrt), outputs=list(outputs), seed="input")
    # The gradients are the last len(wrt) outputs (by position: a graph that is itself a
    # gradient graph already has outputs named grad_*, so the new ones get other names).
    grads = prune(full, outputs=list(full.output_names[len(full.outputs) - len(wrt):]))
    gg = Graph(name=f"{graph.name}_grad", inputs=grads.inputs, outputs=grads.outputs, nodes=grads.nodes,
               initializers=grads.initializers, opset_version=grads.opset_version)
    if len(_GRAD_GRAPHS) > 512:
        _GRAD_GRAPHS.clear()
    _GRAD_GRAPHS[key] = (graph, gg)
    return gg


@defvjp("call")
def _call_vjp(g, *inputs, out, graph):
    gs = g if isinstance(g, tuple) else (g,)
    wrt = tuple(v.name for v, x in zip(graph.inputs, inputs) if v.type.dtype.is_float)
    float_outs = [(v.name, gi) for v, gi in zip(graph.outputs, gs) if v.type.dtype.is_float]
    if not wrt or not float_outs:
        return (None,) * len(inputs)
    # Duplicate output names share one cotangent input in the gradient graph: add theirs up.
    cts: dict[str, Any] = {}
    for name, gi in float_outs:
        cts[name] = cts[name] + gi if name in cts else gi
    gg = call_gradient_graph(graph, wrt, tuple(cts))
    res = bind("call", *inputs, *cts.values(), graph=gg)
    res = res if isinstance(res, tuple) else (res,)
    by_name = dict(zip(wrt, res))
    return tuple(by_name.get(v.name) for v in graph.inputs)


@defbatch("call")
def _call_batch(inputs, dims, size, *, graph):
    # the called graph batched as a graph (outputs keep the axes their rules gave them)
    batch_graph = graph_transform("batch_graph")  # ops sit below autodiff: ops/transforms.py

    bg, odims = batch_graph(graph, dims, size)
    res = bind("call", *inputs, graph=bg)
    res = res if isinstance(res, tuple) else (res,)
    return res, tuple(odims)


def call(*inputs, graph: Graph):
    """Apply ``graph`` to ``inputs`` as one op; one output, or a tuple of them.

    >>> y = irf.call(x, graph=g)     # doctest: +SKIP
    """
    return bind("call", *inputs, graph=graph)


# -- custom_call: a function with its own gradient ----------------------------------------------
def _custom_call_type(*input_types, fwd, bwd):
    out = graph_call_type(input_types, fwd, "custom_call")
    n_float = sum(1 for t in out if t.dtype.is_float)
    if len(bwd.inputs) != len(fwd.inputs) + n_float or len(bwd.outputs) != len(fwd.inputs):
        raise IRValidationError(
            f"custom_call: the backward graph {bwd.name!r} must take the {len(fwd.inputs)} inputs and {n_float} "
            f"cotangent(s) and return {len(fwd.inputs)} gradient(s); it takes {len(bwd.inputs)} and returns {len(bwd.outputs)}"
        )
    return out if len(out) != 1 else out[0]


defop("custom_call", _custom_call_type, inputs=(0, None), attrs={"fwd": Attr("graph"), "bwd": Attr("graph")},
      family="special", doc="A function with a user-given gradient: runs `fwd`; its VJP runs `bwd`.")


@defvjp("custom_call")
def _custom_call_vjp(g, *inputs, out, fwd, bwd):
    gs = g if isinstance(g, tuple) else (g,)
    cts = [gi for v, gi in zip(fwd.outputs, gs) if v.type.dtype.is_float]
    res = bind("call", *inputs, *cts, graph=bwd)
    res = res if isinstance(res, tuple) else (res,)
    return tuple(r if v.type.dtype.is_float else None for r, v in zip(res, fwd.inputs))


@defbatch("custom_call")
def _custom_call_batch(inputs, dims, size, *, fwd, bwd):
    # Every input batched at 0 (unbatched ones broadcast), so the batched backward graph returns
    # each gradient batched at 0 too; the broadcast's own VJP sums it for unbatched inputs.
    batch_graph = graph_transform("batch_graph")
    from irflow.ops.batching import first_batched, materialize

    like = first_batched(inputs, dims)
    full = [materialize(x, d, size, like) for x, d in zip(inputs, dims)]
    fwd_b, _ = batch_graph(fwd, [0] * len(fwd.inputs), size, front="all")
    bwd_b, _ = batch_graph(bwd, [0] * len(bwd.inputs), size, front="all")
    res = bind("custom_call", *full, fwd=fwd_b, bwd=bwd_b)
    res = res if isinstance(res, tuple) else (res,)
    return res, (0,) * len(res)


__all__ = ["stop_gradient"]
