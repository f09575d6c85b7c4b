"""NumPy kernels of the elementwise ops."""
from __future__ import annotations

import numpy as np

from irflow.executors.numpy.kernels import KERNELS, kernel

KERNELS.update(
    neg=np.negative,
    exp=np.exp,
    add=np.add,
    sub=np.subtract,
    mul=np.multiply,
    greater=np.greater,
    where=np.where,
    zeros_like=np.zeros_like,
    ones_like=np.ones_like,
)


@kernel("relu")
def relu(x):
    return np.maximum(x, 0).astype(x.dtype, copy=False)


@kernel("div")
def div(x, y):
    # Integer division truncates toward zero as in C and ONNX, not floor as Python.
    if x.dtype.kind in "iu":
        return (np.trunc(np.true_divide(x, y))).astype(np.result_type(x, y))
    return np.true_divide(x, y)
