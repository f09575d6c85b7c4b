"""ONNX lowerings of irflow/ops/onnx_extra.py: ReverseSequence, MaxUnpool, Det."""
from __future__ import annotations

import numpy as np

from irflow.executors.onnx.lowering import lowering, simple

simple("det", "Det")


@lowering("reverse_sequence")
def _reverse_sequence(ctx, node, ins, outs):
    ctx.emit("ReverseSequence", ins, outs, batch_axis=node.attrs["batch_axis"], time_axis=node.attrs["time_axis"])


@lowering("max_unpool")
def _max_unpool(ctx, node, ins, outs):
    # The ONNX reference (and the backend tests) scatter into the inferred shape and zero-pad it
    # at the end to output_shape; onnxruntime reads the indices as positions in output_shape
    # instead. MaxUnpool without output_shape, then Pad, means the same on every runtime.
    attrs = dict(kernel_shape=list(node.attrs["kernel_shape"]), pads=list(node.attrs["pads"]),
                 strides=list(node.attrs["strides"]))
    if node.attrs["out_shape"] is None and len(ins) < 3:
        ctx.emit("MaxUnpool", ins[:2], outs, **attrs)
        return
    y = ctx.emit("MaxUnpool", ins[:2], 1, **attrs)[0]
    target = ins[2] if len(ins) > 2 and ins[2] else ctx.const(np.asarray(node.attrs["out_shape"], np.int64), "output_shape")
    extra = ctx.emit("Sub", [target, ctx.emit("Shape", [y], 1)[0]], 1)[0]
    zeros = ctx.const(np.zeros(ctx.types[ins[0]].rank, np.int64), "zeros")
    pads = ctx.emit("Concat", [zeros, extra], 1, axis=0)[0]
    ctx.emit("Pad", [y, pads], outs, mode="constant")
