"""ONNX lowerings of the convolution and pooling ops, standard domain only.

conv2d, conv_transpose2d, max_pool2d and avg_pool2d are one ONNX node each ("same" padding
becomes explicit pads when the spatial size is known, else auto_pad=SAME_UPPER, which is TF
SAME). The internal gradient ops are built from standard ops:

- conv2d_weight_grad: a Conv of the input (batch and channel axes swapped, groups kept apart)
  with the output gradient as the kernel; stride and dilation trade places.
- max_pool2d_grad / max_pool2d_pick: MaxPool's Indices output (flat positions in the input)
  with ScatterElements(reduction="add") / GatherElements.
- avg_pool2d_grad: the gradient divided by the window counts, then a ConvTranspose with a
  kernel of ones over (N*C, 1, Ho, Wo).

Gradient lowerings need static channel and spatial sizes (the batch may be symbolic).
onnxruntime's CPU provider has no float64 Conv, ConvTranspose or AveragePool kernels, so those
graphs export (valid ONNX) but onnxruntime CPU rejects them.
"""
from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from irflow.errors import UnsupportedOpError
from irflow.executors.onnx.context import ONNX_DTYPE
from irflow.executors.onnx.lowering import lowering
from irflow.executors.onnx.lowering.nn import input_type
from irflow.ir.dtypes import DType
from irflow.ops.conv import pool_window_counts, resolve_pads


def _ints(ctx, values) -> str:
    return ctx.const(np.asarray(values, dtype=np.int64), "ints")


def _pad_attrs(padding, hw, khw, strides, dilations) -> dict:
    pads = resolve_pads(padding, hw, khw, strides, dilations)
    return {"auto_pad": "SAME_UPPER"} if pads is None else {"pads": list(pads)}


def _static(node, what: str, *dims) -> None:
    if not all(isinstance(d, int) for d in dims):
        raise UnsupportedOpError(f"ONNX lowering of {node.op} (node {node.name}) needs static {what}, got {dims}")


def _same_padded(ctx, x_name, khw, strides, dilations) -> str:
    """x padded for TF SAME with pads computed at run time from its shape (for dilated convs on
    unknown sizes: onnxruntime rejects auto_pad=SAME with dilations)."""
    size = ctx.emit("Shape", [x_name], 1, start=2, end=4)[0]
    stride = _ints(ctx, strides)
    out = ctx.emit("Div", [ctx.emit("Add", [size, _ints(ctx, [s - 1 for s in strides])])[0], stride])[0]
    span = _ints(ctx, [d * (k - 1) + 1 for k, d in zip(khw, dilations)])
    reach = ctx.emit("Add", [ctx.emit("Mul", [ctx.emit("Sub", [out, _ints(ctx, [1, 1])])[0], stride])[0], span])[0]
    total = ctx.emit("Max", [ctx.emit("Sub", [reach, size])[0], _ints(ctx, [0, 0])])[0]
    before = ctx.emit("Div", [total, _ints(ctx, [2, 2])])[0]
    after = ctx.emit("Sub", [total, before])[0]
    pads = ctx.emit("Concat", [before, after], 1, axis=0)[0]
    return ctx.emit("Pad", [x_name, pads, "", _ints(ctx, [2, 3])])[0]


@lowering("conv2d")
def _conv2d(ctx, node, ins, outs):
    a = node.attrs
    x, w = input_type(ctx, ins[0]), input_type(ctx, ins[1])
    pad_attrs = _pad_attrs(a["padding"], x.shape[2:], w.shape[2:], a["strides"], a["dilations"])
    if "auto_pad" in pad_attrs and a["dilations"] != (1, 1):
        _static(node, "kernel size", *w.shape[2:])
        ins = [_same_padded(ctx, ins[0], w.shape[2:], a["strides"], a["dilations"])] + list(ins[1:])
        pad_attrs = {}
    ctx.emit("Conv", ins, outs, strides=list(a["strides"]), dilations=list(a["dilations"]), group=a["groups"],
             **pad_attrs)


