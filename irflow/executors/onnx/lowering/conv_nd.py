"""ONNX lowerings of the N-D convolution and pooling ops (``irflow/ops/conv_nd.py``).

conv, conv_transpose, max_pool, avg_pool map one to one onto Conv, ConvTranspose, MaxPool,
AveragePool (count_include_pad=0). Gradients, as the 2-D family's:
- conv_weight_grad: a Conv of x viewed as (C/G, G*N, *S) by g viewed as (O, N, *out), stride
  and dilation swapped, cropped to the kernel, transposed;
- max_pool_grad / max_pool_pick: MaxPool's Indices with ScatterElements(add) / GatherElements;
- avg_pool_grad: g divided by the window counts, a ConvTranspose with a kernel of ones.
Gradient lowerings need static channel and spatial sizes (the batch may be symbolic).
"""
from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from irflow.executors.onnx.context import ONNX_DTYPE
from irflow.executors.onnx.lowering import lowering
from irflow.executors.onnx.lowering.conv import _ints, _static, emit_pool_pick
from irflow.executors.onnx.lowering.nn import input_type
from irflow.ir.dtypes import DType
from irflow.ops.conv_nd import window_counts


@lowering("conv")
def _conv(ctx, node, ins, outs):
    a = node.attrs
    ctx.emit("Conv", ins, outs, strides=list(a["strides"]), pads=list(a["pads"]), dilations=list(a["dilations"]),
             group=a["groups"])


@lowering("conv_transpose")
def _conv_transpose(ctx, node, ins, outs):
    a = node.attrs
    ctx.emit("ConvTranspose", ins, outs, strides=list(a["strides"]), pads=list(a["pads"]),
             dilations=list(a["dilations"]), group=a["groups"], output_padding=list(a["output_padding"]))


