"""Hand-written NumPy references for the nn op tests: plain loops over output positions and
kernel taps, deliberately independent of the im2col/col2im kernels they check."""
from __future__ import annotations

import math

import numpy as np


def explicit_pads(padding, hw, khw, strides, dilations):
    """TF SAME written out again here (not imported from irflow), or the pads as given."""
    if padding != "same":
        return padding
    out = []
    for size, k, s, d in zip(hw, khw, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + d * (k - 1) + 1 - size, 0)
        out.append((total // 2, total - total // 2))
    return (out[0][0], out[1][0], out[0][1], out[1][1])


def pad_nchw(x, pads, value=0.0):
    t, l, b, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def conv2d(x, w, b=None, strides=(1, 1), padding=(0, 0, 0, 0), dilations=(1, 1), groups=1):
    pads = explicit_pads(padding, x.shape[2:], w.shape[2:], strides, dilations)
    xp = pad_nchw(x.astype(np.float64), pads)
    n, c, hp, wp = xp.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = strides, dilations
    ho = (hp - dh * (kh - 1) - 1) // sh + 1
    wo = (wp - dw * (kw - 1) - 1) // sw + 1
    og = o // groups
    out = np.zeros((n, o, ho, wo))
    for g in range(groups):
        wg = w[g * og:(g + 1) * og].astype(np.float64)
        for i in range(ho):
            for j in range(wo):
                patch = xp[:, g * cg:(g + 1) * cg, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
                out[:, g * og:(g + 1) * og, i, j] = np.tensordot(patch, wg, axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        out += b[:, None, None]
    return out.astype(x.dtype)


def conv_transpose2d(x, w, b=None, strides=(1, 1), padding=(0, 0, 0, 0), output_padding=(0, 0), dilations=(1, 1),
                     groups=1):
    """By definition: every input pixel scatters (weight * value) onto the output."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    (sh, sw), (dh, dw) = strides, dilations
    full = np.zeros((n, og * groups, (h - 1) * sh + dh * (kh - 1) + 1 + output_padding[0],
                     (wd - 1) * sw + dw * (kw - 1) + 1 + output_padding[1]))
    cg = c // groups
    for g in range(groups):
        for p in range(h):
            for q in range(wd):
                for i in range(kh):
                    for j in range(kw):
                        full[:, g * og:(g + 1) * og, p * sh + i * dh, q * sw + j * dw] += (
                            x[:, g * cg:(g + 1) * cg, p, q].astype(np.float64) @ w[g * cg:(g + 1) * cg, :, i, j])
    t, l, bt, r = padding
    out = full[:, :, t:full.shape[2] - bt, l:full.shape[3] - r]
    if b is not None:
        out = out + b[:, None, None]
    return out.astype(x.dtype)


def conv2d_weight_grad(x, g, kernel_size, strides=(1, 1), padding=(0, 0, 0, 0), dilations=(1, 1), groups=1):
    """dW[o, c, i, j] = sum over batch and output positions of g * the input under tap (i, j)."""
    kh, kw = kernel_size
    pads = explicit_pads(padding, x.shape[2:], kernel_size, strides, dilations)
    xp = pad_nchw(x.astype(np.float64), pads)
    n, c = x.shape[:2]
    o, ho, wo = g.shape[1], g.shape[2], g.shape[3]
    cg, og = c // groups, o // groups
    (sh, sw), (dh, dw) = strides, dilations
    dw_ = np.zeros((o, cg, kh, kw))
    for grp in range(groups):
        for i in range(kh):
            for j in range(kw):
                tap = xp[:, grp * cg:(grp + 1) * cg, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
                dw_[grp * og:(grp + 1) * og, :, i, j] = np.einsum("nopq,ncpq->oc", g[:, grp * og:(grp + 1) * og], tap)
    return dw_.astype(x.dtype)


def _pool_windows(x, kernel_size, strides, padding):
    """Yield (i, j, rows, cols) of each window, clipped to the real input."""
    pads = explicit_pads(padding, x.shape[2:], kernel_size, strides, (1, 1))
    h, w = x.shape[2:]
    (kh, kw), (sh, sw) = kernel_size, strides
    ho = (h + pads[0] + pads[2] - kh) // sh + 1
    wo = (w + pads[1] + pads[3] - kw) // sw + 1
    for i in range(ho):
        for j in range(wo):
            r0, c0 = i * sh - pads[0], j * sw - pads[1]
            yield i, j, slice(max(r0, 0), min(r0 + kh, h)), slice(max(c0, 0), min(c0 + kw, w)), (ho, wo)


def max_pool2d(x, kernel_size, strides, padding=(0, 0, 0, 0)):
    out = None
    for i, j, rows, cols, shape in _pool_windows(x, kernel_size, strides, padding):
        out = np.zeros(x.shape[:2] + shape, x.dtype) if out is None else out
        out[:, :, i, j] = x[:, :, rows, cols].max(axis=(2, 3))
    return out


def avg_pool2d(x, kernel_size, strides, padding=(0, 0, 0, 0)):
    out = None
    for i, j, rows, cols, shape in _pool_windows(x, kernel_size, strides, padding):
        out = np.zeros(x.shape[:2] + shape, x.dtype) if out is None else out
        out[:, :, i, j] = x[:, :, rows, cols].astype(np.float64).mean(axis=(2, 3))
    return out


def max_pool2d_grad(x, g, kernel_size, strides, padding=(0, 0, 0, 0)):
    """Each window sends its gradient to its first maximum (row-major order)."""
    dx = np.zeros(x.shape, np.float64)
    for i, j, rows, cols, _ in _pool_windows(x, kernel_size, strides, padding):
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                win = x[n, c, rows, cols]
                r, q = np.unravel_index(np.argmax(win), win.shape)
                dx[n, c, rows.start + r, cols.start + q] += g[n, c, i, j]
    return dx.astype(x.dtype)


def max_pool2d_pick(x, y, kernel_size, strides, padding=(0, 0, 0, 0)):
    out = None
    for i, j, rows, cols, shape in _pool_windows(x, kernel_size, strides, padding):
        out = np.zeros(x.shape[:2] + shape, y.dtype) if out is None else out
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                win = x[n, c, rows, cols]
                r, q = np.unravel_index(np.argmax(win), win.shape)
                out[n, c, i, j] = y[n, c, rows.start + r, cols.start + q]
    return out


def avg_pool2d_grad(g, x, kernel_size, strides, padding=(0, 0, 0, 0)):
    dx = np.zeros(x.shape, np.float64)
    for i, j, rows, cols, _ in _pool_windows(x, kernel_size, strides, padding):
        count = (rows.stop - rows.start) * (cols.stop - cols.start)
        dx[:, :, rows, cols] += g[:, :, i, j][:, :, None, None] / count
    return dx.astype(g.dtype)
