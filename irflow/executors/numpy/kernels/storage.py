"""Casts to the storage-only dtypes (irflow/ir/dtypes.py), as ONNX Cast specifies them.

ml_dtypes' ``astype`` rounds to nearest even but does not saturate, and knows nothing of
ONNX's rounding modes for float8_e8m0fnu, so those two are written here:

- float8 e4m3fn / e4m3fnuz / e5m2 / e5m2fnuz with ``saturate`` (ONNX's default): a value beyond
  the largest finite one, an infinity included, becomes that value with its sign; NaN stays
  NaN. Without it ``astype`` decides: inf for e5m2, NaN for the types that have no inf.
- float8_e8m0fnu (2**(code - 127), code 0..254; 0xFF is NaN): x = m * 2**e with m in [1, 2);
  ``round_mode`` "down" gives e, "up" e + 1 when m > 1, "nearest" e + 1 when m >= 1.5 (the
  guard bit; onnx's rounding never sees a tie go down). NaN stays NaN. With ``saturate``
  (the default) x above 2**127 (inf too) gives 2**127, x below 2**-127 (zero and negatives
  too) gives 2**-127; without it all of those give NaN. That is the spec's table and
  onnxruntime's behaviour; onnx's reference evaluator differs on inf (NaN even when
  saturating), negatives (it drops the sign) and values below 2**-127 (it gives 2**-126).
- float4_e2m1fn has no inf or NaN code: ``astype`` saturates on its own (``saturate`` changes
  nothing). int4 / uint4 / int2 / uint2: ``astype`` (out-of-range values are undefined in ONNX).
"""
from __future__ import annotations

import numpy as np

from irflow.ir.dtypes import FLOAT8_DTYPES, DType, is_float_numpy


def _wide(x: np.ndarray) -> np.ndarray:
    """x in a float dtype that holds its values: NumPy floats and bfloat16 as they are (the
    float8 limits are exact in each), ints in float64, storage dtypes in float32 (exact)."""
    if is_float_numpy(x.dtype):
        return x
    if x.dtype.kind in "iub":
        return x.astype(np.float64)
    return x.astype(np.float32)


def to_storage(x: np.ndarray, to: DType, saturate: bool, round_mode: str) -> np.ndarray:
    """``x`` cast to the storage-only dtype ``to``."""
    dt = to.numpy
    if to in FLOAT8_DTYPES and saturate:
        import ml_dtypes

        info = ml_dtypes.finfo(dt)
        w = _wide(x)
        lo, hi = w.dtype.type(float(info.min)), w.dtype.type(float(info.max))
        return np.clip(w, lo, hi).astype(dt)  # NaN passes through clip
    if to is DType.float8_e8m0fnu:
        return _to_e8m0(x, saturate, round_mode).view(dt)
    return x.astype(dt)


def _to_e8m0(x: np.ndarray, saturate: bool, round_mode: str) -> np.ndarray:
    w = np.asarray(x).astype(np.float64)  # exact for every dtype irflow has
    with np.errstate(invalid="ignore"):
        frac, p = np.frexp(np.where(np.isfinite(w) & (w > 0), w, 1.0))  # w = frac * 2**p, frac in [0.5, 1)
    e = p.astype(np.int64) - 1  # w = (2 * frac) * 2**e
    if round_mode == "up":
        e += frac > 0.5
    elif round_mode == "nearest":
        e += frac >= 0.75
    code = e + 127
    nan = np.isnan(w)
    too_small = ~nan & (w < 2.0**-127)  # zero and negatives included; the limits apply to x, not
    too_big = ~nan & (w > 2.0**127)      # to the rounded value (onnxruntime does the same)
    if saturate:
        code = np.where(too_small, 0, np.where(too_big, 254, code))
        bad = nan
    else:
        bad = nan | too_small | too_big
    return np.where(bad, 0xFF, code).astype(np.uint8)