@lowering("conv_weight_grad")
def _conv_weight_grad(ctx, node, ins, outs):
    # dW[o, c, *k] = sum_{n, p} g[n, o, p] * xpad[n, c, p * s + k * d]: a convolution of x as
    # (C/G, G*N, *S) by g as (O, N, *out), with stride d and dilation s.
    a = node.attrs
    x, g = input_type(ctx, ins[0]), input_type(ctx, ins[1])
    c, o, sizes, out_sizes = x.shape[1], g.shape[1], x.shape[2:], g.shape[2:]
    _static(node, "channel and spatial sizes", c, o, *sizes, *out_sizes)
    r, groups, kernel = len(sizes), a["groups"], a["kernel_size"]
    strides, pads, dil = a["strides"], a["pads"], a["dilations"]
    cg, og = c // groups, o // groups
    xr = ctx.emit("Reshape", [ins[0], _ints(ctx, [-1, groups, cg, int(np.prod(sizes))])])[0]
    xt = ctx.emit("Transpose", [xr], 1, perm=[2, 1, 0, 3])[0]
    xin = ctx.emit("Reshape", [xt, _ints(ctx, [cg, -1, *sizes])])[0]
    gr = ctx.emit("Reshape", [ins[1], _ints(ctx, [-1, groups, og, int(np.prod(out_sizes))])])[0]
    gt = ctx.emit("Transpose", [gr], 1, perm=[1, 2, 0, 3])[0]
    gk = ctx.emit("Reshape", [gt, _ints(ctx, [o, -1, *out_sizes])])[0]
    y = ctx.emit("Conv", [xin, gk], 1, strides=list(dil), dilations=list(strides), group=groups, pads=list(pads))[0]
    full = [(sizes[i] + pads[i] + pads[r + i] - strides[i] * (out_sizes[i] - 1) - 1) // dil[i] + 1 for i in range(r)]
    if tuple(full) != tuple(kernel):  # the correlation reaches past the kernel: crop
        y = ctx.emit("Slice", [y, _ints(ctx, [0] * r), _ints(ctx, list(kernel)), _ints(ctx, list(range(2, 2 + r)))])[0]
    ctx.emit("Transpose", [y], outs, perm=[1, 0] + list(range(2, 2 + r)))


def _pool_attrs(node) -> dict:
    a = node.attrs
    return dict(kernel_shape=list(a["kernel_size"]), strides=list(a["strides"]), pads=list(a["pads"]),
                dilations=list(a["dilations"]))


@lowering("max_pool")
def _max_pool(ctx, node, ins, outs):
    ctx.emit("MaxPool", ins, outs, **_pool_attrs(node))


@lowering("max_pool_indices")
def _max_pool_indices(ctx, node, ins, outs):
    _, idx = ctx.emit("MaxPool", ins, 2, storage_order=node.attrs.get("storage_order", 0), **_pool_attrs(node))
    ctx.emit("Identity", [idx], outs)


@lowering("avg_pool")
def _avg_pool(ctx, node, ins, outs):
    ctx.emit("AveragePool", ins, outs, count_include_pad=0, **_pool_attrs(node))


@lowering("max_pool_grad")
def _max_pool_grad(ctx, node, ins, outs):
    dtype = node.outputs[0].type.dtype
    wide = DType.float32 if dtype in (DType.float16, DType.bfloat16) else dtype  # no 16-bit ScatterElements-add
    _, idx = ctx.emit("MaxPool", [ins[0]], 2, **_pool_attrs(node))
    flat_idx = ctx.emit("Reshape", [idx, _ints(ctx, [-1])])[0]
    g = ctx.emit("Reshape", [ins[1], _ints(ctx, [-1])])[0]
    if wide is not dtype:
        g = ctx.emit("Cast", [g], 1, to=ONNX_DTYPE[wide])[0]
    size = ctx.emit("Reshape", [ctx.emit("Size", [ins[0]])[0], _ints(ctx, [1])])[0]
    zeros = ctx.emit("ConstantOfShape", [size], 1, value=numpy_helper.from_array(np.zeros((1,), dtype=wide.numpy)))[0]
    flat = ctx.emit("ScatterElements", [zeros, flat_idx, g], 1, axis=0, reduction="add")[0]
    shape = ctx.emit("Shape", [ins[0]])[0]
    if wide is dtype:
        ctx.emit("Reshape", [flat, shape], outs)
    else:
        ctx.emit("Cast", [ctx.emit("Reshape", [flat, shape])[0]], outs, to=ONNX_DTYPE[dtype])


@lowering("max_pool_pick")
def _max_pool_pick(ctx, node, ins, outs):
    emit_pool_pick(ctx, ins[0], ins[1], _pool_attrs(node), outs)


@lowering("avg_pool_grad")
def _avg_pool_grad(ctx, node, ins, outs):
    a = node.attrs
    g, x = input_type(ctx, ins[0]), input_type(ctx, ins[1])
    sizes, out_sizes = x.shape[2:], g.shape[2:]
    _static(node, "spatial sizes", *sizes, *out_sizes)
    r, kernel, strides, pads, dil = len(sizes), a["kernel_size"], a["strides"], a["pads"], a["dilations"]
    counts = window_counts(sizes, kernel, strides, pads, dil, out_sizes, g.dtype.numpy)
    share = ctx.emit("Div", [ins[0], ctx.const(counts, "window_counts")])[0]
    planes = ctx.emit("Reshape", [share, _ints(ctx, [-1, 1, *out_sizes])])[0]
    ones = ctx.const(np.ones((1, 1, *kernel), dtype=g.dtype.numpy), "ones")
    out_pad = [(sizes[i] + pads[i] + pads[r + i] - dil[i] * (kernel[i] - 1) - 1) % strides[i] for i in range(r)]
    spread = ctx.emit("ConvTranspose", [planes, ones], 1, strides=list(strides), pads=list(pads), dilations=list(dil),
                      output_padding=out_pad)[0]
    ctx.emit("Reshape", [spread, ctx.emit("Shape", [ins[1]])[0]], outs)
