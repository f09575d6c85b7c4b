"""NumPy kernels of the convolution and pooling ops (NCHW).

conv2d is im2col + one batched GEMM: the im2col buffer (N, C, kh, kw, Ho, Wo) is filled with
kh * kw strided slice copies (measured faster than a sliding_window_view reshape, which
copies with a poor access order), then ``W (G, O/G, C/G*kh*kw) @ cols (N, G, C/G*kh*kw,
Ho*Wo)`` lands directly in NCHW order. conv_transpose2d is the adjoint: a GEMM then col2im
(kh * kw strided adds). Pools loop over the kh * kw window offsets with strided views.
16-bit floats are computed in float32 and rounded back once.

Temporaries are fresh arrays. (Per-thread scratch buffers were tried: with the interpreter's
buffer pool, which removed the page faults of a CNN training step, fresh temporaries measured
20-40 us faster per step, being the memory glibc just freed and still in cache.) Kernels
marked ``out=True`` write their result into a buffer the interpreter offers.
"""
from __future__ import annotations

import numpy as np

from irflow.executors.numpy.kernels import kernel, usable_out
from irflow.ir.dtypes import is_float_numpy
from irflow.ops.conv import check_conv_attrs, check_output_padding, check_pool_pads, pool_window_counts, resolve_pads



def _require(ok: bool, what: str) -> None:
    # A ValueError makes the eager path re-run the op's type rule, which reports it properly.
    if not ok:
        raise ValueError(what)


def _compute_dtype(*arrays: np.ndarray) -> np.dtype:
    dtype = arrays[0].dtype
    _require(is_float_numpy(dtype), "float input expected")
    return np.dtype(np.float32) if dtype.itemsize == 2 else dtype


