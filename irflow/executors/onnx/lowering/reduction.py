"""ONNX lowerings of the reductions."""
from __future__ import annotations

import numpy as np

from irflow.executors.onnx.lowering import lowering


def reduce_with_axes(ctx, onnx_op, node, ins, outs):
    """Reduce* ops from opset 18 take axes as an input; None (all axes) omits it."""
    axes = node.attrs["axes"]
    args = list(ins) if axes is None else [ins[0], ctx.const(np.asarray(axes, dtype=np.int64))]
    ctx.emit(onnx_op, args, outs, keepdims=int(node.attrs["keepdims"]))


@lowering("reduce_sum")
def _reduce_sum(ctx, node, ins, outs):
    reduce_with_axes(ctx, "ReduceSum", node, ins, outs)
