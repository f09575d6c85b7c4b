"""ONNX lowerings of the integer-quantized ops (``irflow/ops/quantized.py``): each is the ONNX
op of the same meaning (MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv), so
onnxruntime runs its native integer kernels on the exported model."""
from __future__ import annotations

from irflow.executors.onnx.lowering import lowering, simple

simple("matmul_integer", "MatMulInteger")
simple("qlinear_matmul", "QLinearMatMul")


def _conv_attrs(node) -> dict:
    a = node.attrs
    return dict(strides=list(a["strides"]), pads=list(a["pads"]), dilations=list(a["dilations"]), group=a["groups"])


@lowering("conv_integer")
def _conv_integer(ctx, node, ins, outs):
    ctx.emit("ConvInteger", ins, outs, **_conv_attrs(node))


@lowering("qlinear_conv")
def _qlinear_conv(ctx, node, ins, outs):
    ctx.emit("QLinearConv", ins, outs, **_conv_attrs(node))
