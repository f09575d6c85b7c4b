"""NumPy kernels of the vision sampling ops (``irflow/ops/vision.py``): grid_sample gathers each
tap combination from the flattened spatial dims (one ``take_along_axis`` per combination, 2^r for
linear, 4^r for cubic) and adds them weighted. 16-bit floats are computed in float32."""
from __future__ import annotations

import itertools
import math

import numpy as np

from irflow.ir.dtypes import dtype_of_array
from irflow.ir.types import TensorType
from irflow.executors.numpy.kernels import kernel
from irflow.errors import ShapeError
from irflow.executors.numpy.kernels.conv_nd import _col2im
from irflow.ops.vision_conv import _col2im_type, _deform_conv_type, block_counts
from irflow.ops.vision import _grid_sample_type, _roi_align_type, combos, flat_index
from irflow.ops.vision_taps import NP, grid_taps, roi_axis_taps


def _work(dtype):
    return np.float32 if dtype.itemsize == 2 else dtype


@kernel("grid_sample")
def grid_sample(x, grid, *, mode, padding_mode, align_corners):
    # eager calls reach the kernel without the type rule: its checks, its messages (cheap)
    _grid_sample_type(TensorType(dtype=dtype_of_array(x), shape=x.shape),
                      TensorType(dtype=dtype_of_array(grid), shape=grid.shape), mode=mode,
                      padding_mode=padding_mode, align_corners=align_corners)
    n, c, sizes = x.shape[0], x.shape[1], tuple(x.shape[2:])
    work = _work(x.dtype)
    out = tuple(grid.shape[1:-1])
    p = math.prod(out)
    xf = x.reshape(n, c, -1).astype(work, copy=False)
    dims = grid_taps(NP, grid.reshape(n, p, len(sizes)).astype(work, copy=False), sizes, mode, padding_mode,
                     align_corners)
    y = np.zeros((n, c, p), work)
    for combo in combos(dims):
        weight = None
        for _, w, _, valid in combo:
            if w is not None:
                weight = w if weight is None else weight * w
            if valid is not None:
                weight = valid.astype(work) if weight is None else weight * valid
        v = np.take_along_axis(xf, flat_index(combo, sizes)[:, None, :], axis=2)
        y += v if weight is None else v * weight[:, None, :]
    return y.reshape((n, c) + out).astype(x.dtype, copy=False)


@kernel("roi_align")
def roi_align(x, rois, batch_indices, *, mode, output_height, output_width, sampling_ratio, spatial_scale,
              coordinate_transformation_mode):
    """One ROI at a time (the sample count per bin may differ per ROI). The bilinear weights are
    separable, so an average is two small matrices around x[b]: (oh, H) @ x[b] @ (W, ow); max
    takes the largest weighted tap of each sample, as the ONNX reference does."""
    _roi_align_type(*(TensorType(dtype=dtype_of_array(a), shape=a.shape) for a in (x, rois, batch_indices)),
                    mode=mode, output_height=output_height, output_width=output_width, sampling_ratio=sampling_ratio,
                    spatial_scale=spatial_scale, coordinate_transformation_mode=coordinate_transformation_mode)
    n, c, h, w = x.shape
    work = np.dtype(_work(x.dtype)).type
    xw = x.astype(work, copy=False)
    out = np.zeros((rois.shape[0], c, output_height, output_width), work)
    half = coordinate_transformation_mode == "half_pixel"
    for r, (roi, b) in enumerate(zip(rois.astype(work), batch_indices)):
        if not 0 <= b < n:
            raise ShapeError(f"roi_align: batch index {int(b)} of roi {r} is outside the batch of {n}")
        x1, y1, x2, y2 = (roi * work(spatial_scale) - work(0.5 if half else 0.0))
        rh, rw = y2 - y1, x2 - x1
        if not half:  # malformed ROIs become 1 x 1
            rh, rw = max(rh, work(1.0)), max(rw, work(1.0))
        bh, bw = rh / work(output_height), rw / work(output_width)
        gh = sampling_ratio or int(np.ceil(rh / output_height))
        gw = sampling_ratio or int(np.ceil(rw / output_width))
        if gh < 1 or gw < 1:  # an empty ROI: nothing sampled (the reference's count is 1)
            continue
        ylo, yhi, wyl, wyh, _ = roi_axis_taps(y1, bh, output_height, gh, h, work)
        xlo, xhi, wxl, wxh, _ = roi_axis_taps(x1, bw, output_width, gw, w, work)
        img = xw[b]
        if mode == "avg":
            ay = np.zeros((output_height, h), work)
            ax = np.zeros((output_width, w), work)
            rows_y = np.broadcast_to(np.arange(output_height)[:, None], ylo.shape)
            rows_x = np.broadcast_to(np.arange(output_width)[:, None], xlo.shape)
            np.add.at(ay, (rows_y, ylo), wyl)
            np.add.at(ay, (rows_y, yhi), wyh)
            np.add.at(ax, (rows_x, xlo), wxl)
            np.add.at(ax, (rows_x, xhi), wxh)
            out[r] = np.einsum("ph,chw,qw->cpq", ay, img, ax) / work(gh * gw)
        else:
            best = None
            for yi, wy in ((ylo, wyl), (yhi, wyh)):
                for xi, wx in ((xlo, wxl), (xhi, wxh)):
                    # (C, oh, gh, ow, gw): each sample's tap, weighted
                    v = img[:, yi[:, :, None, None], xi[None, None, :, :]] * (wy[:, :, None, None] * wx[None, None])
                    best = v if best is None else np.maximum(best, v)
            out[r] = best.max(axis=(2, 4))
    return out.astype(x.dtype, copy=False)


