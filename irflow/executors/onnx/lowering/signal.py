"""ONNX lowerings of the signal ops (``irflow/ops/signal.py``): DFT, STFT and MelWeightMatrix,
one node each. DFT's axis is an input from opset 20 (a constant when the IR has it as an
attribute); below opset 20 it is an attribute and must be static."""
from __future__ import annotations

import numpy as np

from irflow.errors import UnsupportedOpError
from irflow.executors.onnx.context import ONNX_DTYPE
from irflow.executors.onnx.lowering import lowering


@lowering("dft")
def _dft(ctx, node, ins, outs):
    a = node.attrs
    length = "" if a.get("dft_length") is None else ctx.const(np.asarray(a["dft_length"], np.int64), "dft_length")
    flags = dict(inverse=int(a["inverse"]), onesided=int(a["onesided"]))
    runtime_axis = len(ins) > 1 and ins[1] != ""
    if ctx.opset >= 20:
        axis = ins[1] if runtime_axis else ctx.const(np.asarray(a["axis"], np.int64), "axis")
        ctx.emit("DFT", [ins[0], length, axis], outs, **flags)
        return
    if runtime_axis:
        raise UnsupportedOpError(f"dft node '{node.name}': a run-time axis needs opset >= 20 (DFT's axis input), "
                                 f"exporting at opset {ctx.opset}")
    ctx.emit("DFT", [ins[0], length] if length else [ins[0]], outs, axis=a["axis"], **flags)


@lowering("stft")
def _stft(ctx, node, ins, outs):
    ctx.emit("STFT", ins, outs, onesided=int(node.attrs["onesided"]))


@lowering("mel_weight_matrix")
def _mel_weight_matrix(ctx, node, ins, outs):
    ctx.emit("MelWeightMatrix", ins, outs, output_datatype=ONNX_DTYPE[node.attrs["dtype"]])
