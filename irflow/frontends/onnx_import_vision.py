"""ONNX vision ops -> IR ops of the same name (``irflow/ops/vision.py``), each exporting back as
itself: GridSample -> ``grid_sample`` (GridSample-16's mode names bilinear / bicubic read as
GridSample-20's linear / cubic), RoiAlign -> ``roi_align``,
Col2Im -> ``col2im`` (sizes known at import) or ``col2im_dynamic`` (sizes computed at run time),
DeformConv -> ``deform_conv``."""
from __future__ import annotations

import numpy as np

from irflow.frontends.onnx_import_base import importer, np_dtype, rank_of
from irflow.ops.dispatch import bind
from irflow.ops.vision import GRID_MODES, PADDING_MODES, ROI_COORDINATE_MODES, ROI_MODES, _ALIASES


@importer("GridSample")
def _grid_sample(n):
    x, grid = n.input(0), n.input(1)
    mode = n.attr("mode", "linear" if n.opset >= 20 else "bilinear")
    mode = _ALIASES.get(mode, mode)
    padding = n.attr("padding_mode", "zeros")
    if mode not in GRID_MODES or padding not in PADDING_MODES:
        raise n.unsupported(f"mode {mode!r} / padding_mode {padding!r}")
    if rank_of(x) < 3:
        raise n.error(f"X must be (N, C, D1, ...), it has rank {rank_of(x)}")
    if np_dtype(grid) != np_dtype(x):  # GridSample lets the grid's float type differ from X's
        grid = bind("cast", grid, dtype=np_dtype(x))
    return bind("grid_sample", x, grid, mode=mode, padding_mode=padding, align_corners=int(n.attr("align_corners", 0)))


@importer("RoiAlign")
def _roi_align(n):
    x, rois, idx = n.input(0), n.input(1), n.input(2)
    mode = n.attr("mode", "avg")
    # RoiAlign-10 had no coordinate_transformation_mode: its behaviour is output_half_pixel
    cmode = n.attr("coordinate_transformation_mode", "half_pixel" if n.opset >= 16 else "output_half_pixel")
    if mode not in ROI_MODES or cmode not in ROI_COORDINATE_MODES:
        raise n.unsupported(f"mode {mode!r} / coordinate_transformation_mode {cmode!r}")
    if np_dtype(rois) != np_dtype(x):  # RoiAlign's rois share X's type; say so here, not in a type rule
        raise n.error(f"rois ({np_dtype(rois)}) must have X's type ({np_dtype(x)})")
    return bind("roi_align", x, rois, idx, mode=mode, output_height=int(n.attr("output_height", 1)),
                output_width=int(n.attr("output_width", 1)), sampling_ratio=int(n.attr("sampling_ratio", 0)),
                spatial_scale=float(n.attr("spatial_scale", 1.0)), coordinate_transformation_mode=cmode)


@importer("Col2Im")
def _col2im(n):
    x = n.input(0)
    if not (n.has_input(1) and n.has_input(2)):
        raise n.error("needs both image_shape and block_shape")
    shapes = [n.type(i) for i in (1, 2)]
    if any(t is None or t.rank != 1 or t.dtype.name != "int64" or not isinstance(t.shape[0], int) for t in shapes):
        raise n.error(f"image_shape and block_shape must be int64 vectors of a static length, got {shapes}")
    r = shapes[0].shape[0]
    if r < 1 or shapes[1].shape[0] != r:
        raise n.error(f"image_shape and block_shape must both give one size per spatial dim, got {shapes}")
    known = n.ctx.known_value(n.input_names[1]), n.ctx.known_value(n.input_names[2])
    strides = tuple(n.attr("strides") or [1] * r)
    pads = tuple(n.attr("pads") or [0] * (2 * r))
    dilations = tuple(n.attr("dilations") or [1] * r)
    if any(v is None for v in known):  # sizes computed at run time: output sizes unknown until then
        return bind("col2im_dynamic", x, n.input(1), n.input(2), strides=strides, pads=pads, dilations=dilations)
    image, block = n.const_ints(1, "image_shape"), n.const_ints(2, "block_shape")
    if len(block) != r or min(image) < 1 or min(block) < 1:
        raise n.error(f"image_shape {list(image)} and block_shape {list(block)} must be positive, one per spatial dim")
    n.check_fits((np.prod(block, dtype=np.float64),), np.float64, "Col2Im's block")
    return bind("col2im", x, image_shape=tuple(image), block_shape=tuple(block), strides=strides, pads=pads,
                dilations=dilations)


@importer("DeformConv")
def _deform_conv(n):
    x, w = n.input(0), n.input(1)
    r = rank_of(x) - 2
    if r < 1 or rank_of(w) != r + 2:
        raise n.error(f"X must be (N, C, D1, ...) and W (O, C/group, k1, ...); got ranks {rank_of(x)} and {rank_of(w)}")
    kernel = n.attr("kernel_shape")
    if kernel and tuple(kernel) != tuple(n.type(1).shape[2:]):
        raise n.error(f"kernel_shape {list(kernel)} does not match W's spatial dims {n.type(1).shape[2:]}")
    return bind("deform_conv", x, w, n.input(2), n.input(3) if n.has_input(3) else None,
                n.input(4) if n.has_input(4) else None, strides=tuple(n.attr("strides") or [1] * r),
                pads=tuple(n.attr("pads") or [0] * (2 * r)), dilations=tuple(n.attr("dilations") or [1] * r),
                groups=int(n.attr("group", 1)), offset_groups=int(n.attr("offset_group", 1)))
