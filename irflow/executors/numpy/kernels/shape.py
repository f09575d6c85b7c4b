"""NumPy kernels of the shape ops."""
from __future__ import annotations

import numpy as np

from irflow.executors.numpy.kernels import kernel


@kernel("identity")
def identity(x):
    return x


@kernel("expand_dims")
def expand_dims(x, axes):
    return np.expand_dims(x, tuple(axes))


@kernel("broadcast_like")
def broadcast_like(x, like):
    return np.broadcast_to(x, like.shape)


@kernel("transpose")
def transpose(x, perm=None):
    return np.transpose(x, perm)


@kernel("squeeze")
def squeeze(x, axes=None):
    return np.squeeze(x, axis=None if axes is None else tuple(axes))
