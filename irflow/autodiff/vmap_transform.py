"""Vectorization as an IR -> IR transform: ``batch_nodes``, ``vmap_graph``, the loop fallback.

The transform is an interpreter over a graph's nodes, as JAX's ``BatchTrace``: every value
is a pair (tensor, batch axis or None). A node none of whose inputs is batched is copied as
it is; otherwise its op's batching rule (``defbatch``, declared beside the op's type rule and
VJP) emits the batched computation with ordinary ops. An op with no rule, or one declared
``defbatch(op, LOOP)``, runs in a ``scan`` over the batch: a loop in the IR (it exports to
ONNX as a Scan), not in Python. So every op can be vmapped, and a vmapped graph is still one
graph: it runs on every executor, exports to ONNX and can be differentiated.

>>> bg = vmap_graph(g, in_axes=[0, None], size=8)   # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Sequence

from irflow.errors import IrflowError
from irflow.ir.graph import Graph
from irflow.ir.types import TensorType
from irflow.ops.batching import LOOP_THIS, broadcast_batch, first_batched, move_axis, to_front
from irflow.ops.builder import GraphBuilder
from irflow.ops.dispatch import BUILDER_STACK, bind
from irflow.ops.registry import LOOP, get_op
from irflow.ops.transforms import register_graph_transform

Batched = tuple  # (tensor, batch axis: int | None)


def batched_type(t: TensorType, d: int | None, size: Any) -> TensorType:
    """The type of a batch of values of type ``t`` stacked along axis ``d``."""
    if d is None:
        return t
    shape = list(t.shape)
    shape.insert(d, size)
    return TensorType(dtype=t.dtype, shape=tuple(shape))


def _check_rule_output(node: Any, k: int, got: Any, d: Any, size: Any) -> None:
    """A rule's result must be the op's unbatched output with the batch axis at ``d``."""
    want_t = node.outputs[k].type
    got_t = got.type
    if d is not None and not (isinstance(d, int) and 0 <= d <= want_t.rank):
        raise IrflowError(f"batching rule of '{node.op}' (node {node.name}) returned batch axis {d!r} for output {k} "
                          f"of rank {want_t.rank}")
    want = batched_type(want_t, d, size)
    ok = got_t.dtype == want.dtype and got_t.rank == want.rank and all(
        not (isinstance(a, int) and isinstance(b, int)) or a == b for a, b in zip(got_t.shape, want.shape))
    if not ok:
        raise IrflowError(f"batching rule of '{node.op}' (node {node.name}) returned {got_t} with batch axis {d} "
                          f"for output {k}; expected {want} (the unbatched output {want_t})")


def loop_rule(op: str, inputs: Sequence[Any], dims: Sequence[Any], size: Any, attrs: dict) -> tuple:
    """Batch one op by a ``scan`` over the batch: batched inputs are scanned along their batch
    axis, unbatched ones are scan constants; the outputs are stacked along axis 0."""
    consts = [(i, x) for i, (x, d) in enumerate(zip(inputs, dims)) if d is None and x is not None]
    xs = [(i, to_front(x, d)) for i, (x, d) in enumerate(zip(inputs, dims)) if d is not None and x is not None]
    body = GraphBuilder(f"{op}_loop_body")
    args: list = [None] * len(inputs)
    for i, x in consts:
        args[i] = body.input(f"c{i}", x.type.dtype, x.type.shape)
    for i, x in xs:
        args[i] = body.input(f"x{i}", x.type.dtype, x.type.shape[1:])
    with body:
        outs = body.add_node(op, args, dict(attrs))
        outs = outs if isinstance(outs, tuple) else (outs,)
        body.output(*outs)
    g = body.build()
    res = bind("scan", *[x for _, x in consts], *[x for _, x in xs], body=g, num_consts=len(consts), num_carry=0,
               length=size if isinstance(size, int) else None, reverse=False)
    res = res if isinstance(res, tuple) else (res,)
    return res, (0,) * len(res)


def apply_rule(node: Any, vals: list, dims: list, size: Any) -> tuple[tuple, tuple]:
    """The batched outputs of ``node`` (its rule, or the loop) and their batch axes."""
    opdef = get_op(node.op)
    rule = opdef.batch
    res = LOOP_THIS if rule is None or rule is LOOP else rule(vals, dims, size, **dict(node.attrs))
    if res is LOOP_THIS:
        return loop_rule(node.op, vals, dims, size, node.attrs)
    outs, odims = res
    if not isinstance(outs, tuple):
        outs, odims = (outs,), (odims,)
    elif not isinstance(odims, tuple):
        odims = (odims,) * len(outs)
    if len(outs) != len(node.outputs):
        raise IrflowError(f"batching rule of '{node.op}' (node {node.name}) returned {len(outs)} outputs, the op has {len(node.outputs)}")
    for k, (o, d) in enumerate(zip(outs, odims)):
        _check_rule_output(node, k, o, d, size)
    return outs, odims


def batch_nodes(graph: Any, env: dict[str, Batched], size: Any) -> None:
    """Emit the batched version of ``graph``'s nodes into the active builder.

    ``env`` maps each input and initializer name of ``graph`` to (tensor of the active builder,
    batch axis or None) and receives every node output the same way.
    """
    b = BUILDER_STACK[-1]
    for node in graph.nodes:
        pairs = [env[n] if n else (None, None) for n in node.inputs]
        vals = [p[0] for p in pairs]
        dims = [p[1] for p in pairs]
        if all(d is None for d in dims):
            outs = b.add_node(node.op, vals, dict(node.attrs))
            outs = outs if isinstance(outs, tuple) else (outs,)
            odims: tuple = (None,) * len(outs)
        else:
            outs, odims = apply_rule(node, vals, dims, size)
        for v, o, d in zip(node.outputs, outs, odims):
            env[v.name] = (o, d)


def move_out(x: Any, d: Any, out_axis: Any, size: Any, like: Any, where: str) -> Any:
    """A batched result moved to ``out_axis`` (an unbatched one broadcast); ``out_axis`` None
    requires an unbatched result."""
    if out_axis is None:
        if d is not None:
            raise IrflowError(f"vmap: {where} depends on the batch but its out_axes is None")
        return x
    if d is None:
        x, d = broadcast_batch(x, size, like), 0
    r = x.type.rank
    if not -r <= out_axis < r:
        raise IrflowError(f"vmap: out_axes {out_axis} is out of range for {where} of rank {r - 1} (batched rank {r})")
    return move_axis(x, d, out_axis)


def vmap_graph(graph: Graph, in_axes: Sequence[Any], size: Any, out_axes: Any = 0, name: str | None = None) -> Graph:
    """The graph computing ``graph`` on a batch: input i carries a batch axis at ``in_axes[i]``
    (None: not batched, the same value for every example), each output carries it at
    ``out_axes`` (one int or None, or one per output).

    >>> g2 = vmap_graph(g, in_axes=[0], size=16)     # doctest: +SKIP
    """
    in_axes = list(in_axes)
    if len(in_axes) != len(graph.inputs):
        raise IrflowError(f"vmap_graph: {len(in_axes)} in_axes for the {len(graph.inputs)} inputs of graph {graph.name!r}")
    outs_axes = list(out_axes) if isinstance(out_axes, (list, tuple)) else [out_axes] * len(graph.outputs)
    if len(outs_axes) != len(graph.outputs):
        raise IrflowError(f"vmap_graph: {len(outs_axes)} out_axes for the {len(graph.outputs)} outputs of graph {graph.name!r}")
    b = GraphBuilder(name or f"{graph.name}_vmap")
    env: dict[str, Batched] = {}
    for v, d in zip(graph.inputs, in_axes):
        if d is not None:
            r = v.type.rank
            if not -r - 1 <= d <= r:
                raise IrflowError(f"vmap_graph: in_axes {d} is out of range for input {v.name!r} of rank {r}")
            d = d % (r + 1)
        env[v.name] = (b.input(v.name, v.type.dtype, batched_type(v.type, d, size).shape), d)
    for nm, arr in graph.initializers.items():
        env[nm] = (b.constant(arr, name=nm), None)
    with b:
        batch_nodes(graph, env, size)
        like = _like(env)
        for v, oa in zip(graph.outputs, outs_axes):
            x, d = env[v.name]
            b.output(move_out(x, d, oa, size, like, f"output {v.name!r}"))
    return b.build()


def batch_graph(graph: Graph, in_dims: Sequence[Any], size: Any, front: Sequence[int] | str = (),
                name: str | None = None) -> tuple[Graph, list]:
    """Like ``vmap_graph``, but outputs keep the batch axis their rules gave them (None when an
    output does not depend on the batch), except outputs listed in ``front`` (or every output,
    ``front="all"``), which are moved (or broadcast) to axis 0. Returns the graph and each
    output's batch axis: what control-flow rules need to batch a branch or a loop body."""
    b = GraphBuilder(name or f"{graph.name}_batched")
    env: dict[str, Batched] = {}
    for v, d in zip(graph.inputs, in_dims):
        env[v.name] = (b.input(v.name, v.type.dtype, batched_type(v.type, d, size).shape), d)
    for nm, arr in graph.initializers.items():
        env[nm] = (b.constant(arr, name=nm), None)
    dims = []
    with b:
        batch_nodes(graph, env, size)
        like = _like(env)
        for k, v in enumerate(graph.outputs):
            x, d = env[v.name]
            if front == "all" or k in front:
                x, d = move_out(x, d, 0, size, like, f"output {v.name!r}"), 0
            b.output(x)
            dims.append(d)
    return b.build(), dims


def _like(env: dict[str, Batched]) -> Any:
    """A batched value (a reference for the batch size at run time), or None."""
    try:
        return first_batched([p[0] for p in env.values()], [p[1] for p in env.values()])
    except Exception:
        return None


__all__ = ["batch_nodes", "vmap_graph", "batch_graph", "loop_rule", "batched_type", "move_out"]

# for the nested-graph ops' batching rules in irflow.ops (ops/transforms.py)
register_graph_transform("batch_graph", batch_graph)
register_graph_transform("batch_nodes", batch_nodes)