def _pad(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    t, l, b, r = pads
    if not (t or l or b or r):
        return x
    n, c, h, w = x.shape
    xp = np.full((n, c, h + t + b, w + l + r), value, dtype=x.dtype)
    xp[:, :, t:t + h, l:l + w] = x
    return xp


def _out_size(size, k, s, d, before, after) -> int:
    return (size + before + after - d * (k - 1) - 1) // s + 1


def _geometry(x, khw, strides, padding, dilations):
    pads = resolve_pads(padding, x.shape[2:], khw, strides, dilations)
    ho = _out_size(x.shape[2], khw[0], strides[0], dilations[0], pads[0], pads[2])
    wo = _out_size(x.shape[3], khw[1], strides[1], dilations[1], pads[1], pads[3])
    _require(ho > 0 and wo > 0, "empty output")
    return pads, ho, wo


def _window(xp, i, j, ho, wo, strides, dilations):
    """The (N, C, Ho, Wo) strided view of xp at kernel offset (i, j)."""
    (sh, sw), (dh, dw) = strides, dilations
    return xp[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]


def im2col(x: np.ndarray, khw, strides, pads, dilations, ho, wo) -> np.ndarray:
    """Columns (N, C, kh, kw, Ho, Wo) of x: cols[n, c, i, j] is the input under kernel tap (i, j)."""
    n, c = x.shape[:2]
    kh, kw = khw
    if khw == (1, 1) and strides == (1, 1) and not any(pads):
        return x.reshape(n, c, 1, 1, ho, wo)  # a 1x1 convolution needs no copy
    xp = _pad(x, pads)
    cols = np.empty((n, c, kh, kw, ho, wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = _window(xp, i, j, ho, wo, strides, dilations)
    return cols


def col2im(cols: np.ndarray, out_hw, khw, strides, pads, dilations, in_hw) -> np.ndarray:
    """The adjoint of im2col: add cols (N, C, kh, kw, H, W) back onto an (N, C, *out_hw) image."""
    n, c = cols.shape[:2]
    t, l = pads[0], pads[1]
    (h, w), (ho, wo) = in_hw, out_hw
    full_h = max(t + ho, (h - 1) * strides[0] + dilations[0] * (khw[0] - 1) + 1)
    full_w = max(l + wo, (w - 1) * strides[1] + dilations[1] * (khw[1] - 1) + 1)
    buf = np.zeros((n, c, full_h, full_w), dtype=cols.dtype)
    for i in range(khw[0]):
        for j in range(khw[1]):
            _window(buf, i, j, h, w, strides, dilations)[...] += cols[:, :, i, j]
    if (t, l, full_h, full_w) == (0, 0, ho, wo):
        return buf
    return buf[:, :, t:t + ho, l:l + wo].copy()


def _add_bias(out: np.ndarray, b) -> np.ndarray:
    if b is not None:
        _require(b.shape == out.shape[1:2], "bias shape mismatch")
        out += b.astype(out.dtype, copy=False)[:, None, None]
    return out


@kernel("conv2d", out=True)
def conv2d(x, w, b=None, strides=(1, 1), padding=(0, 0, 0, 0), dilations=(1, 1), groups=1, out=None):
    check_conv_attrs("conv2d", padding=padding, strides=strides, dilations=dilations)
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    _require(c == cg * groups and o % groups == 0, "channel mismatch")
    pads, ho, wo = _geometry(x, (kh, kw), strides, padding, dilations)
    ct = _compute_dtype(x)
    cols = im2col(x.astype(ct, copy=False), (kh, kw), strides, pads, dilations, ho, wo)
    cols = cols.reshape(n, groups, cg * kh * kw, ho * wo)
    wm = w.astype(ct, copy=False).reshape(groups, o // groups, cg * kh * kw)
    if usable_out(out, (n, o, ho, wo), x.dtype) and ct == x.dtype:
        np.matmul(wm, cols, out=out.reshape(n, groups, o // groups, ho * wo))
    else:
        out = np.matmul(wm, cols).reshape(n, o, ho, wo)
    return _add_bias(out, b).astype(x.dtype, copy=False)


@kernel("conv2d_weight_grad")
def conv2d_weight_grad(x, g, kernel_size, strides=(1, 1), padding=(0, 0, 0, 0), dilations=(1, 1), groups=1):
    check_conv_attrs("conv2d_weight_grad", padding=padding, kernel_size=kernel_size, strides=strides,
                     dilations=dilations)
    n, c, _, _ = x.shape
    o = g.shape[1]
    kh, kw = kernel_size
    _require(c % groups == 0 and o % groups == 0, "channel mismatch")
    pads, ho, wo = _geometry(x, (kh, kw), strides, padding, dilations)
    _require(g.shape[2:] == (ho, wo), "gradient shape mismatch")
    dtype_in = x.dtype
    ct = _compute_dtype(x)
    x, g = x.astype(ct, copy=False), g.astype(ct, copy=False)
    if tuple(strides) == (1, 1) and groups == 1 and c >= 8:
        return _weight_grad_by_taps(x, g, (kh, kw), pads, dilations).astype(dtype_in, copy=False)
    cols = im2col(x, (kh, kw), strides, pads, dilations, ho, wo)
    cols = cols.reshape(n, groups, (c // groups) * kh * kw, ho * wo)
    gm = g.reshape(n, groups, o // groups, ho * wo)
    # cols @ g^T (then transposed), not g @ cols^T: OpenBLAS runs this operand order
    # 1.4x faster for these shapes (long shared Ho*Wo axis, few output channels).
    dw = np.matmul(cols, gm.swapaxes(-1, -2)).sum(axis=0).swapaxes(-1, -2)  # (G, O/G, C/G*kh*kw)
    return dw.reshape(o, c // groups, kh, kw).astype(dtype_in, copy=False)


def _weight_grad_by_taps(x, g, khw, pads, dilations):
    """conv2d_weight_grad for stride 1 without im2col: one batched GEMM per kernel tap on
    views of the padded input.

    In the padded input flattened per channel (rows of width ``wp``), the inputs under tap
    (i, j) for all output positions are the contiguous run starting at i*dh*wp + j*dw, when the
    output is laid out with the same row width: so ``dw[:, :, i, j] = sum_n g[n] @ run[n]^T``
    with no copy of x. The wp - Wo extra columns per output row see wrapped-around input; g is
    padded with zeros there, which cancels them. 1.3-2x faster than im2col + GEMM from 16
    channels up (64 channels, 8x8: 1390 against 2853 us); for very few input channels (the
    first layer of an image model) the per-tap GEMMs are too thin and im2col wins.
    """
    n, c, h, w = x.shape
    o, ho, wo = g.shape[1:]
    (kh, kw), (dh, dw_) = khw, dilations
    t, l, b, r = pads
    hp, wp = h + t + b, w + l + r
    xp = np.zeros((n, c, hp + 1, wp), x.dtype)  # + 1 row: the last taps' runs end past hp
    xp[:, :, t:t + h, l:l + w] = x
    flat = xp.reshape(n, c, (hp + 1) * wp)
    run = ho * wp
    gp = np.zeros((n, o, ho, wp), g.dtype)
    gp[..., :wo] = g
    gm = gp.reshape(n, o, run)
    dw = np.empty((o, c, kh, kw), x.dtype)
    for i in range(kh):
        for j in range(kw):
            start = i * dh * wp + j * dw_
            dw[:, :, i, j] = np.matmul(gm, flat[:, :, start:start + run].swapaxes(-1, -2)).sum(axis=0)
    return dw


@kernel("conv_transpose2d", out=True)
def conv_transpose2d(x, w, b=None, strides=(1, 1), padding=(0, 0, 0, 0), output_padding=(0, 0), dilations=(1, 1),
                     groups=1, out=None):
    check_conv_attrs("conv_transpose2d", padding=padding, allow_same=False, strides=strides, dilations=dilations,
                     output_padding=output_padding)
    check_output_padding("conv_transpose2d", output_padding, strides)
    n, c, h, wd = x.shape
    wc, og, kh, kw = w.shape
    _require(c == wc and c % groups == 0, "channel mismatch")
    t, l, bt, r = padding
    ho = (h - 1) * strides[0] - t - bt + dilations[0] * (kh - 1) + 1 + output_padding[0]
    wo = (wd - 1) * strides[1] - l - r + dilations[1] * (kw - 1) + 1 + output_padding[1]
    _require(ho > 0 and wo > 0, "empty output")
    ct = _compute_dtype(x)
    cg = c // groups
    if tuple(strides) == (1, 1) and tuple(output_padding) == (0, 0):
        if not (usable_out(out, (n, og * groups, ho, wo), x.dtype) and ct == x.dtype):
            out = np.empty((n, og * groups, ho, wo), dtype=ct)
        _conv_transpose_stride1(x.astype(ct, copy=False), w.astype(ct, copy=False), groups, padding, dilations, out)
    else:
        wm = w.astype(ct, copy=False).reshape(groups, cg, og * kh * kw).transpose(0, 2, 1)
        cols = np.matmul(wm, x.astype(ct, copy=False).reshape(n, groups, cg, h * wd))
        cols = cols.reshape(n, groups * og, kh, kw, h, wd)
        out = col2im(cols, (ho, wo), (kh, kw), strides, padding, dilations, (h, wd))
    return _add_bias(out, b).astype(x.dtype, copy=False)


def _conv_transpose_stride1(x, w, groups, pads, dilations, out):
    """conv_transpose2d for stride 1 (the input gradient of a stride-1 conv2d), with col2im on
    rows padded to the full output width ``wp``: in a flat (rows * wp) image, kernel tap (i, j)
    adds the GEMM result at the constant offset i*dh*wp + j*dw, so each tap is one add of
    contiguous rows instead of a 2-D strided window (3x faster). x gets wp - w zero columns so
    the padding columns of the GEMM result are zero and adding them there changes nothing.
    The GEMM's rows are ordered tap-major, so each tap's block is contiguous for its add (10%
    faster than channel-major). Writes the (N, O, Ho, Wo) result into ``out``.
    """
    n, c, h, wd = x.shape
    o, ho, wo = out.shape[1:]
    cg, og, kh, kw = c // groups, o // groups, w.shape[2], w.shape[3]
    dh, dw = dilations
    wp, full_h = wd + dw * (kw - 1), h + dh * (kh - 1)
    run = h * wp
    # (G, cg, og, kh, kw) -> (G, kh*kw*og, cg): row (tap, out channel), column in channel
    wm = w.reshape(groups, cg, og, kh, kw).transpose(0, 3, 4, 2, 1).reshape(groups, kh * kw * og, cg)
    xw = np.zeros((n, c, h, wp), x.dtype)  # one zero fill beats zeroing the extra columns of every row
    xw[..., :wd] = x
    cols = np.matmul(wm, xw.reshape(n, groups, cg, run)).reshape(n, groups, kh * kw, og, run)
    buf = np.zeros((n, groups, og, (full_h + 1) * wp), x.dtype)  # + 1 row: the zero columns' spill
    for i in range(kh):
        for j in range(kw):
            start = i * dh * wp + j * dw
            buf[..., start:start + run] += cols[:, :, i * kw + j]
    t, l = pads[0], pads[1]
    out[...] = buf[..., :full_h * wp].reshape(n, o, full_h, wp)[:, :, t:t + ho, l:l + wo]
    return out


# -- pooling ----------------------------------------------------------------------------------

def _pool_geometry(x, kernel_size, strides, padding, op):
    _compute_dtype(x)  # float check
    check_conv_attrs(op, padding=padding, kernel_size=kernel_size, strides=strides)
    check_pool_pads(op, kernel_size, padding)
    return _geometry(x, kernel_size, strides, padding, (1, 1))


def _window_argmax(x, kernel_size, strides, padding, op):
    """Per output position, the index (i * kw + j) of the first maximum in its window."""
    pads, ho, wo = _pool_geometry(x, kernel_size, strides, padding, op)
    xp = _pad(x, pads, -np.inf)
    best = _window(xp, 0, 0, ho, wo, strides, (1, 1)).copy()
    taps = kernel_size[0] * kernel_size[1]
    idx = np.zeros(best.shape, dtype=np.int8 if taps <= 127 else np.int32)
    for k in range(1, taps):
        v = _window(xp, k // kernel_size[1], k % kernel_size[1], ho, wo, strides, (1, 1))
        better = v > best  # strict: ties keep the first, as PyTorch and onnxruntime
        np.maximum(best, v, out=best)
        idx += better.view(np.int8) * (k - idx)  # idx = k where better; arithmetic beats masked copies 3x
    return idx, pads, ho, wo


@kernel("max_pool2d", out=True)
def max_pool2d(x, kernel_size, strides, padding=(0, 0, 0, 0), out=None):
    pads, ho, wo = _pool_geometry(x, kernel_size, strides, padding, "max_pool2d")
    xp = _pad(x, pads, -np.inf)
    if not usable_out(out, x.shape[:2] + (ho, wo), x.dtype):
        out = np.empty(x.shape[:2] + (ho, wo), dtype=x.dtype)
    out[...] = _window(xp, 0, 0, ho, wo, strides, (1, 1))
    for k in range(1, kernel_size[0] * kernel_size[1]):
        np.maximum(out, _window(xp, k // kernel_size[1], k % kernel_size[1], ho, wo, strides, (1, 1)), out=out)
    return out


def _max_pool_2x2_grad(x, g, out):
    """max_pool2d_grad for 2x2 windows that tile x (stride 2, no padding) in 9 passes
    instead of the general loop's 20, with the general path's exact choice: scan the taps in
    row-major order and move to a tap only if it is strictly greater than the running maximum
    (so ties keep the first, and a NaN as running maximum stops the scan)."""
    n, c, h, w = x.shape
    x6, d6 = x.reshape(n, c, h // 2, 2, w // 2, 2), out.reshape(n, c, h // 2, 2, w // 2, 2)
    t_l, t_r, b_l, b_r = x6[:, :, :, 0, :, 0], x6[:, :, :, 0, :, 1], x6[:, :, :, 1, :, 0], x6[:, :, :, 1, :, 1]
    to_t_r = np.greater(t_r, t_l)
    best = np.maximum(t_l, t_r)
    to_b_l = np.greater(b_l, best)
    np.maximum(best, b_l, out=best)
    to_b_r = np.greater(b_r, best)
    stay_top = ~(to_b_l | to_b_r)
    np.multiply(g, stay_top & ~to_t_r, out=d6[:, :, :, 0, :, 0])
    np.multiply(g, stay_top & to_t_r, out=d6[:, :, :, 0, :, 1])
    np.multiply(g, to_b_l & ~to_b_r, out=d6[:, :, :, 1, :, 0])
    np.multiply(g, to_b_r, out=d6[:, :, :, 1, :, 1])
    return out


@kernel("max_pool2d_grad", out=True)
def max_pool2d_grad(x, g, kernel_size, strides, padding=(0, 0, 0, 0), out=None):
    if (tuple(kernel_size) == (2, 2) and tuple(strides) == (2, 2) and not any(padding) and x.ndim == 4
            and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0 and g.shape == x.shape[:2] + (x.shape[2] // 2, x.shape[3] // 2)
            and x.dtype == g.dtype and x.dtype.kind == "f"):
        return _max_pool_2x2_grad(x, g, out if usable_out(out, x.shape, x.dtype) else np.empty(x.shape, dtype=x.dtype))
    idx, pads, ho, wo = _window_argmax(x, kernel_size, strides, padding, "max_pool2d_grad")
    _require(g.shape == idx.shape, "gradient shape mismatch")
    n, c, h, w = x.shape
    (kh, kw), zero = kernel_size, np.zeros((), dtype=x.dtype)
    if tuple(strides) == (kh, kw) and not any(pads) and (h, w) == (ho * kh, wo * kw):
        # Windows tile x exactly (the usual 2x2/2 pool): fill an (N, C, Ho, kh, Wo, kw) array
        # tap by tap with g * (idx == k), no zero-fill and no sum (4x faster than np.where; a
        # NaN/Inf in g then also reaches the window's other positions, as NaN).
        if not usable_out(out, x.shape, x.dtype):
            out = np.empty(x.shape, dtype=x.dtype)
        dx = out.reshape(n, c, ho, kh, wo, kw)
        for k in range(kh * kw):
            np.multiply(g, idx == k, out=dx[:, :, :, k // kw, :, k % kw])
        return out
    dxp = np.zeros((n, c, h + pads[0] + pads[2], w + pads[1] + pads[3]), dtype=x.dtype)
    overlapping = strides[0] < kh or strides[1] < kw
    for k in range(kh * kw):
        # For one offset k the windows touch distinct positions, so += never collides.
        view = _window(dxp, k // kw, k % kw, ho, wo, strides, (1, 1))
        if overlapping:
            view += np.where(idx == k, g, zero)
        else:  # each position belongs to at most one window: no sum needed
            np.copyto(view, g, where=idx == k)
    return np.ascontiguousarray(dxp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + w])


@kernel("max_pool2d_pick")
def max_pool2d_pick(x, y, kernel_size, strides, padding=(0, 0, 0, 0)):
    _require(x.shape == y.shape, "shape mismatch")
    idx, pads, ho, wo = _window_argmax(x, kernel_size, strides, padding, "max_pool2d_pick")
    yp = _pad(y, pads)
    out = np.empty(idx.shape, dtype=y.dtype)
    for k in range(kernel_size[0] * kernel_size[1]):
        np.copyto(out, _window(yp, k // kernel_size[1], k % kernel_size[1], ho, wo, strides, (1, 1)), where=idx == k)
    return out


@kernel("avg_pool2d")
def avg_pool2d(x, kernel_size, strides, padding=(0, 0, 0, 0)):
    pads, ho, wo = _pool_geometry(x, kernel_size, strides, padding, "avg_pool2d")
    xp = _pad(x, pads)
    total = _window(xp, 0, 0, ho, wo, strides, (1, 1)).copy()
    for k in range(1, kernel_size[0] * kernel_size[1]):
        total += _window(xp, k // kernel_size[1], k % kernel_size[1], ho, wo, strides, (1, 1))
    total /= pool_window_counts(x.shape[2:], kernel_size, strides, pads, (ho, wo), x.dtype)
    return total


@kernel("avg_pool2d_grad")
def avg_pool2d_grad(g, x, kernel_size, strides, padding=(0, 0, 0, 0)):
    pads, ho, wo = _pool_geometry(x, kernel_size, strides, padding, "avg_pool2d_grad")
    _require(g.shape == x.shape[:2] + (ho, wo), "gradient shape mismatch")
    share = g / pool_window_counts(x.shape[2:], kernel_size, strides, pads, (ho, wo), g.dtype)
    n, c, h, w = x.shape
    dxp = np.zeros((n, c, h + pads[0] + pads[2], w + pads[1] + pads[3]), dtype=g.dtype)
    for k in range(kernel_size[0] * kernel_size[1]):
        _window(dxp, k // kernel_size[1], k % kernel_size[1], ho, wo, strides, (1, 1))[...] += share
    return np.ascontiguousarray(dxp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + w])
