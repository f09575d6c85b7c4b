"""ONNX lowerings of the extra ops (irflow/ops/extra.py): one standard node each."""
from __future__ import annotations

import numpy as np

from irflow.errors import ExecutorError
from irflow.executors.onnx.context import ONNX_DTYPE
from irflow.executors.onnx.lowering import NEEDS_OPSET, lowering, simple
from irflow.ir.dtypes import DType

for _name, _onnx in [("asin", "Asin"), ("acos", "Acos"), ("atan", "Atan"), ("bitwise_and", "BitwiseAnd"),
                     ("bitwise_or", "BitwiseOr"), ("bitwise_xor", "BitwiseXor"), ("bitwise_not", "BitwiseNot")]:
    simple(_name, _onnx)


def _bit_shift(direction: str):
    # onnxruntime's BitShift has no uint16: shifted in uint32 and cast back, which keeps the low
    # 16 bits, the same as shifting in uint16
    def lower(ctx, node, ins, outs):
        dtype = node.outputs[0].type.dtype
        if dtype is not DType.uint16:
            ctx.emit("BitShift", ins, outs, direction=direction)
            return
        wide = [ctx.emit("Cast", [i], 1, to=ONNX_DTYPE[DType.uint32])[0] for i in ins]
        shifted = ctx.emit("BitShift", wide, 1, direction=direction)[0]
        ctx.emit("Cast", [shifted], outs, to=ONNX_DTYPE[dtype])

    return lower


lowering("bit_shift_left")(_bit_shift("LEFT"))
lowering("bit_shift_right")(_bit_shift("RIGHT"))


BITCAST_OPSET = 26  # ONNX BitCast is new in opset 26


def _bit_cast_as_cast(src: DType, to: DType) -> bool:
    """Whether Cast gives BitCast's result: between ints of one width (two's complement, which
    onnxruntime's Cast wraps as C does) and from bool (its byte is 0 or 1)."""
    return src is to or src is DType.bool or (src.is_int and to.is_int)


def _bit_cast_opset(node, types) -> int:
    return 0 if _bit_cast_as_cast(types[node.inputs[0]].dtype, node.attrs["dtype"]) else BITCAST_OPSET


NEEDS_OPSET["bit_cast"] = _bit_cast_opset


@lowering("bit_cast")
def _bit_cast(ctx, node, ins, outs):
    src, to = ctx.types[ins[0]].dtype, node.attrs["dtype"]
    if _bit_cast_as_cast(src, to):  # also below opset 26, and onnxruntime has no BitCast from bool
        ctx.emit("Cast", ins, outs, to=ONNX_DTYPE[to])
    elif ctx.opset >= BITCAST_OPSET:
        ctx.emit("BitCast", ins, outs, to=ONNX_DTYPE[to])
    else:
        raise ExecutorError(f"node {node.name} (bit_cast {src.value} -> {to.value}): ONNX has no equivalent of "
                            f"BitCast before opset {BITCAST_OPSET}; export with opset={BITCAST_OPSET} or leave the "
                            f"opset out (then it is {BITCAST_OPSET} for this graph)")


@lowering("gather_elements")
def _gather_elements(ctx, node, ins, outs):
    ctx.emit("GatherElements", ins, outs, axis=node.attrs["axis"])


@lowering("scatter_elements")
def _scatter_elements(ctx, node, ins, outs):
    ctx.emit("ScatterElements", ins, outs, axis=node.attrs["axis"], reduction=node.attrs["reduction"])


@lowering("scatter_nd")
def _scatter_nd(ctx, node, ins, outs):
    ctx.emit("ScatterND", ins, outs, reduction=node.attrs["reduction"])


# onnxruntime's TopK has no unsigned ints but uint8: wider signed types hold every value.
_TOPK_WIDEN = {DType.uint16: DType.int32, DType.uint32: DType.float64}  # float64: see WIDEN_ORDER


@lowering("topk")
def _topk(ctx, node, ins, outs):
    k = ctx.const(np.asarray([node.attrs["k"]], dtype=np.int64), "k")
    attrs = dict(axis=node.attrs["axis"], largest=int(node.attrs["largest"]), sorted=int(node.attrs["sorted"]))
    dtype = ctx.types[ins[0]].dtype
    wide = _TOPK_WIDEN.get(dtype)
    if wide is None:
        ctx.emit("TopK", [ins[0], k], outs, **attrs)
        return
    x = ctx.emit("Cast", [ins[0]], 1, to=ONNX_DTYPE[wide])[0]
    values, _ = ctx.emit("TopK", [x, k], [ctx.fresh(f"{outs[0]}_wide"), outs[1]], **attrs)
    ctx.emit("Cast", [values], [outs[0]], to=ONNX_DTYPE[dtype])


@lowering("reshape_dynamic")
def _reshape_dynamic(ctx, node, ins, outs):
    ctx.emit("Reshape", ins, outs, allowzero=int(node.attrs.get("allowzero", False)))
simple("expand_dynamic", "Expand")


@lowering("full_dynamic")
def _full_dynamic(ctx, node, ins, outs):
    from onnx import numpy_helper

    ctx.emit("ConstantOfShape", ins, outs, value=numpy_helper.from_array(np.asarray(node.attrs["value"]).reshape(1)))
