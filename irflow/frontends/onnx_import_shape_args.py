"""ONNX ops whose shape arguments are inputs: Slice, Pad, Split, Tile, TopK, OneHot -> IR.

When the argument is known at import (a constant, an initializer, a shape computation the
importer folded) the static op takes it as an attribute, so models exported from torch import
with static shapes as before. When it is computed while the model runs, the run-time op of
irflow/ops/dynamic_shape.py takes it as an input (issue 17); the result dims that depend on it
are then unknown (None).
"""
from __future__ import annotations

import numpy as np

from irflow.frontends.onnx_import_base import importer, np_dtype, rank_of
from irflow.ops.dispatch import bind


def _one_element(n, i: int, what: str):
    t = n.input(i)
    if int(np.prod([d if isinstance(d, int) else 1 for d in t.shape])) != 1 or rank_of(t) > 1:
        raise n.error(f"{what} must hold one value, it has shape {t.shape}")
    return t


@importer("Split")
def _split(n):
    x = n.input(0)
    axis = n.axis(n.attr("axis", 0), rank_of(x))
    sizes = n.attr("split")
    count = len(n.output_names)
    if sizes is None and n.has_input(1):
        if n.run_time(1):  # sizes computed at run time: the parts' sizes on the axis are unknown
            if rank_of(n.input(1)) != 1 or n.input(1).shape[0] not in (count, None):
                raise n.error(f"split must be a 1-D tensor of {count} sizes (one per output), it has shape {n.input(1).shape}")
            outs = bind("split_dynamic", x, n.input(1), axis=axis, num=count)
            return outs if isinstance(outs, tuple) else (outs,)
        sizes = n.const_ints(1, "split")
    if sizes is not None and (len(sizes) != count or any(int(v) < 0 for v in sizes)):
        raise n.error(f"split sizes {list(sizes)} must be {count} non-negative numbers (one per output)")
    if sizes is None:
        d = x.shape[axis]
        num = int(n.attr("num_outputs", count))
        if num < 1 or num != count:
            raise n.error(f"num_outputs={num} does not match the node's {count} outputs")
        if isinstance(d, int) and d % num:  # opset 18: the last chunk is smaller
            chunk = -(-d // num)
            sizes = [chunk] * (num - 1) + [d - chunk * (num - 1)]
        else:
            outs = bind("split", x, sizes=None, num=num, axis=axis)
            return outs if isinstance(outs, tuple) else (outs,)
    outs = bind("split", x, sizes=tuple(int(s) for s in sizes), num=None, axis=axis)
    return outs if isinstance(outs, tuple) else (outs,)


@importer("Slice")
def _slice(n):
    r = rank_of(n.input(0))
    if n.run_time(3) or n.run_time(4):  # axes or steps computed at run time
        for i in range(1, 5):
            if n.has_input(i) and rank_of(n.input(i)) != 1:
                raise n.error(f"starts, ends, axes and steps must be 1-D, input {i} has shape {n.input(i).shape}")
        return bind("slice_dynamic", *(n.input(i) if n.has_input(i) else None for i in range(5)))
    axes = tuple(n.axis(a, r, "axes") for a in n.const_ints(3, "axes")) if n.has_input(3) else None
    steps = n.const_ints(4, "steps") if n.has_input(4) else None
    if steps is not None and 0 in steps:
        raise n.error(f"steps {steps} contain 0")
    if n.run_time(1) or n.run_time(2):
        return _slice_at_run_time(n, axes, steps)
    starts, ends = n.const_ints(1, "starts"), n.const_ints(2, "ends")
    count = len(starts)
    if len(ends) != count or (axes is not None and len(axes) != count) or (steps is not None and len(steps) != count):
        raise n.error(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} must have the same length")
    if axes is None and count > r:
        raise n.error(f"{count} starts for an input of rank {r}")
    return bind("slice", n.input(0), starts=starts, ends=ends, axes=axes, steps=steps)


def _slice_at_run_time(n, axes, steps):
    """Slice with starts/ends known only at run time but axes and steps static: per axis,
    ONNX's clamping written with scalar IR ops, then a gather of range(start, end, step). The
    axes not sliced keep their dims (slice_dynamic could not know which they are)."""
    x = n.input(0)
    if rank_of(n.input(1)) != 1 or rank_of(n.input(2)) != 1:
        raise n.error("starts and ends must be 1-D")
    count = n.input(1).shape[0]
    if not isinstance(count, int):
        n.shape_arg(1, "starts")  # raises: not even the number of sliced axes is known
    r = rank_of(x)
    axes = tuple(range(count)) if axes is None else axes
    steps = (1,) * count if steps is None else steps
    if len(axes) != count or len(steps) != count or count > r:
        raise n.error(f"{count} starts, axes {axes} and steps {steps} do not fit an input of rank {r}")
    y = x
    for j, (a, step) in enumerate(zip(axes, steps)):
        a = a % r
        pick = np.asarray(j, dtype=np.int64)
        start = bind("cast", bind("gather", n.input(1), pick, axis=0), dtype="int64")
        end = bind("cast", bind("gather", n.input(2), pick, axis=0), dtype="int64")
        size = bind("gather", bind("shape_of", y), np.asarray(a, dtype=np.int64), axis=0)
        zero = np.asarray(0, np.int64)
        start = bind("where", bind("less", start, zero), bind("add", start, size), start)
        end = bind("where", bind("less", end, zero), bind("add", end, size), end)
        if step > 0:
            lo_s, hi_s, lo_e, hi_e = zero, size, zero, size
        else:
            last = bind("sub", size, np.asarray(1, np.int64))
            lo_s, hi_s, lo_e, hi_e = zero, last, np.asarray(-1, np.int64), last
        start = bind("minimum", bind("maximum", start, lo_s), hi_s)
        end = bind("minimum", bind("maximum", end, lo_e), hi_e)
        idx = bind("range", start, end, np.asarray(step, np.int64))
        y = bind("gather", y, idx, axis=a)
    return y


@importer("Tile")
def _tile(n):
    if n.run_time(1):
        return bind("tile_dynamic", n.input(0), n.input(1))
    reps = n.const_ints(1, "repeats")
    if len(reps) != rank_of(n.input(0)) or any(r < 0 for r in reps):
        raise n.error(f"repeats {reps} must be {rank_of(n.input(0))} non-negative numbers (one per axis)")
    return bind("tile", n.input(0), reps=reps)


@importer("Pad")
def _pad(n):
    x = n.input(0)
    mode = n.attr("mode", "constant")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise n.unsupported(f"pad mode {mode!r} (irflow has constant, reflect, edge and wrap)")
    value_at_run_time = mode == "constant" and n.run_time(2)  # other modes ignore the value
    if n.run_time(1) or value_at_run_time or n.run_time(3):
        value = _one_element(n, 2, "constant_value") if n.has_input(2) and mode == "constant" else None
        axes = n.input(3) if n.has_input(3) else None
        return bind("pad_dynamic", x, n.input(1), value, axes, mode=mode)
    pads = n.const_ints(1, "pads")
    value = 0.0
    if n.has_input(2) and mode == "constant":
        value = np.asarray(n.const(2, "constant_value")).reshape(-1)
        if value.size > 1:
            raise n.error(f"constant_value must be a scalar, it has {value.size} values")
        value = value[0].item() if value.size else 0.0
    r = rank_of(x)
    axes = tuple(n.axis(a, r, "axes") for a in n.const_ints(3, "axes")) if n.has_input(3) else tuple(range(r))
    k = len(axes)
    if len(pads) != 2 * k:
        raise n.error(f"pads {pads} must have 2 x {k} entries (begin and end for each padded axis)")
    full = [0] * (2 * r)
    for i, a in enumerate(axes):
        full[a] = pads[i]
        full[a + r] = pads[i + k]
    if np_dtype(x).kind in "iub":
        if not np.isfinite(value):
            raise n.error(f"constant_value {value} does not fit the integer input")
        value = int(value)
    if any(p < 0 for p in full):  # negative pads crop: the run-time op does that
        value_t = np.asarray(value, dtype=np_dtype(x)) if mode == "constant" else None
        return bind("pad_dynamic", x, np.asarray(full, np.int64), value_t, None, mode=mode)
    return bind("pad", x, pads=tuple(full), mode=mode, value=value)


@importer("OneHot")
def _one_hot(n):
    indices = n.input(0)
    values = n.input(2)
    if values.shape != (2,):
        raise n.error(f"values must be [off_value, on_value] (shape (2,)), got shape {values.shape}")
    axis = n.axis(n.attr("axis", -1), rank_of(indices) + 1)
    if np_dtype(indices) != np.int64 and np_dtype(indices) != np.int32:
        indices = bind("cast", indices, dtype="int64")
    if not n.run_time(1):
        depth = n.const_scalar(1, "depth")
        if depth < 1:
            raise n.error(f"depth must be positive, got {depth}")
        hot = bind("one_hot", indices, depth=depth, axis=axis, dtype=values.dtype)
    else:  # depth computed at run time
        hot = bind("one_hot_dynamic", indices, _one_element(n, 1, "depth"), axis=axis, dtype=values.dtype)
    off = bind("gather", values, np.asarray(0, np.int64), axis=0)
    on = bind("gather", values, np.asarray(1, np.int64), axis=0)
    return bind("add", off, bind("mul", hot, bind("sub", on, off)))


@importer("TopK")
def _topk(n):
    attrs = dict(axis=int(n.attr("axis", -1)), largest=bool(n.attr("largest", 1)), sorted=bool(n.attr("sorted", 1)))
    if n.run_time(1):  # K computed at run time
        return bind("topk_dynamic", n.input(0), _one_element(n, 1, "K"), **attrs)
    k = n.const_scalar(1, "K")
    if k < 0:
        raise n.error(f"K must be non-negative, got {k}")
    return bind("topk", n.input(0), k=k, **attrs)


def _grid_axis(size, i: int, dtype, align_corners: bool):
    """AffineGrid's normalized coordinates along one spatial axis of run-time length size[i]:
    -1 + k * 2 / (s - 1) with align_corners (just -1 when s == 1), else -1 + (2k + 1) / s."""
    s = bind("reshape", bind("slice", size, starts=(i,), ends=(i + 1,), axes=(0,), steps=None), shape=())
    k = bind("cast", bind("range", np.asarray(0, np.int64), s, np.asarray(1, np.int64)), dtype=dtype)
    sf = bind("cast", s, dtype=dtype)
    one = np.asarray(1, dtype.numpy)
    two = np.asarray(2, dtype.numpy)
    if align_corners:  # a single cell sits at -1 (the reference's step is infinite, its arange one long)
        step = bind("where", bind("greater", sf, one), bind("div", two, bind("maximum", bind("sub", sf, one), one)),
                    np.asarray(0, dtype.numpy))
        return bind("sub", bind("mul", k, step), one)
    return bind("sub", bind("div", bind("add", bind("mul", k, two), one), sf), one)


@importer("AffineGrid")
def _affine_grid(n):
    """The grid of AffineGrid: theta (N, 2, 3) or (N, 3, 4) applied to the homogeneous
    coordinates of an (H, W) or (D, H, W) grid whose sizes are read from ``size`` at run time
    (its length, 4 or 5, says 2-D or 3-D). N is theta's batch, as onnx's reference takes it."""
    theta, size = n.input(0), n.input(1)
    if rank_of(size) != 1 or size.shape[0] not in (4, 5):
        raise n.error(f"size must be a 1-D tensor of 4 (N, C, H, W) or 5 (N, C, D, H, W) sizes, it has shape {size.shape}")
    nd = size.shape[0] - 2
    if rank_of(theta) != 3 or theta.shape[1:] != (nd, nd + 1):
        raise n.error(f"theta must have shape (N, {nd}, {nd + 1}) for a {nd}-D size, it has shape {theta.shape}")
    size = bind("cast", size, dtype="int64") if np_dtype(size) != np.int64 else size
    align = bool(n.attr("align_corners", 0))
    axes = [_grid_axis(size, 2 + j, theta.dtype, align) for j in range(nd)]  # (D,) H, W
    # Each coordinate laid along its own axis of the (D, H, W) grid and broadcast over the others
    # by adding zeros of the rest (shapes known only at run time).
    laid = [bind("reshape", a, shape=tuple(-1 if j == i else 1 for j in range(nd))) for i, a in enumerate(axes)]
    zeros = None
    for t in laid:
        z = bind("mul", t, np.asarray(0, theta.dtype.numpy))
        zeros = z if zeros is None else bind("add", zeros, z)
    coords = [bind("add", t, zeros) for t in reversed(laid)]  # x (W), y (H)[, z (D)]
    ones = bind("add", zeros, np.asarray(1, theta.dtype.numpy))
    base = bind("reshape", bind("stack", *coords, ones, axis=nd), shape=(-1, nd + 1))  # (cells, nd + 1)
    grid = bind("matmul", base, bind("transpose", theta, perm=(0, 2, 1)))  # (N, cells, nd)
    target = bind("concat", bind("slice", bind("shape_of", theta), starts=(0,), ends=(1,), axes=(0,), steps=None),
                  bind("slice", size, starts=(2,), ends=(2 + nd,), axes=(0,), steps=None),
                  np.asarray([nd], np.int64), axis=0)
    return bind("reshape_dynamic", grid, target, dims=(theta.shape[0],) + (None,) * nd + (nd,))
