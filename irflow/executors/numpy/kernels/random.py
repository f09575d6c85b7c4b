"""NumPy kernels of the random ops: pure functions of (shape, dtype, seed, parameters).

``numpy.random.default_rng(seed)`` (PCG64) draws in float32 for float32 and 16-bit outputs
(then rounded) and in float64 for float64 outputs.
"""
from __future__ import annotations

import numpy as np

from irflow.executors.numpy.kernels import kernel
from irflow.ir.dtypes import DType
from irflow.ops.random import random_type


def _draw_dtype(dtype) -> np.dtype:
    return np.dtype(np.float64) if dtype is DType.float64 else np.dtype(np.float32)


@kernel("random_uniform")
def random_uniform(shape, dtype=DType.float32, seed=0, low=0.0, high=1.0):
    random_type("random_uniform", shape=shape, dtype=dtype, seed=seed, low=low, high=high)
    draw = _draw_dtype(dtype)
    u = np.random.default_rng(seed).random(tuple(shape), dtype=draw)
    return (u * draw.type(high - low) + draw.type(low)).astype(dtype.numpy, copy=False)


@kernel("random_normal")
def random_normal(shape, dtype=DType.float32, seed=0, mean=0.0, stddev=1.0):
    random_type("random_normal", shape=shape, dtype=dtype, seed=seed, mean=mean, stddev=stddev)
    draw = _draw_dtype(dtype)
    z = np.random.default_rng(seed).standard_normal(tuple(shape), dtype=draw)
    return (z * draw.type(stddev) + draw.type(mean)).astype(dtype.numpy, copy=False)
