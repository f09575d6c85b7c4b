"""ONNX lowerings of the control-flow ops: ``cond`` -> If, ``scan`` -> Scan (or Loop when it
scans over nothing; or ONNX LSTM/GRU/RNN when it is exactly such a layer, ``lowering/rnn.py``),
``while_loop`` -> Loop.

A nested IR graph becomes an ONNX subgraph by ``lower_subgraph``: every value is renamed
with the node's name as prefix (ONNX requires names to be unique across a model's scopes);
inputs that the ONNX op does not pass as formal subgraph inputs (the operands of If, the
"const" inputs of Scan and Loop) are renamed to the outer value's name, which a subgraph may
read from the enclosing scope. Each subgraph output is an Identity of its own (so an output
that is an input, an outer value or listed twice stays legal).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from onnx import helper, numpy_helper

from irflow.errors import UnsupportedOpError
from irflow.executors.onnx.context import LoweringContext, tensor_type_proto
from irflow.executors.onnx.lowering import LOWERINGS, lowering
from irflow.executors.onnx.lowering.rnn import lower_native_rnn
from irflow.executors.onnx.lowering.rnn_graph import tidy
from irflow.ir.dtypes import DType
from irflow.ir.graph import Graph, Node, Value
from irflow.ir.types import TensorType
from irflow.ops.builder import GraphBuilder
from irflow.ops.dispatch import bind


def lower_subgraph(ctx: LoweringContext, graph: Graph, prefix: str, outer: dict[int, str],
                   lead_inputs: Sequence[tuple[str, TensorType]] = ()):
    """``graph`` as an ONNX GraphProto. Input ``i`` in ``outer`` reads the outer value
    ``outer[i]``; the other inputs (after ``lead_inputs``) are the subgraph's formal inputs."""
    missing = sorted({n.op for n in graph.nodes if n.op not in LOWERINGS})
    if missing:
        raise UnsupportedOpError(f"graph {graph.name!r} (in {ctx.node.name if ctx.node else '?'}): no ONNX lowering for op(s) {', '.join(missing)}")
    rename: dict[str, str] = {"": ""}

    def new(name: str) -> str:
        return ctx.fresh(f"{prefix}{name}")

    for i, v in enumerate(graph.inputs):
        rename[v.name] = outer[i] if i in outer else new(v.name)
    for nm in graph.initializers:
        rename[nm] = new(nm)
    for n in graph.nodes:
        for v in n.outputs:
            rename[v.name] = new(v.name)
    lead = [(new(nm), t) for nm, t in lead_inputs]
    nodes = tuple(
        Node(op=n.op, inputs=tuple(rename[i] for i in n.inputs),
             outputs=tuple(Value(name=rename[v.name], type=v.type) for v in n.outputs),
             attrs=n.attrs, name=ctx.fresh(f"{prefix}{n.name or n.op}"))
        for n in graph.nodes
    )
    renamed = Graph(
        name=f"{prefix.rstrip('/')}",
        inputs=tuple(Value(name=nm, type=t) for nm, t in lead) + tuple(Value(name=rename[v.name], type=v.type) for v in graph.inputs),
        outputs=tuple(Value(name=rename[v.name], type=v.type) for v in graph.outputs),
        nodes=nodes,
        initializers={rename[k]: a for k, a in graph.initializers.items()},
    )
    sub = LoweringContext(renamed, ctx.opset)
    sub._names |= ctx._names
    for n in renamed.nodes:
        sub.begin(n)
        LOWERINGS[n.op](sub, n, list(n.inputs), [v.name for v in n.outputs])
        sub.finish_node()
    sub.node = None
    out_infos = []
    for i, v in enumerate(renamed.outputs):
        o = sub.fresh(f"{prefix}out_{i}")
        sub.nodes.append(helper.make_node("Identity", [v.name], [o], name=sub.fresh(f"{prefix}out_{i}/Identity", sub._node_names)))
        out_infos.append(tensor_type_proto(o, v.type))
    ctx._names |= sub._names
    formal = [tensor_type_proto(nm, t) for nm, t in lead]
    formal += [tensor_type_proto(rename[v.name], v.type) for i, v in enumerate(graph.inputs) if i not in outer]
    boundary = {rename[v.name] for v in graph.inputs} | set(renamed.initializers)
    infos = [tensor_type_proto(v.name, v.type) for n in renamed.nodes for v in n.outputs if v.name not in boundary]
    inits = [numpy_helper.from_array(np.asarray(a), k) for k, a in renamed.initializers.items()] + sub.initializers
    if sub.rnn_fused:  # a fused layer left its input projection unused
        sub.nodes = tidy(sub.nodes, [o.name for o in out_infos], inits)
        made = {o for n in sub.nodes for o in n.output}
        infos = [i for i in infos if i.name in made]
    return helper.make_graph(sub.nodes, renamed.name.replace("/", "_"), formal, out_infos,
                             initializer=inits, value_info=infos)


