"""Where ``grid_sample`` reads its input: the taps (index, weight, weight's derivative, valid)
along each spatial dim, written once for two array namespaces.

The NumPy kernel calls ``grid_taps(NP, ...)`` on arrays; the VJP calls ``grid_taps(IR, ...)`` on
symbolic tensors, so the gradient is IR built from the very arithmetic the kernel runs (one
formula, no second copy to drift). Both namespaces use Python operators (``+ * < &``) and the
few functions below. The formulas follow the ONNX reference (``onnx/reference/ops/
op_grid_sample.py``, itself PyTorch's ``GridSampler.h``): coordinates are clamped (border) or
reflected (reflection) only when outside [lo, hi]; each tap's index is then padded again.
"""
from __future__ import annotations

import numpy as np

from irflow.ops.dispatch import bind

CUBIC_A = -0.75  # PyTorch's and ONNX's bicubic coefficient


class NP:
    """NumPy arrays."""

    floor = staticmethod(np.floor)
    rint = staticmethod(np.rint)

    @staticmethod
    def where(c, a, b):
        return np.where(c, a, b)

    @staticmethod
    def clip(x, lo, hi):
        return np.clip(x, lo, hi)

    @staticmethod
    def to_int(x):
        return x.astype(np.int64)  # truncation toward zero, as ONNX Cast

    @staticmethod
    def to_float(b, like):
        return np.asarray(b, dtype=like.dtype)

    @staticmethod
    def component(grid, k):
        return grid[..., k]


class IR:
    """Symbolic tensors (``bind``)."""

    floor = staticmethod(lambda x: bind("floor", x))
    rint = staticmethod(lambda x: bind("round", x))  # halves to even, as np.rint

    @staticmethod
    def where(c, a, b):
        return bind("where", c, a, b)

    @staticmethod
    def clip(x, lo, hi):
        return bind("clip", x, min=float(lo), max=float(hi))

    @staticmethod
    def to_int(x):
        return bind("cast", x, dtype="int64")

    @staticmethod
    def to_float(b, like):
        return bind("cast", b, dtype=like.type.dtype)

    @staticmethod
    def component(grid, k):
        r = grid.type.rank
        part = bind("slice", grid, starts=(k,), ends=(k + 1,), axes=(r - 1,), steps=None)
        return bind("squeeze", part, axes=(r - 1,))


def _reflect(F, u, lo: float, hi: float):
    """u reflected into [lo, hi] by its borders (as many times as it takes)."""
    rng = hi - lo
    if rng <= 0:
        return u * 0.0 + lo
    t = u - lo
    t = t - F.floor(t / (2 * rng)) * (2 * rng)  # in [0, 2 rng)
    return F.where(t <= rng, t + lo, (2 * rng - t) + lo)


def _reflect_sign(F, u, lo: float, hi: float):
    """d reflect(u) / du: +1 on the rising stretches, -1 on the mirrored ones."""
    rng = hi - lo
    if rng <= 0:
        return u * 0.0
    t = u - lo
    t = t - F.floor(t / (2 * rng)) * (2 * rng)
    return F.where(t <= rng, u * 0.0 + 1.0, u * 0.0 - 1.0)


def _cubic(t):
    """Keys' cubic weights of the taps at -1, 0, 1, 2 for a fraction t, and their d/dt."""
    a = CUBIC_A

    def near(s):  # |d| <= 1
        return ((a + 2) * s - (a + 3)) * s * s + 1

    def near_d(s):
        return (3 * (a + 2)) * s * s - (2 * (a + 3)) * s

    def far(s):  # 1 < |d| < 2
        return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a

    def far_d(s):
        return (3 * a) * s * s - (10 * a) * s + 8 * a

    w = [far(t + 1), near(t), near(1 - t), far(2 - t)]
    dw = [far_d(t + 1), near_d(t), -near_d(1 - t), -far_d(2 - t)]
    return w, dw


