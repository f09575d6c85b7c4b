"""ONNX nn ops -> IR: softmax family, convolution, pooling, normalization, losses' helpers.

Convolution and pooling in the IR are 2-D (NCHW); 1-D ONNX ops are imported as 2-D ops over a
height of 1. Normalizations without a one-to-one IR op are decomposed into reductions and
elementwise ops (InstanceNormalization, LpNormalization, LRN, BatchNormalization with an
explicit epsilon); LayerNormalization, GroupNormalization, RMSNormalization and Attention use
the ONNX schema's function bodies unless an importer here is shorter.
"""
from __future__ import annotations

import numpy as np

from irflow.frontends.onnx_import_base import importer, np_dtype, rank_of, scalar, to_dtype
from irflow.ir.dtypes import FLOAT8_DTYPES, DType
from irflow.ops.conv_nd import window_counts
from irflow.ops.dispatch import bind


@importer("Softmax", "LogSoftmax")
def _softmax(n):
    # The IR ops (max-shifted, with their own VJPs) export back as ONNX Softmax / LogSoftmax,
    # which onnxruntime runs as one kernel.
    x = n.input(0)
    axis = n.axis(n.attr("axis", -1), rank_of(x))
    return bind("log_softmax" if n.op_type == "LogSoftmax" else "softmax", x, axis=axis)


def _spatial(n, x, what: str) -> int:
    r = rank_of(x) - 2
    if r < 1:
        raise n.error(f"{what} needs at least one spatial dim: the input must be (N, C, D1, ...), it has rank {rank_of(x)}")
    _check_window_attrs(n, r)
    return r


def _check_window_attrs(n, r: int) -> None:
    """kernel_shape, strides, dilations, output_padding: r positive ints; pads: 2r non-negative
    ints (else an error naming the node, not an IndexError deep in the importer)."""
    for name, minimum in (("kernel_shape", 1), ("strides", 1), ("dilations", 1), ("output_padding", 0)):
        v = n.attr(name)
        if v is not None and v != [] and (len(v) != r or any(int(d) < minimum for d in v)):
            raise n.error(f"{name}={list(v)} must be {r} integers >= {minimum}")
    pads = n.attr("pads")
    if pads is not None and pads != [] and (len(pads) != 2 * r or any(int(p) < 0 for p in pads)):
        raise n.error(f"pads={list(pads)} must be {2 * r} non-negative integers")
    if n.op_type in ("MaxPool", "AveragePool", "LpPool") and len(n.attr("kernel_shape") or ()) != r:
        raise n.error(f"kernel_shape={n.attr('kernel_shape')} must give {r} window sizes")


def _nd_pads(n, r: int, kernel, strides, dilations, sizes) -> tuple:
    """ONNX pads / auto_pad as the N-D ops' 2r pads (begins, then ends); SAME needs static sizes."""
    auto = n.attr("auto_pad", "NOTSET")
    if auto == "VALID":
        return (0,) * (2 * r)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if not all(isinstance(d, int) for d in sizes):
            raise n.unsupported(f"{auto} padding over {r} spatial dims needs static spatial sizes")
        begins, ends = [], []
        for i in range(r):
            out = -(-sizes[i] // strides[i])
            total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - sizes[i], 0)
            lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
            begins.append(lo)
            ends.append(total - lo)
        return tuple(begins + ends)
    return tuple(int(p) for p in n.attr("pads", [0] * (2 * r)))


def _pads(n, r: int, kernel, strides, dilations, in_hw) -> tuple | str:
    """ONNX pads / auto_pad -> the IR's (top, left, bottom, right) or "same"."""
    auto = n.attr("auto_pad", "NOTSET")
    if auto == "VALID":
        return (0,) * 4
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads_b, pads_e = [], []
        for i in range(r):
            size = in_hw[i]
            if not isinstance(size, int):
                if auto == "SAME_UPPER":
                    return "same"
                raise n.unsupported("SAME_LOWER padding needs static spatial sizes")
            out = -(-size // strides[i])
            total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size, 0)
            lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pads_b.append(lo)
            pads_e.append(total - lo)
        pads = pads_b + pads_e
    else:
        pads = list(n.attr("pads", [0] * (2 * r)))
    if r == 1:
        return (0, pads[0], 0, pads[1])
    return tuple(int(p) for p in pads)


def _to2d(x, r: int):
    return bind("expand_dims", x, axes=(2,)) if r == 1 else x


