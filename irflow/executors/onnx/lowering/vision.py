"""ONNX lowerings of the vision sampling ops (``irflow/ops/vision.py``): each is the ONNX op of
the same name, so onnxruntime runs its own kernel. GridSample before opset 20 (GridSample-16)
takes 4-D inputs only and spells the modes bilinear / bicubic."""
from __future__ import annotations

import numpy as np

from irflow.errors import UnsupportedOpError
from irflow.executors.onnx.lowering import lowering
from irflow.executors.onnx.lowering.nn import input_type

_OLD_NAMES = {"linear": "bilinear", "cubic": "bicubic", "nearest": "nearest"}


@lowering("grid_sample")
def _grid_sample(ctx, node, ins, outs):
    a = node.attrs
    mode = a["mode"]
    if ctx.opset < 20:
        rank = input_type(ctx, ins[0]).rank
        if rank != 4:
            raise UnsupportedOpError(f"grid_sample node {node.name}: a {rank}-D input needs "
                                     f"GridSample-20 (export with opset >= 20; this export targets {ctx.opset})")
        mode = _OLD_NAMES[mode]
    ctx.emit("GridSample", ins, outs, mode=mode, padding_mode=a["padding_mode"], align_corners=int(a["align_corners"]))


@lowering("roi_align")
def _roi_align(ctx, node, ins, outs):
    a = node.attrs
    ctx.emit("RoiAlign", ins, outs, mode=a["mode"], output_height=a["output_height"], output_width=a["output_width"],
             sampling_ratio=a["sampling_ratio"], spatial_scale=float(a["spatial_scale"]),
             coordinate_transformation_mode=a["coordinate_transformation_mode"])


@lowering("col2im")
def _col2im(ctx, node, ins, outs):
    a = node.attrs
    ctx.emit("Col2Im", [ins[0], ctx.const(np.asarray(a["image_shape"], np.int64), "image_shape"),
                        ctx.const(np.asarray(a["block_shape"], np.int64), "block_shape")], outs,
             strides=list(a["strides"]), pads=list(a["pads"]), dilations=list(a["dilations"]))


@lowering("col2im_dynamic")
def _col2im_dynamic(ctx, node, ins, outs):
    a = node.attrs
    ctx.emit("Col2Im", ins, outs, strides=list(a["strides"]), pads=list(a["pads"]), dilations=list(a["dilations"]))


@lowering("deform_conv")
def _deform_conv(ctx, node, ins, outs):
    a = node.attrs
    if ctx.opset < 19:
        raise UnsupportedOpError(f"deform_conv node {node.name}: ONNX DeformConv needs opset >= 19 (this export "
                                 f"targets {ctx.opset})")
    kernel = input_type(ctx, ins[1]).shape[2:]
    ctx.emit("DeformConv", ins, outs, strides=list(a["strides"]), pads=list(a["pads"]), dilations=list(a["dilations"]),
             group=a["groups"], offset_group=a["offset_groups"], kernel_shape=list(kernel))
