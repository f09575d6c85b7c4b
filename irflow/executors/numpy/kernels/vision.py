"""NumPy kernels of the vision sampling ops (``irflow/ops/vision.py``): grid_sample gathers each
tap combination from the flattened spatial dims (one ``take_along_axis`` per combination, 2^r for
linear, 4^r for cubic) and adds them weighted. 16-bit floats are computed in float32."""
from __future__ import annotations

import math

import numpy as np

from irflow.ir.dtypes import dtype_of_array
from irflow.ir.types import TensorType
from irflow.executors.numpy.kernels import kernel
from irflow.ops.vision import _grid_sample_type, combos, flat_index
from irflow.ops.vision_taps import NP, grid_taps


def _work(dtype):
    return np.float32 if dtype.itemsize == 2 else dtype


@kernel("grid_sample")
def grid_sample(x, grid, *, mode, padding_mode, align_corners):
    # eager calls reach the kernel without the type rule: its checks, its messages (cheap)
    _grid_sample_type(TensorType(dtype=dtype_of_array(x), shape=x.shape),
                      TensorType(dtype=dtype_of_array(grid), shape=grid.shape), mode=mode,
                      padding_mode=padding_mode, align_corners=align_corners)
    n, c, sizes = x.shape[0], x.shape[1], tuple(x.shape[2:])
    work = _work(x.dtype)
    out = tuple(grid.shape[1:-1])
    p = math.prod(out)
    xf = x.reshape(n, c, -1).astype(work, copy=False)
    dims = grid_taps(NP, grid.reshape(n, p, len(sizes)).astype(work, copy=False), sizes, mode, padding_mode,
                     align_corners)
    y = np.zeros((n, c, p), work)
    for combo in combos(dims):
        weight = None
        for _, w, _, valid in combo:
            if w is not None:
                weight = w if weight is None else weight * w
            if valid is not None:
                weight = valid.astype(work) if weight is None else weight * valid
        v = np.take_along_axis(xf, flat_index(combo, sizes)[:, None, :], axis=2)
        y += v if weight is None else v * weight[:, None, :]
    return y.reshape((n, c) + out).astype(x.dtype, copy=False)