def _from2d(y, r: int):
    return bind("squeeze", y, axes=(2,)) if r == 1 else y


def _pair(values, r: int, default: int = 1) -> tuple[int, int]:
    v = list(values) if values is not None else [default] * r
    return (1, int(v[0])) if r == 1 else (int(v[0]), int(v[1]))


@importer("Conv")
def _conv(n):
    x, w, b = n.input(0), n.input(1), n.input(2)
    r = _spatial(n, x, "Conv")
    kernel = n.attr("kernel_shape") or list(w.shape[2:])
    strides = n.attr("strides") or [1] * r
    dil = n.attr("dilations") or [1] * r
    if r > 2:  # the N-D op; 1-D and 2-D keep the tuned 2-D kernels
        return bind("conv", x, w, b, strides=tuple(strides), pads=_nd_pads(n, r, kernel, strides, dil, x.shape[2:]),
                    dilations=tuple(dil), groups=int(n.attr("group", 1)))
    pads = _pads(n, r, kernel, strides, dil, x.shape[2:])
    y = bind("conv2d", _to2d(x, r), _to2d(w, r), b, strides=_pair(strides, r), padding=pads,
             dilations=_pair(dil, r), groups=int(n.attr("group", 1)))
    return _from2d(y, r)


@importer("ConvTranspose")
def _conv_transpose(n):
    x, w, b = n.input(0), n.input(1), n.input(2)
    r = _spatial(n, x, "ConvTranspose")
    strides = n.attr("strides") or [1] * r
    dil = n.attr("dilations") or [1] * r
    pads = list(n.attr("pads", [0] * (2 * r)))
    auto = n.attr("auto_pad", "NOTSET")
    out_pad = n.attr("output_padding") or [0] * r
    if n.attr("output_shape") is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        pads, out_pad = _conv_transpose_pads(n, r, x, w, strides, dil, auto)
    if r > 2:
        return bind("conv_transpose", x, w, b, strides=tuple(strides), pads=tuple(int(p) for p in pads),
                    output_padding=tuple(int(p) for p in out_pad), dilations=tuple(dil), groups=int(n.attr("group", 1)))
    pads = (0, pads[0], 0, pads[1]) if r == 1 else tuple(pads)
    y = bind("conv_transpose2d", _to2d(x, r), _to2d(w, r), b, strides=_pair(strides, r), padding=pads,
             output_padding=_pair(out_pad, r, 0) if r == 2 else (0, int(out_pad[0])),
             dilations=_pair(dil, r), groups=int(n.attr("group", 1)))
    return _from2d(y, r)