@kernel("col2im")
def col2im(x, *, image_shape, block_shape, strides, pads, dilations):
    _col2im_type(TensorType(dtype=dtype_of_array(x), shape=x.shape), image_shape=image_shape, block_shape=block_shape,
                 strides=strides, pads=pads, dilations=dilations)
    counts = block_counts(image_shape, block_shape, strides, pads, dilations)
    n, ck = x.shape[:2]
    cols = x.astype(_work(x.dtype), copy=False).reshape((n, ck // math.prod(block_shape)) + tuple(block_shape) + counts)
    return _col2im(cols, tuple(image_shape), block_shape, strides, pads, dilations, counts).astype(x.dtype, copy=False)


@kernel("col2im_dynamic")
def col2im_dynamic(x, image_shape, block_shape, *, strides, pads, dilations):
    return col2im(x, image_shape=tuple(int(v) for v in image_shape), block_shape=tuple(int(v) for v in block_shape),
                  strides=strides, pads=pads, dilations=dilations)


@kernel("deform_conv")
def deform_conv(x, w, offset, b=None, mask=None, *, strides, pads, dilations, groups, offset_groups):
    """Bilinear samples at the moved taps (zeros outside; coordinates and weights in float64, as
    the reference), gathered per offset group into columns (N, C, K, P), then one grouped GEMM."""
    types = [None if a is None else TensorType(dtype=dtype_of_array(a), shape=a.shape) for a in (x, w, offset, b, mask)]
    _deform_conv_type(*types, strides=strides, pads=pads, dilations=dilations, groups=groups,
                      offset_groups=offset_groups)
    n, c, sizes = x.shape[0], x.shape[1], tuple(x.shape[2:])
    o, kernel, out = w.shape[0], tuple(w.shape[2:]), tuple(offset.shape[2:])
    r, k, p, og = len(sizes), math.prod(kernel), math.prod(out), offset_groups
    off = offset.astype(np.float64).reshape(n, og, k, r, p)
    taps = np.stack(np.meshgrid(*[np.arange(kd) for kd in kernel], indexing="ij"), axis=-1).reshape(k, r)
    pos = np.stack(np.meshgrid(*[np.arange(od) for od in out], indexing="ij"), axis=-1).reshape(p, r)
    per_dim = []
    for j in range(r):
        u = (pos[:, j] * strides[j] - pads[j])[None, None, None, :] + (taps[:, j] * dilations[j])[None, None, :, None] \
            + off[:, :, :, j, :]                                                    # (N, OG, K, P)
        lo = np.floor(u)
        frac = u - lo
        per_dim.append([(lo + t, wt) for t, wt in ((0, 1 - frac), (1, frac))])
    xf = x.astype(np.float64).reshape(n, og, c // og, -1)
    cols = np.zeros((n, og, c // og, k * p))
    for combo in itertools.product(*per_dim):
        flat, weight = 0, 1.0
        for j, (i, wt) in enumerate(combo):
            inside = (i >= 0) & (i <= sizes[j] - 1)
            weight = weight * wt * inside
            flat = flat + np.clip(i, 0, sizes[j] - 1).astype(np.int64) * math.prod(sizes[j + 1:])
        v = np.take_along_axis(xf, flat.reshape(n, og, 1, k * p), axis=3)
        cols += v * weight.reshape(n, og, 1, k * p)
    if mask is not None:
        cols *= mask.astype(np.float64).reshape(n, og, 1, k * p)
    cols = cols.reshape(n, groups, (c // groups) * k, p)
    wm = w.astype(np.float64).reshape(groups, o // groups, (c // groups) * k)
    y = np.matmul(wm, cols).reshape((n, o) + out)
    if b is not None:
        y += b.astype(np.float64).reshape((1, o) + (1,) * r)
    return y.astype(x.dtype)
