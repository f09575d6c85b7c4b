"""ONNX lowerings of the elementwise ops."""
from __future__ import annotations

from irflow.executors.onnx.lowering import lowering, simple

for _name, _onnx in [("neg", "Neg"), ("exp", "Exp"), ("relu", "Relu"), ("add", "Add"), ("sub", "Sub"),
                     ("mul", "Mul"), ("div", "Div"), ("greater", "Greater"), ("where", "Where")]:
    simple(_name, _onnx)


@lowering("zeros_like")
def _zeros_like(ctx, node, ins, outs):
    # x * 0 would turn Inf/NaN into NaN; expanding a 0 to the shape of x does not.
    shape = ctx.emit("Shape", ins)
    ctx.emit("Expand", [ctx.scalar(0, node.outputs[0].type.dtype), shape[0]], outs)


@lowering("ones_like")
def _ones_like(ctx, node, ins, outs):
    shape = ctx.emit("Shape", ins)
    ctx.emit("Expand", [ctx.scalar(1, node.outputs[0].type.dtype), shape[0]], outs)