def _conv_transpose_pads(n, r: int, x, w, strides, dil, auto: str) -> list[int]:
    """Pads that give ConvTranspose the requested output_shape (or in * stride for SAME),
    split as the ONNX specification says."""
    sizes = x.shape[2:]
    kernel = n.attr("kernel_shape") or list(w.shape[2:])
    out_pad = n.attr("output_padding") or [0] * r
    if len(kernel) != r:
        raise n.error(f"the weight's shape {tuple(w.shape)} does not fit {r} spatial dims")
    if n.attr("output_shape") is not None and len(n.attr("output_shape")) < r:
        raise n.error(f"output_shape={n.attr('output_shape')} needs {r} spatial sizes")
    if not all(isinstance(d, int) for d in list(sizes) + list(kernel)):
        raise n.unsupported("output_shape / SAME padding needs static sizes")
    target = list(n.attr("output_shape"))[-r:] if n.attr("output_shape") is not None else [sizes[i] * strides[i] for i in range(r)]
    begin, end = [], []
    extra_out = [0] * r
    for i in range(r):
        total = strides[i] * (sizes[i] - 1) + out_pad[i] + (kernel[i] - 1) * dil[i] + 1 - target[i]
        if total < 0:  # larger than the full result: the rest is output padding (zeros plus bias)
            extra_out[i] = -total
            total = 0
        if auto == "SAME_UPPER":
            begin.append(total // 2), end.append(total - total // 2)
        else:
            begin.append(total - total // 2), end.append(total // 2)
    return begin + end, [int(a) + b for a, b in zip(out_pad, extra_out)]


@importer("MaxPool", "AveragePool")
def _pool(n):
    x = n.input(0)
    r = _spatial(n, x, n.op_type)
    kernel = n.attr("kernel_shape")
    strides = n.attr("strides") or [1] * r
    dil = n.attr("dilations") or [1] * r
    if n.op_type == "MaxPool" and len(n.output_names) > 1 and n.output_names[1]:
        # Indices (what gradient graphs of max pooling use): the pool plus the indices op
        pads = _pool_nd_pads(n, x, r, kernel, strides, dil)
        idx = bind("max_pool_indices", x, kernel_size=tuple(kernel), strides=tuple(strides), pads=tuple(pads),
                   dilations=tuple(dil), storage_order=int(n.attr("storage_order", 0)))
        return _pool_values(n, x, r, kernel, strides, dil), idx
    return _pool_values(n, x, r, kernel, strides, dil)


def _pool_values(n, x, r: int, kernel, strides, dil):
    ceil_counting_pads = n.attr("ceil_mode", 0) and n.attr("count_include_pad", 0) and n.op_type == "AveragePool"
    integer = np_dtype(x).kind in "iu"  # int8/uint8 MaxPool: the N-D op (the 2-D one takes floats)
    if r > 2 or any(d != 1 for d in dil) or ceil_counting_pads or integer:
        return _pool_nd(n, x, r, kernel, strides, dil)
    pads = _pads(n, r, kernel, strides, [1] * r, x.shape[2:])
    op = "max_pool2d" if n.op_type == "MaxPool" else "avg_pool2d"
    if n.attr("ceil_mode", 0):
        pads = _ceil_mode_pads(n, r, pads, kernel, strides, x.shape[2:])
    x2 = _to2d(x, r)
    if op == "avg_pool2d" and n.attr("count_include_pad", 0) and pads != "same" and any(pads):
        # The IR's average counts only real elements (ONNX's default); counting the padding
        # too is an average over an explicitly zero-padded input.
        top, left, bottom, right = pads
        x2 = bind("pad", x2, pads=(0, 0, top, left, 0, 0, bottom, right), mode="constant", value=0.0)
        pads = (0, 0, 0, 0)
    y = bind(op, x2, kernel_size=_pair(kernel, r), strides=_pair(strides, r), padding=pads)
    return _from2d(y, r)


def _pool_nd(n, x, r: int, kernel, strides, dil):
    """MaxPool / AveragePool over 3-D, or with dilations: the N-D ops."""
    if n.op_type == "AveragePool" and n.attr("count_include_pad", 0):
        # The padding counts in the average: pad explicitly, then pool with no declared pads
        # (ceil_mode's partial last window still counts only what is inside the padded input,
        # as PyTorch and onnxruntime divide).
        declared = _nd_pads(n, r, kernel, strides, dil, x.shape[2:])
        full = _pool_nd_pads(n, x, r, kernel, strides, dil)  # ceil_mode decided on the real geometry
        if any(declared):
            x = bind("pad", x, pads=(0, 0, *declared[:r], 0, 0, *declared[r:]), mode="constant", value=0.0)
        pads = [0] * r + [full[r + i] - declared[r + i] for i in range(r)]
    else:
        pads = _pool_nd_pads(n, x, r, kernel, strides, dil)
    op = "max_pool" if n.op_type == "MaxPool" else "avg_pool"
    return bind(op, x, kernel_size=tuple(kernel), strides=tuple(strides), pads=tuple(pads), dilations=tuple(dil))


def _pool_nd_pads(n, x, r: int, kernel, strides, dil) -> list[int]:
    """The N-D pool's 2r pads: ONNX pads / auto_pad, plus ceil_mode's extra end padding for the
    last, partial window, which must start inside the input or the leading padding (ONNX's rule)."""
    pads = list(_nd_pads(n, r, kernel, strides, dil, x.shape[2:]))
    sizes = x.shape[2:]
    if n.attr("ceil_mode", 0):
        if not all(isinstance(d, int) for d in sizes):
            raise n.unsupported("ceil_mode=1 needs static spatial sizes")
        for i in range(r):
            span = dil[i] * (kernel[i] - 1) + 1
            total = sizes[i] + pads[i] + pads[r + i]
            out = -(-(total - span) // strides[i]) + 1
            if (out - 1) * strides[i] >= sizes[i] + pads[i]:
                out -= 1
            pads[r + i] += max((out - 1) * strides[i] + span - total, 0)
    return pads


def _ceil_mode_pads(n, r: int, pads, kernel, strides, sizes) -> tuple:
    """ceil_mode=1 as extra padding after each spatial axis: enough for the last, partial
    window, which must start inside the input or the leading padding (ONNX's rule). The IR's
    max pool ignores padding and its average counts only real elements, so the extra padding
    changes nothing else."""
    if pads == "same" or not all(isinstance(d, int) for d in sizes):
        raise n.unsupported("ceil_mode=1 needs explicit padding and static spatial sizes")
    if n.op_type == "AveragePool" and n.attr("count_include_pad", 0):
        raise n.unsupported("ceil_mode=1 with count_include_pad=1")
    top, left, bottom, right = pads
    before, after = ([left], [right]) if r == 1 else ([top, left], [bottom, right])
    extra = []
    for i in range(r):
        size, k, s = sizes[i], kernel[i], strides[i]
        total = size + before[i] + after[i]
        out = -(-(total - k) // s) + 1
        if (out - 1) * s >= size + before[i]:
            out -= 1
        extra.append(max((out - 1) * s + k - total, 0))
    if r == 1:
        return (top, left, bottom, right + extra[0])
    return (top, left, bottom + extra[0], right + extra[1])


@importer("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(n):
    x = n.input(0)
    axes = tuple(range(2, rank_of(x)))
    op = "reduce_mean" if n.op_type == "GlobalAveragePool" else "reduce_max"
    return bind(op, x, axes=axes, keepdims=True)


def _channel_shape(x) -> tuple:
    """Broadcast a per-channel (C,) vector against NC... : shape (C, 1, 1, ...)."""
    return (-1,) + (1,) * (rank_of(x) - 2)


@importer("BatchNormalization")
def _batch_norm(n):
    x, scale, bias, mean, var = (n.input(i) for i in range(5))
    eps = scalar(n.attr("epsilon", 1e-5), x)
    shape = _channel_shape(x)

    def ch(t):
        return bind("reshape", t, shape=shape)

    if n.attr("training_mode", 0):
        # Batch statistics (population variance) normalize; the running statistics are
        # updated with momentum, as the ONNX specification writes them out.
        axes = (0,) + tuple(range(2, rank_of(x)))
        bmean = bind("reduce_mean", x, axes=axes, keepdims=True)
        d = bind("sub", x, bmean)
        bvar = bind("reduce_mean", bind("mul", d, d), axes=axes, keepdims=True)
        y = bind("add", bind("mul", bind("div", d, bind("sqrt", bind("add", bvar, eps))), ch(scale)), ch(bias))
        m = n.attr("momentum", 0.9)
        flat_mean = bind("reshape", bmean, shape=(-1,))
        flat_var = bind("reshape", bvar, shape=(-1,))
        run_mean = bind("add", bind("mul", mean, scalar(m, x)), bind("mul", flat_mean, scalar(1 - m, x)))
        run_var = bind("add", bind("mul", var, scalar(m, x)), bind("mul", flat_var, scalar(1 - m, x)))
        return (y, run_mean, run_var)[:max(1, len(n.output_names))]

    inv = bind("div", ch(scale), bind("sqrt", bind("add", ch(var), eps)))
    return bind("add", bind("mul", bind("sub", x, ch(mean)), inv), ch(bias))


@importer("InstanceNormalization")
def _instance_norm(n):
    x, scale, bias = n.input(0), n.input(1), n.input(2)
    axes = tuple(range(2, rank_of(x)))
    mean = bind("reduce_mean", x, axes=axes, keepdims=True)
    d = bind("sub", x, mean)
    var = bind("reduce_mean", bind("mul", d, d), axes=axes, keepdims=True)
    y = bind("div", d, bind("sqrt", bind("add", var, scalar(n.attr("epsilon", 1e-5), x))))
    shape = _channel_shape(x)
    return bind("add", bind("mul", y, bind("reshape", scale, shape=shape)), bind("reshape", bias, shape=shape))


@importer("LayerNormalization")
def _layer_norm(n):
    x, scale, bias = n.input(0), n.input(1), n.input(2)
    if len([o for o in n.output_names if o]) > 1:
        return _layer_norm_full(n)
    axis = n.axis(n.attr("axis", -1), rank_of(x))
    normalized = tuple(x.shape[axis:])
    if (np_dtype(x) in (np.float32, np.float64) and tuple(scale.shape) == normalized
            and (bias is None or tuple(bias.shape) == normalized) and np_dtype(scale) == np_dtype(x)
            and (bias is None or np_dtype(bias) == np_dtype(x))):
        # the IR op, which exports back as ONNX LayerNormalization (one onnxruntime kernel);
        # float16 inputs keep the decomposition (stash_type computes them in float32)
        args = (x, scale) if bias is None else (x, scale, bias)
        return bind("layer_norm", *args, axis=axis, epsilon=float(n.attr("epsilon", 1e-5)))
    axes = tuple(range(axis, rank_of(x)))
    mean = bind("reduce_mean", x, axes=axes, keepdims=True)
    d = bind("sub", x, mean)
    var = bind("reduce_mean", bind("mul", d, d), axes=axes, keepdims=True)
    y = bind("div", d, bind("sqrt", bind("add", var, scalar(n.attr("epsilon", 1e-5), x))))
    y = bind("mul", y, scale)
    return bind("add", y, bias) if bias is not None else y


def _layer_norm_full(n):
    """LayerNormalization with its Mean and InvStdDev outputs (stash_type float32)."""
    x, scale, bias = n.input(0), n.input(1), n.input(2)
    axis = n.axis(n.attr("axis", -1), rank_of(x))
    axes = tuple(range(axis, rank_of(x)))
    xf = bind("cast", x, dtype="float32") if n.attr("stash_type", 1) == 1 and np_dtype(x) != np.float32 else x
    mean = bind("reduce_mean", xf, axes=axes, keepdims=True)
    d = bind("sub", xf, mean)
    var = bind("reduce_mean", bind("mul", d, d), axes=axes, keepdims=True)
    inv = bind("div", scalar(1, xf), bind("sqrt", bind("add", var, scalar(n.attr("epsilon", 1e-5), xf))))
    y = bind("mul", d, inv)
    if xf is not x:
        y = bind("cast", y, dtype=x.dtype)
    y = bind("mul", y, scale)
    if bias is not None:
        y = bind("add", y, bias)
    return y, mean, inv


@importer("LpNormalization")
def _lp_norm(n):
    x = n.input(0)
    axis = n.axis(n.attr("axis", -1), rank_of(x))
    p = n.attr("p", 2)
    if p == 1:
        norm = bind("reduce_sum", bind("abs", x), axes=(axis,), keepdims=True)
    else:
        norm = bind("sqrt", bind("reduce_sum", bind("mul", x, x), axes=(axis,), keepdims=True))
    zero = bind("equal", norm, scalar(0, x))  # a zero vector stays zero (no 0/0)
    return bind("where", zero, scalar(0, x), bind("div", x, bind("where", zero, scalar(1, x), norm)))


@importer("LRN")
def _lrn(n):
    x = n.input(0)
    size = int(n.attr("size"))
    if size < 1:
        raise n.error(f"size must be >= 1, got {size}")
    alpha, beta, bias = n.attr("alpha", 1e-4), n.attr("beta", 0.75), n.attr("bias", 1.0)
    r = rank_of(x)
    if r < 3:
        raise n.error(f"the input must be (N, C, D1, ...), it has rank {r}")
    c = x.shape[1]
    if not isinstance(c, int):
        raise n.unsupported("LRN needs a static channel count")
    # Window [ch - lo, ch + hi] of channels; channels beyond the edges add nothing, so a
    # window wider than the channels is clipped to c - 1 either side (same sums, fewer nodes).
    lo, hi = min((size - 1) // 2, max(c - 1, 0)), min(size - 1 - (size - 1) // 2, max(c - 1, 0))
    sq = bind("mul", x, x)
    pads = [0] * (2 * r)
    pads[1], pads[r + 1] = lo, hi
    padded = bind("pad", sq, pads=tuple(pads), mode="constant", value=0.0)
    total = None
    for i in range(lo + hi + 1):  # a sum of shifted slices along the channels
        part = bind("slice", padded, starts=(i,), ends=(i + c,), axes=(1,), steps=None)
        total = part if total is None else bind("add", total, part)
    denom = bind("pow", bind("add", bind("mul", total, scalar(alpha / size, x)), scalar(bias, x)), scalar(beta, x))
    return bind("div", x, denom)


@importer("LpPool")
def _lp_pool(n):
    """(sum over each window of |x|^p)^(1/p): an average pool of an explicitly zero-padded |x|^p
    times the window size (padding adds zeros to the sum, as ONNX). 1-D and 2-D without
    dilations or ceil_mode use the 2-D pool; the rest the N-D one."""
    x = n.input(0)
    r = _spatial(n, x, "LpPool")
    kernel = n.attr("kernel_shape")
    strides = n.attr("strides") or [1] * r
    dil = n.attr("dilations") or [1] * r
    p = n.attr("p", 2)
    powered = bind("abs", x) if p == 1 else bind("pow", bind("abs", x), scalar(p, x))
    if r > 2 or any(d != 1 for d in dil) or n.attr("ceil_mode", 0):
        total = _lp_pool_nd(n, powered, r, kernel, strides, dil)
    else:
        pads = _pads(n, r, kernel, strides, [1] * r, x.shape[2:])
        if pads == "same":
            raise n.unsupported("LpPool with SAME padding on symbolic sizes")
        x2 = _to2d(powered, r)
        top, left, bottom, right = pads
        if any(pads):
            x2 = bind("pad", x2, pads=(0, 0, top, left, 0, 0, bottom, right), mode="constant", value=0.0)
        avg = bind("avg_pool2d", x2, kernel_size=_pair(kernel, r), strides=_pair(strides, r), padding=(0, 0, 0, 0))
        total = _from2d(bind("mul", avg, scalar(int(np.prod(kernel)), x)), r)
    return total if p == 1 else bind("pow", total, scalar(1.0 / p, x))


def _lp_pool_nd(n, powered, r: int, kernel, strides, dil):
    """The window sums of ``powered`` with the N-D average pool: the declared padding made
    explicit zeros; ceil_mode's extra end padding stays the pool's (not counted), so each
    average is multiplied by its window's count of elements inside the padded input."""
    declared = _nd_pads(n, r, kernel, strides, dil, powered.shape[2:])
    full = _pool_nd_pads(n, powered, r, kernel, strides, dil)
    x = powered
    if any(declared):
        x = bind("pad", x, pads=(0, 0, *declared[:r], 0, 0, *declared[r:]), mode="constant", value=0.0)
    extra = [full[r + i] - declared[r + i] for i in range(r)]
    pads = (0,) * r + tuple(extra)
    avg = bind("avg_pool", x, kernel_size=tuple(kernel), strides=tuple(strides), pads=pads, dilations=tuple(dil))
    if not any(extra):  # every window lies inside the padded input
        return bind("mul", avg, scalar(int(np.prod(kernel)), powered))
    sizes = [int(d) for d in x.shape[2:]]  # ceil_mode: static sizes (checked by _pool_nd_pads)
    out_sizes = [(sizes[i] + extra[i] - dil[i] * (kernel[i] - 1) - 1) // strides[i] + 1 for i in range(r)]
    n.check_fits(out_sizes, np_dtype(powered), "LpPool's window counts")
    counts = window_counts(sizes, kernel, strides, pads, dil, out_sizes, np_dtype(powered))
    return bind("mul", avg, counts)


def _per_axis(n, v, x, axis: int):
    """A per-axis (1-D) quantization parameter shaped to broadcast along ``axis`` of x."""
    if len(v.shape) == 0 or (len(v.shape) == 1 and v.shape[0] == 1):
        return v
    if n.attr("block_size", 0):
        return _per_block(n, v, x, axis, n.attr("block_size"))
    if len(v.shape) != 1:
        raise n.error(f"a per-axis scale or zero point must be 1-D, it has shape {tuple(v.shape)}")
    r = rank_of(x)
    a = n.axis(axis, r)
    if isinstance(x.shape[a], int) and isinstance(v.shape[0], int) and v.shape[0] != x.shape[a]:
        raise n.error(f"{v.shape[0]} per-axis values for axis {a} of size {x.shape[a]}")
    return bind("reshape", v, shape=(-1,) + (1,) * (r - a - 1))


def _per_block(n, v, x, axis: int, block: int):
    """A blocked scale or zero point (x's shape but ceil(dim / block) along ``axis``) repeated
    block times along the axis and cut to x's size there: broadcast and reshape, no array
    built at import (onnx's reference: ``np.repeat`` then ``take``)."""
    r = rank_of(x)
    a = n.axis(axis, r)
    s, xs = tuple(v.shape), tuple(x.shape)
    if block < 1:
        raise n.error(f"block_size must be positive, got {block}")
    if len(s) != r or not all(isinstance(d, int) for d in s) or not isinstance(xs[a], int):
        raise n.unsupported(f"blocked quantization with scale shape {s} for input shape {xs} (static dims needed)")
    blocks = -(-xs[a] // block)
    if s[a] != blocks or any(d != e for i, (d, e) in enumerate(zip(s, xs)) if i != a and isinstance(e, int)):
        raise n.error(f"a blocked scale or zero point for input shape {xs}, axis {a}, block_size {block} must have "
                      f"shape {xs[:a] + (blocks,) + xs[a + 1:]}, it has {s}")
    out = bind("expand_dims", v, axes=(a + 1,))
    out = bind("broadcast_to", out, shape=s[:a + 1] + (block,) + s[a + 1:])
    out = bind("reshape", out, shape=s[:a] + (blocks * block,) + s[a + 1:])
    if blocks * block != xs[a]:
        out = bind("slice", out, starts=(0,), ends=(xs[a],), axes=(a,), steps=None)
    return out


@importer("DequantizeLinear")
def _dequantize(n):
    x, scale, zp = n.input(0), n.input(1), n.input(2)
    axis = n.attr("axis", 1)
    code = n.attr("output_dtype", 0)
    out = to_dtype(code, n.where()) if code else scale.dtype
    # (x - zero_point) * scale in float32 at least (as the spec's reference): a uint16 x in a
    # float16 scale's dtype would round before the product; the result is rounded once
    wide = DType.float64 if DType.float64 in (scale.dtype, out) else DType.float32
    xf = bind("cast", x, dtype=wide)
    if zp is not None and x.dtype not in FLOAT8_DTYPES:  # a float8 zero point must be 0 (the spec)
        xf = bind("sub", xf, _per_axis(n, bind("cast", zp, dtype=wide), x, axis))
    s = scale if scale.dtype is wide else bind("cast", scale, dtype=wide)
    y = bind("mul", xf, _per_axis(n, s, x, axis))
    return y if out is wide else bind("cast", y, dtype=out)


# The integer dtypes QuantizeLinear saturates to (the ONNX schema's T2 ints).
_QUANT_RANGE = {d: (int(np.iinfo(d).min), int(np.iinfo(d).max)) for d in ("uint8", "int8", "uint16", "int16")}
_QUANT_RANGE.update({"int4": (-8, 7), "uint4": (0, 15), "int2": (-2, 1), "uint2": (0, 3)})


@importer("QuantizeLinear")
def _quantize(n):
    x, scale, zp = n.input(0), n.input(1), n.input(2)
    axis = n.attr("axis", 1)
    out_dtype = zp.dtype if zp is not None else None
    if out_dtype is None:
        code = n.attr("output_dtype", 0)
        out_dtype = to_dtype(code, n.where()) if code else "uint8"
    out_dtype = DType(str(out_dtype))
    lo, hi = _QUANT_RANGE.get(out_dtype.value, (None, None))
    if lo is None and out_dtype not in FLOAT8_DTYPES and out_dtype is not DType.float4_e2m1fn:
        raise n.unsupported(f"quantizing to {out_dtype}")
    if n.attr("precision", 0):
        raise n.unsupported("the precision attribute")
    if np_dtype(scale) != np_dtype(x):
        scale = bind("cast", scale, dtype=x.dtype)
    q = bind("div", x, _per_axis(n, scale, x, axis))
    if out_dtype in FLOAT8_DTYPES:
        # The cast rounds to nearest even and saturates as the attribute says. The zero point
        # of a float8 type must be 0 (the spec), so it is not added (nor by onnx's reference).
        if n.attr("saturate", 1):
            return bind("cast", q, dtype=out_dtype)
        return bind("cast", q, dtype=out_dtype, saturate=False)
    if out_dtype is DType.float4_e2m1fn:  # no inf or NaN code: the cast saturates on its own
        if zp is not None:
            q = bind("add", q, _per_axis(n, bind("cast", zp, dtype=x.dtype), x, axis))
        return bind("cast", q, dtype=out_dtype)
    q = bind("round", q)  # round half to even, as ONNX
    if zp is not None:
        q = bind("add", q, _per_axis(n, bind("cast", zp, dtype=x.dtype), x, axis))
    q = bind("minimum", bind("maximum", q, scalar(lo, x)), scalar(hi, x))
    return bind("cast", q, dtype=out_dtype)
