"""Kernels of the segment reductions (irflow/ops/segment.py)."""
from __future__ import annotations

import numpy as np

from irflow.errors import IrflowError
from irflow.executors.numpy.kernels import kernel


def _extreme(dtype: np.dtype, lowest: bool):
    info = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype)
    return info.min if lowest else info.max


def _segments(op: str, ufunc, fill, data, segment_ids, n, num_segments):
    count = int(num_segments if num_segments is not None else n)
    if segment_ids.size and (segment_ids.min() < 0 or segment_ids.max() >= count):
        raise IrflowError(f"{op}: segment ids must lie in [0, {count}), got ids from {segment_ids.min()} to {segment_ids.max()}")
    out = np.full((count,) + data.shape[1:], fill, dtype=data.dtype)
    ufunc.at(out, segment_ids, data)
    return out


@kernel("segment_sum")
def segment_sum(data, segment_ids, n=None, num_segments=None):
    return _segments("segment_sum", np.add, 0, data, segment_ids, n, num_segments)


@kernel("segment_max")
def segment_max(data, segment_ids, n=None, num_segments=None):
    return _segments("segment_max", np.maximum, _extreme(data.dtype, True), data, segment_ids, n, num_segments)


@kernel("segment_min")
def segment_min(data, segment_ids, n=None, num_segments=None):
    return _segments("segment_min", np.minimum, _extreme(data.dtype, False), data, segment_ids, n, num_segments)
