"""ONNX lowerings of the random ops: RandomUniform / RandomNormal with the node's seed.

onnxruntime cannot reproduce NumPy's PCG64 stream, so results agree in distribution only;
its generator also advances on each session run (NumPy gives the same draw every run).
16-bit dtypes are drawn in float32 and cast (onnxruntime's CPU kernels lack them), as the
NumPy kernel does.
"""
from __future__ import annotations

from irflow.executors.onnx.context import ONNX_DTYPE
from irflow.executors.onnx.lowering import lowering
from irflow.ir.dtypes import DType


def _random(ctx, onnx_op, node, outs, **params):
    dtype = node.attrs["dtype"]
    draw = dtype if dtype in (DType.float32, DType.float64) else DType.float32
    common = dict(dtype=ONNX_DTYPE[draw], shape=list(node.attrs["shape"]), seed=float(node.attrs["seed"]))
    if draw is dtype:
        ctx.emit(onnx_op, [], outs, **common, **params)
    else:
        drawn = ctx.emit(onnx_op, [], 1, **common, **params)
        ctx.emit("Cast", drawn, outs, to=ONNX_DTYPE[dtype])


@lowering("random_uniform")
def _random_uniform(ctx, node, ins, outs):
    _random(ctx, "RandomUniform", node, outs, low=float(node.attrs["low"]), high=float(node.attrs["high"]))


@lowering("random_normal")
def _random_normal(ctx, node, ins, outs):
    _random(ctx, "RandomNormal", node, outs, mean=float(node.attrs["mean"]), scale=float(node.attrs["stddev"]))
