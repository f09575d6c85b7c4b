"""ONNX lowerings of the extra ops (irflow/ops/extra.py): one standard node each."""
from __future__ import annotations

import numpy as np

from irflow.executors.onnx.lowering import lowering, simple

for _name, _onnx in [("asin", "Asin"), ("acos", "Acos"), ("atan", "Atan"), ("bitwise_and", "BitwiseAnd"),
                     ("bitwise_or", "BitwiseOr"), ("bitwise_xor", "BitwiseXor"), ("bitwise_not", "BitwiseNot")]:
    simple(_name, _onnx)
simple("bit_shift_left", "BitShift", direction="LEFT")
simple("bit_shift_right", "BitShift", direction="RIGHT")


@lowering("gather_elements")
def _gather_elements(ctx, node, ins, outs):
    ctx.emit("GatherElements", ins, outs, axis=node.attrs["axis"])


@lowering("scatter_elements")
def _scatter_elements(ctx, node, ins, outs):
    ctx.emit("ScatterElements", ins, outs, axis=node.attrs["axis"], reduction=node.attrs["reduction"])


@lowering("scatter_nd")
def _scatter_nd(ctx, node, ins, outs):
    ctx.emit("ScatterND", ins, outs, reduction=node.attrs["reduction"])


@lowering("topk")
def _topk(ctx, node, ins, outs):
    k = ctx.const(np.asarray([node.attrs["k"]], dtype=np.int64), "k")
    ctx.emit("TopK", [ins[0], k], outs, axis=node.attrs["axis"], largest=int(node.attrs["largest"]),
             sorted=int(node.attrs["sorted"]))


simple("reshape_dynamic", "Reshape")
simple("expand_dynamic", "Expand")


@lowering("full_dynamic")
def _full_dynamic(ctx, node, ins, outs):
    from onnx import numpy_helper

    ctx.emit("ConstantOfShape", ins, outs, value=numpy_helper.from_array(np.asarray(node.attrs["value"]).reshape(1)))
