"""ONNX lowerings of the shape ops."""
from __future__ import annotations

import numpy as np

from irflow.executors.onnx.lowering import lowering, simple

simple("identity", "Identity")


@lowering("expand_dims")
def _expand_dims(ctx, node, ins, outs):
    ctx.emit("Unsqueeze", [ins[0], ctx.const(np.asarray(node.attrs["axes"], dtype=np.int64))], outs)


@lowering("broadcast_like")
def _broadcast_like(ctx, node, ins, outs):
    shape = ctx.emit("Shape", [ins[1]])
    ctx.emit("Expand", [ins[0], shape[0]], outs)


@lowering("transpose")
def _transpose(ctx, node, ins, outs):
    perm = node.attrs["perm"]
    if perm is None:
        perm = tuple(range(node.outputs[0].type.rank))[::-1]
    ctx.emit("Transpose", ins, outs, perm=list(perm))


@lowering("squeeze")
def _squeeze(ctx, node, ins, outs):
    axes = node.attrs["axes"]
    args = list(ins) if axes is None else [ins[0], ctx.const(np.asarray(axes, dtype=np.int64))]
    ctx.emit("Squeeze", args, outs)
