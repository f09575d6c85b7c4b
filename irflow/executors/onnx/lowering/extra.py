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
simple("bit_shift_left", "BitShift", direction="LEFT")
simple("bit_shift_right", "BitShift", direction="RIGHT")


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
