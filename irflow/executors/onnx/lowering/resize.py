"""ONNX lowering of ``resize``: ONNX Resize itself (full-rank scales, or sizes when the
recorded output sizes are not floor(in * scale)), so onnxruntime runs its native kernel.

Exception: where the coordinate transform reads the output width (align_corners,
half_pixel_symmetric, tf_crop_and_resize, pytorch_half_pixel) and in * scale is not a whole
number, the specification uses the unrounded width and onnxruntime the rounded one; there
the lowering writes the taps out as Gather / Mul / Add (the specification's numbers)."""
from __future__ import annotations

import numpy as np

from irflow.executors.onnx.lowering import lowering
from irflow.executors.onnx.lowering.nn import input_type
from irflow.ops.resize import axis_taps

_WIDTH_MODES = ("align_corners", "half_pixel_symmetric", "tf_crop_and_resize", "pytorch_half_pixel")


def _ints(ctx, values) -> str:
    return ctx.const(np.asarray(values, dtype=np.int64), "ints")


def _taps_written_out(ctx, node, x, ins, outs) -> None:
    a = node.attrs
    y = ins[0]
    dtype = node.outputs[0].type.dtype.numpy
    last = len(a["axes"]) - 1
    for j, axis in enumerate(a["axes"]):
        taps, outside = axis_taps(a, j, x.shape[axis])
        bshape = (-1,) + (1,) * (x.rank - axis - 1)
        total = None
        for k, (idx, w) in enumerate(taps):
            picked = ctx.emit("Gather", [y, ctx.const(idx, "resize_idx")], 1, axis=axis)[0]
            if not np.all(w == 1):
                picked = ctx.emit("Mul", [picked, ctx.const(w.reshape(bshape).astype(dtype), "resize_w")])[0]
            total = picked if total is None else ctx.emit("Add", [total, picked])[0]
        if outside is not None:
            fill = ctx.const(np.asarray(a["extrapolation_value"], dtype), "fill")
            total = ctx.emit("Where", [ctx.const(outside.reshape(bshape), "outside"), fill, total])[0]
        y = total
        if j == last:
            ctx.emit("Identity", [y], outs)


@lowering("resize")
def _resize(ctx, node, ins, outs):
    a = node.attrs
    x = input_type(ctx, ins[0])
    r = x.rank
    scales = np.ones(r, np.float32)
    sizes = list(x.shape)
    for axis, s, size in zip(a["axes"], a["scales"], a["out_sizes"]):
        scales[axis] = s
        sizes[axis] = size
    by_scale = all(int(np.floor(x.shape[ax] * float(np.float32(s)))) == size
                   for ax, s, size in zip(a["axes"], a["scales"], a["out_sizes"]))
    if any(a["coordinate_transformation_mode"] in _WIDTH_MODES and x.shape[ax] * s != size
           for ax, s, size in zip(a["axes"], a["scales"], a["out_sizes"])):
        _taps_written_out(ctx, node, x, ins, outs)
        return
    roi = ""
    if a["roi"] is not None:
        full = np.array([0.0] * r + [1.0] * r, np.float32)
        for j, axis in enumerate(a["axes"]):
            full[axis], full[r + axis] = a["roi"][2 * j], a["roi"][2 * j + 1]
        roi = ctx.const(full, "roi")
    attrs = dict(mode=a["mode"], coordinate_transformation_mode=a["coordinate_transformation_mode"],
                 nearest_mode=a["nearest_mode"], cubic_coeff_a=float(a["cubic_coeff_a"]),
                 exclude_outside=int(a["exclude_outside"]), extrapolation_value=float(a["extrapolation_value"]))
    if a.get("antialias"):
        attrs["antialias"] = 1
    if by_scale or not all(isinstance(d, int) for d in sizes):
        ctx.emit("Resize", [ins[0], roi, ctx.const(scales, "scales")], outs, **attrs)
    else:
        ctx.emit("Resize", [ins[0], roi, "", ctx.const(np.asarray(sizes, np.int64), "sizes")], outs, **attrs)
