"""NumPy kernel of ``resize``: per resized axis, a weighted sum of 1, 2 or 4 gathers
(``irflow/ops/resize.py`` computes the taps). 16-bit floats are computed in float32."""
from __future__ import annotations

import numpy as np

from irflow.executors.numpy.kernels import kernel
from irflow.ops.resize import axis_taps


@kernel("resize")
def resize(x, **attrs):
    dtype = x.dtype
    y = x.astype(np.float32) if dtype.itemsize == 2 else x
    r = x.ndim
    for j, a in enumerate(attrs["axes"]):
        taps, outside = axis_taps(attrs, j, x.shape[a])
        bshape = (-1,) + (1,) * (r - a - 1)
        total = None
        for idx, w in taps:
            picked = np.take(y, idx, axis=a)
            if not np.all(w == 1):
                picked = picked * w.astype(y.dtype).reshape(bshape)
            total = picked if total is None else total + picked
        if outside is not None:
            total = np.where(outside.reshape(bshape), np.asarray(attrs["extrapolation_value"], y.dtype), total)
        y = total
    return np.ascontiguousarray(y, dtype=dtype) if y is not x else x.copy()
