"""ONNX signal ops -> IR: DFT, STFT, MelWeightMatrix (one IR op each, ``irflow/ops/signal.py``).

DFT's axis (an attribute before opset 20, an input from 20 on) becomes the op's attribute when
known at import, else a run-time input of the op; ``dft_length`` must be known at import (it
decides the output's shape). STFT's frame_step / frame_length and MelWeightMatrix's scalars
stay run-time inputs, as ONNX has them.
"""
from __future__ import annotations

import numpy as np

from irflow.frontends.onnx_import_base import importer, rank_of, to_dtype
from irflow.ops.dispatch import bind


@importer("DFT")
def _dft(n):
    x = n.input(0)
    r = rank_of(x)
    length = None
    if n.has_input(1):
        length = n.const_scalar(1, "dft_length")
        if length < 1:
            raise n.error(f"dft_length must be positive, got {length}")
    flags = dict(inverse=bool(n.attr("inverse", 0)), onesided=bool(n.attr("onesided", 0)), dft_length=length)
    if n.opset < 20:
        return bind("dft", x, axis=n.axis(n.attr("axis", 1), r), **flags)
    if not n.has_input(2):
        return bind("dft", x, axis=n.axis(-2, r), **flags)
    known = n.ctx.known_value(n.input_names[2])
    if known is not None:
        return bind("dft", x, axis=n.axis(int(np.asarray(known).reshape(-1)[0]), r), **flags)
    return bind("dft", x, n.input(2), axis=1, **flags)  # a run-time axis: the op's second input


@importer("STFT")
def _stft(n):
    return bind("stft", n.input(0), n.input(1), n.input(2), n.input(3), onesided=bool(n.attr("onesided", 1)))


@importer("MelWeightMatrix")
def _mel_weight_matrix(n):
    dtype = to_dtype(n.attr("output_datatype", 1), n.where())
    return bind("mel_weight_matrix", *(n.input(i) for i in range(5)), dtype=dtype)
