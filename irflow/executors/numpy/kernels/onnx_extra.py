"""NumPy kernels of irflow/ops/onnx_extra.py (reverse_sequence, max_unpool, det), from the ONNX spec."""
from __future__ import annotations

import numpy as np

from irflow.errors import ExecutorError
from irflow.executors.numpy.kernels import kernel


@kernel("reverse_sequence")
def reverse_sequence(x, lens, batch_axis=1, time_axis=0):
    xt = np.moveaxis(x, (batch_axis, time_axis), (0, 1))  # (batch, time, ...)
    if lens.shape != (xt.shape[0],):
        raise ExecutorError(f"reverse_sequence: sequence_lens {lens.shape} must have one entry per batch entry ({xt.shape[0]})")
    bad = (lens < 0) | (lens > xt.shape[1])
    if bad.any():
        raise ExecutorError(f"reverse_sequence: sequence_lens {lens.tolist()} must be in 0..{xt.shape[1]} (the time axis)")
    out = xt.copy()
    for b, n in enumerate(lens.tolist()):
        out[b, :n] = xt[b, n - 1::-1] if n else xt[b, :0]
    return np.ascontiguousarray(np.moveaxis(out, (0, 1), (batch_axis, time_axis)))


@kernel("max_unpool")
def max_unpool(x, indices, output_shape=None, kernel_shape=(), pads=(), strides=(), out_shape=None):
    from irflow.ops.onnx_extra import unpool_shape

    inferred = unpool_shape(x.shape, kernel_shape, pads, strides)
    size = int(np.prod(inferred))
    flat = indices.reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= size):
        raise ExecutorError(f"max_unpool: indices must be in 0..{size - 1} (flat positions in the inferred shape {inferred})")
    y = np.zeros(size, x.dtype)
    y[flat] = x.reshape(-1)  # later entries win on repeats, as the ONNX reference's loop
    y = y.reshape(inferred)
    shape = out_shape if output_shape is None else tuple(int(v) for v in output_shape.reshape(-1))
    if shape is None:
        return y
    if len(shape) != y.ndim or any(s < d for s, d in zip(shape, inferred)):
        raise ExecutorError(f"max_unpool: output_shape {tuple(shape)} must have rank {y.ndim} and hold the inferred shape {inferred}")
    out = np.zeros(shape, x.dtype)
    out[tuple(slice(0, d) for d in inferred)] = y
    return out


@kernel("det")
def det(x):
    return np.asarray(np.linalg.det(x), dtype=x.dtype)