def grid_coords(F, grid, sizes, mode: str, padding_mode: str, align_corners: int):
    """Per spatial dim j (D1 first): the source coordinate u_j and du_j / dgrid (the grid's last
    axis lists the dims in reverse, x = width first)."""
    r = len(sizes)
    out = []
    for j, d in enumerate(sizes):
        g = F.component(grid, r - 1 - j)
        if align_corners:
            u, scale, lo, hi = (g + 1) / 2 * (d - 1), (d - 1) / 2, 0.0, d - 1.0
        else:
            u, scale, lo, hi = ((g + 1) * d - 1) / 2, d / 2, -0.5, d - 0.5
        if mode == "nearest":
            u = F.rint(u)
        outside = (u < lo) | (u > hi)
        slope = u * 0.0 + scale
        if padding_mode == "border":
            slope = F.where(outside, u * 0.0, slope)
            u = F.where(outside, F.clip(u, 0, d - 1), u)
        elif padding_mode == "reflection":
            slope = F.where(outside, slope * _reflect_sign(F, u, lo, hi), slope)
            u = F.where(outside, _reflect(F, u, lo, hi), u)
        out.append((u, slope))
    return out


def _pad_index(F, i, d: int, padding_mode: str, align_corners: int):
    """(index inside [0, d), valid) for an integer tap index ``i`` (as floats)."""
    if padding_mode == "zeros":
        return F.to_int(F.clip(i, 0, d - 1)), (i >= 0) & (i <= d - 1)
    if padding_mode == "border":
        return F.to_int(F.clip(i, 0, d - 1)), None
    lo, hi = (0.0, d - 1.0) if align_corners else (-0.5, d - 0.5)
    inside = (i >= lo) & (i <= hi)
    return F.to_int(F.clip(F.where(inside, i, _reflect(F, i, lo, hi)), 0, d - 1)), None


def grid_taps(F, grid, sizes, mode: str, padding_mode: str, align_corners: int):
    """Per spatial dim: (list of taps (index, weight, dweight/du, valid or None), du/dgrid)."""
    dims = []
    for (u, slope), d in zip(grid_coords(F, grid, sizes, mode, padding_mode, align_corners), sizes):
        if mode == "nearest":
            idx, valid = _pad_index(F, F.to_float(F.to_int(u), u), d, padding_mode, align_corners)
            taps = [(idx, None, None, valid)]  # weight 1, no derivative
        else:
            base = F.floor(u)
            t = u - base
            if mode == "linear":
                offsets, w, dw = (0, 1), [1 - t, t], [u * 0.0 - 1.0, u * 0.0 + 1.0]
            else:
                offsets, (w, dw) = (-1, 0, 1, 2), _cubic(t)
            taps = []
            for o, wk, dk in zip(offsets, w, dw):
                idx, valid = _pad_index(F, base + o, d, padding_mode, align_corners)
                taps.append((idx, wk, dk, valid))
        dims.append((taps, slope))
    return dims


def roi_axis_taps(start, bin_size, pooled: int, grid: int, size: int, dtype):
    """One ROI along one axis (NumPy): the sample positions' (low, high, w_low, w_high, valid),
    each (pooled, grid), as ONNX RoiAlign's reference (``pre_calc_for_bilinear_interpolate``):
    a sample outside [-1, size] reads nothing; one in [-1, 0) reads pixel 0; one at or past the
    last pixel reads the last pixel."""
    p = np.arange(pooled, dtype=dtype)[:, None]
    i = np.arange(grid, dtype=dtype)[None, :]
    pos = start + p * bin_size + (i + dtype(0.5)) * bin_size / dtype(grid)
    valid = (pos >= -1.0) & (pos <= size)
    pos = np.maximum(pos, 0)
    low = pos.astype(np.int64)
    last = low >= size - 1
    low = np.where(last, size - 1, low)
    high = np.where(last, size - 1, low + 1)
    pos = np.where(last, low.astype(dtype), pos)
    frac = pos - low
    return low, high, (1 - frac) * valid, frac * valid, valid
