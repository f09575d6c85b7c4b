"""Reverse mode on the IR: ``vjp(graph, wrt)`` returns a new graph computing gradients too.

The walk is micrograd's ``backward()`` in IR form: replay the forward nodes once into a new
builder (forward values are shared by the backward pass, not recomputed), then visit the
nodes in reverse, call each op's VJP rule (which emits IR ops), and add up contributions to
values used more than once.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from irflow.errors import IrflowError
from irflow.ir.graph import Graph
from irflow.ops.builder import GraphBuilder, SymbolicTensor
from irflow.ops.dispatch import bind
from irflow.ops.registry import get_op
from irflow.ops.transforms import register_graph_transform
import irflow.passes.prune  # noqa: F401,E402  (registers prune, which the nested-graph VJP rules call)


def replay(graph: Graph, b: GraphBuilder, env: dict[str, SymbolicTensor]) -> None:
    """Add ``graph``'s nodes to builder ``b``; ``env`` maps graph value names to tensors of ``b``."""
    for node in graph.nodes:
        ins = [env[n] if n else None for n in node.inputs]
        outs = b.add_node(node.op, ins, dict(node.attrs), name=b.fresh_name(node.name) if node.name else None)
        outs = outs if isinstance(outs, tuple) else (outs,)
        for v, s in zip(node.outputs, outs):
            env[v.name] = s


def run_through_bind(graph: Graph, env: dict[str, Any]) -> dict[str, Any]:
    """Apply ``graph``'s nodes to the values in ``env`` (its inputs) through ``bind``, node by
    node: eagerly each op runs now and active tapes record it. Returns every output by name (an
    output that is an input or an initializer is returned as it was given).
    """
    env = dict(env)
    env[""] = None
    for k, arr in graph.initializers.items():
        env[k] = arr
    for node in graph.nodes:
        res = bind(node.op, *[env[i] for i in node.inputs], **node.attrs)
        env.update(zip([v.name for v in node.outputs], res if len(node.outputs) > 1 else (res,)))
    return {v.name: env[v.name] for v in graph.outputs}


def backward(
    graph: Any,
    env: Mapping[str, Any],
    seeds: dict[str, Any],
    wrt: Sequence[str],
) -> dict[str, Any]:
    """Emit the backward pass of ``graph`` into the active builder.

    ``graph`` is anything with ``.nodes`` (Nodes, or objects with the same fields: a tape's
    records and a builder's snapshot use this); ``env`` maps graph values to their (already
    built) forward tensors and may create them lazily (a dict with ``__missing__``); ``seeds``
    maps output names to cotangents. Returns the gradient of each ``wrt`` name, None where
    unconnected. An op marked ``differentiable=False`` passes no gradient; an op with an active
    float input and no VJP rule raises "differentiation rule for 'op' not implemented".
    """
    # Values that depend on a wrt value (forward reachability) can carry a gradient.
    active = set(wrt)
    nodes = graph.nodes
    for node in nodes:
        if any(i in active for i in node.inputs) and get_op(node.op).differentiable:
            active.update(v.name for v in node.outputs if v.type.dtype.is_float)
    ct: dict[str, Any] = dict(seeds)
    for node in reversed(nodes):
        gs = [ct.get(v.name) for v in node.outputs]
        if all(g is None for g in gs) or not any(i in active for i in node.inputs):
            continue
        opdef = get_op(node.op)
        if opdef.vjp is None:
            if not opdef.differentiable:
                continue  # argmax, comparisons, stop_gradient: no gradient flows through
            raise IrflowError(f"differentiation rule for '{node.op}' not implemented (node {node.name})")
        ins = [env[n] if n else None for n in node.inputs]
        outs = [env[v.name] for v in node.outputs]
        if len(outs) == 1:
            g, out = gs[0], outs[0]
        else:
            g = tuple(gi if gi is not None else bind("zeros_like", o) for gi, o in zip(gs, outs))
            out = tuple(outs)
        grads = opdef.vjp(g, *ins, out=out, **node.attrs)
        if isinstance(grads, list):
            grads = tuple(grads)
        elif not isinstance(grads, tuple):
            grads = (grads,)
        if len(grads) != len(ins):
            raise IrflowError(f"VJP rule of '{node.op}' returned {len(grads)} gradients for {len(ins)} inputs (node {node.name})")
        for name, gi in zip(node.inputs, grads):
            if gi is None or name not in active:
                continue
            ct[name] = ct[name] + gi if name in ct else gi
    return {n: ct.get(n) for n in wrt}


def vjp(
    graph: Graph,
    wrt: Sequence[str],
    outputs: Sequence[str] | None = None,
    *,
    seed: str = "input",
    unconnected_gradients: str = "zero",
) -> Graph:
    """The gradient graph of ``graph`` with respect to the values named in ``wrt``.

    The new graph's inputs are the primal inputs plus, when ``seed="input"``, one cotangent
    ``ct_<output>`` per differentiated output; with ``seed="ones"`` the outputs are seeded with
    ones (the gradient of their sum). Its outputs are the primal outputs followed by one
    gradient ``grad_<name>`` per ``wrt`` entry (zeros where unconnected, or an error with
    ``unconnected_gradients="none"`` since a graph output cannot be None). Small values known
    without feeds (the seed scaled and broadcast) are folded into initializers, then the graph
    is pruned.

    >>> gg = vjp(g, wrt=["w"], seed="ones")   # doctest: +SKIP
    """
    types = graph.value_types()
    for name in wrt:
        if name not in types:
            raise IrflowError(f"vjp: {name!r} is not a value of graph {graph.name!r}")
        if not types[name].dtype.is_float:
            raise IrflowError(f"vjp: cannot differentiate with respect to {name!r} of dtype {types[name].dtype.value}")
    outputs = list(outputs) if outputs is not None else [v.name for v in graph.outputs if v.type.dtype.is_float]
    b = GraphBuilder(graph.name + "_grad")
    env: dict[str, SymbolicTensor] = {}
    for v in graph.inputs:
        env[v.name] = b.input(v.name, v.type.dtype, v.type.shape)
    for name, arr in graph.initializers.items():
        env[name] = b.constant(arr, name=name)
    with b:
        replay(graph, b, env)
        if seed == "input":
            seeds = {o: b.input(b.free_name(f"ct_{o}"), types[o].dtype, types[o].shape) for o in outputs}
        elif seed == "ones":
            seeds = {o: bind("ones_like", env[o]) for o in outputs}
        else:
            raise IrflowError(f"vjp: seed must be 'input' or 'ones', got {seed!r}")
        grads = backward(graph, env, seeds, wrt)
        for v in graph.outputs:
            b.output(env[v.name])
        for name in wrt:
            g = grads[name]
            if g is None:
                if unconnected_gradients == "none":
                    raise IrflowError(f"vjp: {name!r} is not connected to the differentiated outputs")
                g = bind("zeros_like", env[name])
            b.output(g, names=[f"grad_{name}"])
    from irflow.passes.fold_constants import fold_constants
    from irflow.passes.prune import prune

    return prune(fold_constants(b.build()))


# The nested-graph ops' VJP rules (ops/control.py, ops/special.py) call these through the table.
register_graph_transform("replay", replay)
register_graph_transform("backward", backward)
register_graph_transform("vjp", vjp)