@lowering("conv_transpose2d")
def _conv_transpose2d(ctx, node, ins, outs):
    a = node.attrs
    ctx.emit("ConvTranspose", ins, outs, strides=list(a["strides"]), dilations=list(a["dilations"]),
             group=a["groups"], pads=list(a["padding"]), output_padding=list(a["output_padding"]))


@lowering("conv2d_weight_grad")
def _conv2d_weight_grad(ctx, node, ins, outs):
    # dW[o, c, i, j] = sum_{n,p,q} g[n, o, p, q] * xpad[n, c, p*s + i*d, q*s + j*d]: a convolution
    # of x viewed as (C/G, G*N, H, W) by g viewed as (O, N, Ho, Wo), stride d and dilation s.
    a = node.attrs
    x, g = input_type(ctx, ins[0]), input_type(ctx, ins[1])
    (_, c, h, w), (_, o, ho, wo) = x.shape, g.shape
    _static(node, "channel and spatial sizes", c, h, w, o, ho, wo)
    groups, (kh, kw) = a["groups"], a["kernel_size"]
    cg, og = c // groups, o // groups
    pads = resolve_pads(a["padding"], (h, w), (kh, kw), a["strides"], a["dilations"])
    xr = ctx.emit("Reshape", [ins[0], _ints(ctx, [-1, groups, cg, h * w])])[0]
    xt = ctx.emit("Transpose", [xr], 1, perm=[2, 1, 0, 3])[0]
    xin = ctx.emit("Reshape", [xt, _ints(ctx, [cg, -1, h, w])])[0]
    gr = ctx.emit("Reshape", [ins[1], _ints(ctx, [-1, groups, og, ho * wo])])[0]
    gt = ctx.emit("Transpose", [gr], 1, perm=[1, 2, 0, 3])[0]
    gk = ctx.emit("Reshape", [gt, _ints(ctx, [o, -1, ho, wo])])[0]
    y = ctx.emit("Conv", [xin, gk], 1, strides=list(a["dilations"]), dilations=list(a["strides"]),
                 group=groups, pads=list(pads))[0]
    # The correlation may reach past the kernel (when the stride does not divide evenly): crop.
    full_h = (h + pads[0] + pads[2] - a["strides"][0] * (ho - 1) - 1) // a["dilations"][0] + 1
    full_w = (w + pads[1] + pads[3] - a["strides"][1] * (wo - 1) - 1) // a["dilations"][1] + 1
    if (full_h, full_w) != (kh, kw):
        y = ctx.emit("Slice", [y, _ints(ctx, [0, 0]), _ints(ctx, [kh, kw]), _ints(ctx, [2, 3])])[0]
    ctx.emit("Transpose", [y], outs, perm=[1, 0, 2, 3])


# -- pooling ----------------------------------------------------------------------------------

def _pool_attrs(node, x_hw) -> dict:
    a = node.attrs
    return dict(kernel_shape=list(a["kernel_size"]), strides=list(a["strides"]),
                **_pad_attrs(a["padding"], x_hw, a["kernel_size"], a["strides"], (1, 1)))


@lowering("max_pool2d")
def _max_pool2d(ctx, node, ins, outs):
    ctx.emit("MaxPool", ins, outs, **_pool_attrs(node, input_type(ctx, ins[0]).shape[2:]))


@lowering("avg_pool2d")
def _avg_pool2d(ctx, node, ins, outs):
    ctx.emit("AveragePool", ins, outs, count_include_pad=0, **_pool_attrs(node, input_type(ctx, ins[0]).shape[2:]))


def _max_indices(ctx, node, x_name) -> str:
    """Flat (1-D) MaxPool indices: each window's first maximum as a position in x.flatten()."""
    _, idx = ctx.emit("MaxPool", [x_name], 2, **_pool_attrs(node, input_type(ctx, x_name).shape[2:]))
    return idx


