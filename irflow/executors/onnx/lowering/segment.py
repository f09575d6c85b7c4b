"""Segment reductions as one ScatterND (reduction add / max / min) into a ConstantOfShape."""
from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from irflow.ir.dtypes import DType
from irflow.executors.onnx.context import ONNX_DTYPE
from irflow.executors.onnx.lowering import lowering


def _fill(dtype: np.dtype, reduction: str):
    if reduction == "add":
        return 0
    info = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype)
    return info.min if reduction == "max" else info.max


def _lower_segment(reduction: str):
    def lower(ctx, node, ins, outs):
        dtype = node.outputs[0].type.dtype
        # onnxruntime's ScatterND has no float16 / bfloat16 reductions: compute in float32
        wide = DType.float32 if dtype in (DType.float16, DType.bfloat16) else dtype
        data = ins[0] if wide is dtype else ctx.emit("Cast", [ins[0]], 1, to=ONNX_DTYPE[wide])[0]
        ids = ins[1]
        if ctx.types[ids].dtype is not DType.int64:
            ids = ctx.emit("Cast", [ids], 1, to=ONNX_DTYPE[DType.int64])[0]
        if node.attrs["num_segments"] is not None:
            count = ctx.const(np.asarray([node.attrs["num_segments"]], dtype=np.int64), "num_segments")
        else:
            n = ins[2]
            if ctx.types[n].dtype is not DType.int64:
                n = ctx.emit("Cast", [n], 1, to=ONNX_DTYPE[DType.int64])[0]
            count = ctx.emit("Unsqueeze", [n, ctx.const(np.asarray([0], dtype=np.int64), "axes")], 1)[0]
        inner = ctx.emit("Shape", [data], 1, start=1)[0]
        shape = ctx.emit("Concat", [count, inner], 1, axis=0)[0]
        fill = numpy_helper.from_array(np.asarray([_fill(wide.numpy, reduction)], dtype=wide.numpy))
        init = ctx.emit("ConstantOfShape", [shape], 1, value=fill)[0]
        idx = ctx.emit("Unsqueeze", [ids, ctx.const(np.asarray([1], dtype=np.int64), "axes")], 1)[0]
        if wide is dtype:
            ctx.emit("ScatterND", [init, idx, data], outs, reduction=reduction)
        else:
            res = ctx.emit("ScatterND", [init, idx, data], 1, reduction=reduction)[0]
            ctx.emit("Cast", [res], outs, to=ONNX_DTYPE[dtype])

    lower.__name__ = f"lower_segment_{reduction}"
    return lower


lowering("segment_sum")(_lower_segment("add"))
lowering("segment_max")(_lower_segment("max"))
lowering("segment_min")(_lower_segment("min"))
