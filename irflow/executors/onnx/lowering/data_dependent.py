"""ONNX lowerings of the data-dependent-shape ops (irflow/ops/data_dependent.py): the ONNX op of
the same meaning each (NonZero, Unique, Compress, NonMaxSuppression)."""
from __future__ import annotations

from irflow.executors.onnx.context import ONNX_DTYPE
from irflow.executors.onnx.lowering import lowering, simple
from irflow.ir.dtypes import DType

simple("nonzero", "NonZero")

# onnxruntime implements Unique for these element types only; the others are cast to one that
# holds them exactly (narrow ints and bool to int64, half floats to float32) and Y cast back.
_UNIQUE_TYPES = {DType.float32, DType.float64, DType.int64, DType.int8}
_WIDER = {DType.float16: DType.float32, DType.bfloat16: DType.float32}


@lowering("unique")
def _unique(ctx, node, ins, outs):
    attrs = {"sorted": int(node.attrs["sorted"])}
    if node.attrs["axis"] is not None:
        attrs["axis"] = node.attrs["axis"]
    dtype = ctx.types[ins[0]].dtype
    if dtype in _UNIQUE_TYPES:
        ctx.emit("Unique", ins, outs, **attrs)
        return
    wide = _WIDER.get(dtype, DType.int64)
    x = ctx.emit("Cast", ins, 1, to=ONNX_DTYPE[wide])
    y = ctx.emit("Unique", x, [ctx.fresh(f"{outs[0]}_wide")] + list(outs[1:]), **attrs)[0]
    ctx.emit("Cast", [y], [outs[0]], to=ONNX_DTYPE[dtype])


@lowering("compress")
def _compress(ctx, node, ins, outs):
    axis = node.attrs["axis"]
    ctx.emit("Compress", ins, outs, **({} if axis is None else {"axis": axis}))


@lowering("non_max_suppression")
def _nms(ctx, node, ins, outs):
    ctx.emit("NonMaxSuppression", [i or "" for i in ins], outs, center_point_box=node.attrs["center_point_box"])