@lowering("max_pool2d_grad")
def _max_pool2d_grad(ctx, node, ins, outs):
    dtype = node.outputs[0].type.dtype
    # onnxruntime has no ScatterElements-add for 16-bit floats: add in float32 (exact for the
    # at most kh*kw terms per position, then one rounding) and cast back.
    wide = DType.float32 if dtype in (DType.float16, DType.bfloat16) else dtype
    idx = ctx.emit("Reshape", [_max_indices(ctx, node, ins[0]), _ints(ctx, [-1])])[0]
    g = ctx.emit("Reshape", [ins[1], _ints(ctx, [-1])])[0]
    if wide is not dtype:
        g = ctx.emit("Cast", [g], 1, to=ONNX_DTYPE[wide])[0]
    size = ctx.emit("Reshape", [ctx.emit("Size", [ins[0]])[0], _ints(ctx, [1])])[0]
    zero = numpy_helper.from_array(np.zeros((1,), dtype=wide.numpy))
    zeros = ctx.emit("ConstantOfShape", [size], 1, value=zero)[0]
    flat = ctx.emit("ScatterElements", [zeros, idx, g], 1, axis=0, reduction="add")[0]
    shape = ctx.emit("Shape", [ins[0]])[0]
    if wide is dtype:
        ctx.emit("Reshape", [flat, shape], outs)
    else:
        wide_out = ctx.emit("Reshape", [flat, shape])[0]
        ctx.emit("Cast", [wide_out], outs, to=ONNX_DTYPE[dtype])


def emit_pool_pick(ctx, x, y, pool_attrs: dict, outs) -> None:
    """y's elements at the positions MaxPool picks from x (MaxPool's Indices, flat over N, C and
    the spatial dims): the lowering of max_pool2d_pick and max_pool_pick."""
    _, idx = ctx.emit("MaxPool", [x], 2, **pool_attrs)
    flat_idx = ctx.emit("Reshape", [idx, _ints(ctx, [-1])])[0]
    flat_y = ctx.emit("Reshape", [y, _ints(ctx, [-1])])[0]
    picked = ctx.emit("GatherElements", [flat_y, flat_idx], 1, axis=0)[0]
    ctx.emit("Reshape", [picked, ctx.emit("Shape", [idx])[0]], outs)


@lowering("max_pool2d_pick")
def _max_pool2d_pick(ctx, node, ins, outs):
    emit_pool_pick(ctx, ins[0], ins[1], _pool_attrs(node, input_type(ctx, ins[0]).shape[2:]), outs)


@lowering("avg_pool2d_grad")
def _avg_pool2d_grad(ctx, node, ins, outs):
    a = node.attrs
    g, x = input_type(ctx, ins[0]), input_type(ctx, ins[1])
    (h, w), (ho, wo) = x.shape[2:], g.shape[2:]
    _static(node, "spatial sizes", h, w, ho, wo)
    (kh, kw), strides = a["kernel_size"], a["strides"]
    pads = resolve_pads(a["padding"], (h, w), (kh, kw), strides, (1, 1))
    counts = pool_window_counts((h, w), (kh, kw), strides, pads, (ho, wo), g.dtype.numpy)
    share = ctx.emit("Div", [ins[0], ctx.const(counts, "window_counts")])[0]
    planes = ctx.emit("Reshape", [share, _ints(ctx, [-1, 1, ho, wo])])[0]
    ones = ctx.const(np.ones((1, 1, kh, kw), dtype=g.dtype.numpy), "ones")
    out_pad = [(h + pads[0] + pads[2] - kh) % strides[0], (w + pads[1] + pads[3] - kw) % strides[1]]
    spread = ctx.emit("ConvTranspose", [planes, ones], 1, strides=list(strides), pads=list(pads),
                      output_padding=out_pad)[0]
    ctx.emit("Reshape", [spread, ctx.emit("Shape", [ins[1]])[0]], outs)
