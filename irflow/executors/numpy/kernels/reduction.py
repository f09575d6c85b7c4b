"""NumPy kernels of the reductions."""
from __future__ import annotations

import numpy as np

from irflow.executors.numpy.kernels import kernel


def _axes(axes):
    return None if axes is None else tuple(axes)


@kernel("reduce_sum")
def reduce_sum(x, axes=None, keepdims=False):
    return np.asarray(np.sum(x, axis=_axes(axes), keepdims=keepdims, dtype=x.dtype))