@lowering("cond")
def _cond(ctx, node, ins, outs):
    outer = {i: name for i, name in enumerate(ins[1:])}
    a = node.attrs
    tg = lower_subgraph(ctx, a["then_branch"], f"{node.name}/then/", outer)
    eg = lower_subgraph(ctx, a["else_branch"], f"{node.name}/else/", outer)
    ctx.emit("If", [ins[0]], outs, then_branch=tg, else_branch=eg)


def _loop_body(graph: Graph, num_consts: int, n_carry: int, pred: Graph | None = None) -> Graph:
    """The IR graph (consts..., carry...) -> (keep_going, carry..., ys...) of an ONNX Loop body:
    ``graph``'s outputs after a ``True`` (a scan of fixed length), or after ``pred`` of the new
    carry (a while loop)."""
    from irflow.ops.special import call

    b = GraphBuilder(f"{graph.name}_loop")
    vals = [b.input(f"in_{i}", v.type.dtype, v.type.shape) for i, v in enumerate(graph.inputs[:num_consts + n_carry])]
    with b:
        res = call(*vals, graph=graph)
        res = res if isinstance(res, tuple) else (res,)
        if pred is None:
            keep = b.constant(np.asarray(True))
        else:
            keep = bind("reshape", call(*vals[:num_consts], *res[:n_carry], graph=pred), shape=())
        b.output(keep, *res)
    return b.build()


_INT64_MIN = np.iinfo(np.int64).min


@lowering("scan")
def _scan(ctx, node, ins, outs):
    a = node.attrs
    body, nc, ncar = a["body"], a["num_consts"], a["num_carry"]
    dyn = bool(a.get("dynamic_length", False))
    consts, carry, xs = ins[:nc], ins[nc:nc + ncar], ins[nc + ncar:len(ins) - int(dyn)]
    rev = int(bool(a["reverse"]))
    n_y = len(body.outputs) - ncar
    if xs and lower_native_rnn(ctx, node, ins, outs):
        return
    if xs:
        g = lower_subgraph(ctx, body, f"{node.name}/body/", dict(enumerate(consts)))
        dirs = {"scan_output_directions": [rev] * n_y} if n_y else {}  # helper cannot type an empty list
        ctx.emit("Scan", [*carry, *xs], outs, body=g, num_scan_inputs=len(xs),
                 scan_input_directions=[rev] * len(xs), **dirs)
        return
    # nothing to scan over: an ONNX Loop of `length` iterations
    loop = _loop_body(body, nc, ncar)
    lead = [("iter", TensorType(dtype=DType.int64, shape=())), ("cond_in", TensorType(dtype=DType.bool, shape=()))]
    g = lower_subgraph(ctx, loop, f"{node.name}/body/", dict(enumerate(consts)), lead)
    # the run-time length (int64 scalar) is the Loop's trip count as it is: ONNX Loop runs
    # max(M, 0) iterations and stacks the scan outputs itself
    m = ins[-1] if dyn else ctx.const(np.asarray(a["length"], np.int64), "trip_count")
    ys = outs[ncar:]
    tmp = [ctx.fresh(f"{node.name}/ys_{j}") for j in range(n_y)] if rev else ys
    ctx.emit("Loop", [m, "", *carry], [*outs[:ncar], *tmp], body=g)
    for t, y in zip(tmp if rev else (), ys):
        ctx.emit("Slice", [t, ctx.const(np.asarray([-1], np.int64)), ctx.const(np.asarray([_INT64_MIN], np.int64)),
                           ctx.const(np.asarray([0], np.int64)), ctx.const(np.asarray([-1], np.int64))], [y])


@lowering("while_loop")
def _while(ctx, node, ins, outs):
    from irflow.executors.onnx.lowering.special import inline_graph

    a = node.attrs
    nc, cg, bg = a["num_consts"], a["cond_graph"], a["body_graph"]
    consts, carry = ins[:nc], ins[nc:]
    first = ctx.fresh(f"{node.name}/cond0")
    ctx.types[first] = cg.outputs[0].type
    inline_graph(ctx, node, cg, list(ins), [first])
    keep = first
    if cg.outputs[0].type.rank:
        keep = ctx.emit("Reshape", [first, ctx.const(np.asarray([], np.int64), "scalar_shape")], 1)[0]
    loop = _loop_body(bg, nc, len(carry), pred=cg)
    lead = [("iter", TensorType(dtype=DType.int64, shape=())), ("cond_in", TensorType(dtype=DType.bool, shape=()))]
    g = lower_subgraph(ctx, loop, f"{node.name}/body/", dict(enumerate(consts)), lead)
    m = ctx.const(np.asarray(a["max_iterations"], np.int64), "max_iterations") if a["max_iterations"] is not None else ""
    ctx.emit("Loop", [m, keep, *carry], outs, body=g)
