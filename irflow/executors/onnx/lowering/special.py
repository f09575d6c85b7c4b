"""ONNX lowerings of the special ops.

``call`` and ``custom_call`` are inlined: the inner graph's nodes are lowered in place, every
inner value renamed to a fresh name of the outer model (so two calls of one graph cannot
clash), inner inputs mapped to the call's inputs and inner outputs to its outputs. Nested calls
inline recursively. The backward graph of a ``custom_call`` is not part of the forward model:
it appears only where a gradient graph calls it (as a ``call`` node).
"""
from __future__ import annotations

from irflow.executors.onnx.lowering import LOWERINGS, lowering, simple
from irflow.ir.dtypes import dtype_of_array
from irflow.ir.graph import Graph, Node, Value
from irflow.ir.types import TensorType

simple("stop_gradient", "Identity")


class _TypesView:
    """Stands in for ``ctx.graph`` while an inner graph is lowered: its value types are ctx.types."""

    def __init__(self, graph: Graph, types: dict):
        self._graph = graph
        self._types = types

    def value_types(self) -> dict:
        return self._types

    def __getattr__(self, name: str):
        return getattr(self._graph, name)


def inline_graph(ctx, node, inner: Graph, ins: list, outs: list) -> None:
    """Lower ``inner``'s nodes into ``ctx`` with inputs ``ins`` and outputs ``outs``."""
    from irflow.errors import UnsupportedOpError

    missing = sorted({n.op for n in inner.nodes if n.op not in LOWERINGS})
    if missing:
        raise UnsupportedOpError(f"{node.op} node {node.name}: graph {inner.name!r} has op(s) with no ONNX lowering: {', '.join(missing)}")
    rename: dict[str, str] = {"": ""}
    # Lowerings look input types up in ctx.types, or in ctx.graph.value_types() (some cache
    # that in a private ctx attribute): while the inner nodes are lowered, ctx.graph is a view
    # whose value_types() is ctx.types, and private caches are dropped so they are rebuilt from
    # it. ctx.types gains the renamed inner values, so it stays a superset of the outer types.
    for key in [k for k in vars(ctx) if k.startswith("_") and k.endswith("types")]:
        delattr(ctx, key)
    outer_graph = ctx.graph
    ctx.graph = _TypesView(outer_graph, ctx.types)
    for v, outer in zip(inner.inputs, ins):
        rename[v.name] = outer
    for name, arr in inner.initializers.items():
        rename[name] = ctx.const(arr, name)
        ctx.types[rename[name]] = TensorType(dtype=dtype_of_array(arr), shape=arr.shape)
    # An inner output produced by a node (and listed once) takes the outer name directly.
    produced = {v.name for n in inner.nodes for v in n.outputs}
    direct: dict[str, str] = {}
    for v, outer in zip(inner.outputs, outs):
        if v.name in produced and v.name not in direct:
            direct[v.name] = outer
    for n in inner.nodes:
        for v in n.outputs:
            rename[v.name] = direct.get(v.name) or ctx.fresh(f"{node.name}/{v.name}")
            ctx.types[rename[v.name]] = v.type
    try:
        for n in inner.nodes:
            new_ins = [rename[i] for i in n.inputs]
            new_outs = [rename[v.name] for v in n.outputs]
            renamed = Node(op=n.op, inputs=tuple(new_ins),
                           outputs=tuple(Value(name=nm, type=v.type) for nm, v in zip(new_outs, n.outputs)),
                           attrs=n.attrs, name=ctx.fresh(f"{node.name}/{n.name}"))
            ctx.begin(renamed)
            LOWERINGS[n.op](ctx, renamed, new_ins, new_outs)
            ctx.finish_node()
    finally:
        ctx.graph = outer_graph
    ctx.begin(node)  # back to the call node (names of what follows derive from it)
    for v, outer in zip(inner.outputs, outs):
        if direct.get(v.name) != outer:
            ctx.emit("Identity", [rename[v.name]], [outer])


@lowering("call")
def _call(ctx, node, ins, outs):
    inline_graph(ctx, node, node.attrs["graph"], ins, outs)


@lowering("custom_call")
def _custom_call(ctx, node, ins, outs):
    inline_graph(ctx, node, node.attrs["fwd"], ins, outs)


@lowering("check_numerics")
def _check_numerics(ctx, node, ins, outs):
    # ONNX has no assertion op. A Reshape that cannot succeed stands in for one: a [1] constant
    # reshaped to [1 + flag] fails exactly when flag is 1. The runner turns onnxruntime's error
    # at the node named "<node>/assert_no_nan" (or "_inf") into the interpreter's NumericsError.
    import numpy as np

    x = ins[0]
    shape = ctx.const(np.ones(1, np.int64), "one")
    passed = None
    for test, kind in (("IsNaN", "nan"), ("IsInf", "inf")):
        hits = ctx.emit("ReduceSum", [ctx.emit("Cast", [ctx.emit(test, [x])[0]], to=onnx_int64())[0]], keepdims=0)[0]
        flag = ctx.emit("Min", [hits, ctx.const(np.array(1, np.int64), "one_scalar")])[0]
        # The Inf check adds the NaN check's (zero) result, so it runs after it: NaN is
        # reported first, as the interpreter does, whatever order onnxruntime picks.
        target = ctx.emit("Add", [shape, flag] if passed is None else [ctx.emit("Add", [shape, flag])[0], passed])[0]
        (reshaped,) = ctx.emit("Reshape", [ctx.const(np.zeros(1, np.int64), "zero"), target])
        ctx.nodes[-1].name = f"{ctx._prefix}/assert_no_{kind}"
        passed = ctx.emit("ReduceSum", [reshaped], keepdims=0)[0]
    # The output depends on both assertions, so onnxruntime cannot prune them; Where(c, x, x)
    # is x bit for bit (-0.0 and NaN payloads included).
    ok = ctx.emit("Equal", [passed, ctx.const(np.array(0, np.int64), "zero_scalar")])[0]
    ctx.emit("Where", [ok, x, x], outs)


def onnx_int64() -> int:
    import onnx

    return onnx.TensorProto.INT64
