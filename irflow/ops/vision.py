"""Sampling ops of vision models: ``grid_sample`` (ONNX GridSample, PyTorch's
``F.grid_sample``) and ``roi_align`` (ONNX RoiAlign, torchvision's ``roi_align``).

``grid_sample(x, grid)`` reads x (N, C, *D) at the normalized positions grid (N, *out, r) holds
(the last axis lists x, y[, z]: the spatial dims in reverse), with nearest, linear or cubic
(Keys, a = -0.75) interpolation and zeros / border / reflection padding, in 1 + r dims
(4-D images, 5-D volumes; cubic too). The taps are ``vision_taps.grid_taps``, written once:
the NumPy kernel evaluates them on arrays, the VJP on symbolic tensors. The VJP gives both
gradients, as PyTorch's: wrt x a scatter-add of the weighted cotangent, wrt the grid (a spatial
transformer's trainable part) the cotangent times the weights' derivatives (zero for nearest).
Gradients are defined almost everywhere: at a pixel boundary (an integer coordinate) the
one-sided derivative is the one of the right-hand cell, as PyTorch's.

>>> x = irf.tensor(np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4))
>>> grid = irf.tensor(np.array([[[[0.0, 0.0], [-1.0, -1.0]]]], dtype=np.float32))  # centre, corner
>>> irf.grid_sample(x, grid, align_corners=True).numpy()
array([[[[7.5, 0. ]]]], dtype=float32)
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from irflow.errors import DTypeError, IRValidationError, ShapeError, UnsupportedOpError
from irflow.ir.graph import Graph
from irflow.ir.dtypes import DType
from irflow.ir.types import TensorType
from irflow.ops.batching import LOOP, const_ints, fold_rule, reshape_to, shape_part
from irflow.ops.common import bind
from irflow.ops.builder import GraphBuilder
from irflow.ops.registry import Attr, defbatch, defop, defvjp, get_op
from irflow.ops.vision_taps import IR, grid_taps

GRID_MODES = ("nearest", "linear", "cubic")
PADDING_MODES = ("zeros", "border", "reflection")
_ALIASES = {"bilinear": "linear", "bicubic": "cubic"}  # PyTorch's and GridSample-16's names


def _grid_sample_type(x: TensorType, grid: TensorType, *, mode, padding_mode, align_corners) -> TensorType:
    if mode not in GRID_MODES or padding_mode not in PADDING_MODES:
        raise IRValidationError(f"grid_sample: mode {mode!r} must be one of {GRID_MODES} and padding_mode "
                                f"{padding_mode!r} one of {PADDING_MODES}")
    if not x.dtype.is_float or grid.dtype != x.dtype:
        raise DTypeError(f"grid_sample: x and grid must share one float dtype, got {x.dtype} and {grid.dtype}")
    r = x.rank - 2
    if r < 1 or grid.rank != r + 2 or grid.shape[-1] not in (r, None):
        raise ShapeError(f"grid_sample: x must be (N, C, *spatial) and grid (N, *out, {max(r, 1)}) with one "
                         f"coordinate per spatial dim; got x {x} and grid {grid}")
    n, gn = x.shape[0], grid.shape[0]
    if isinstance(n, int) and isinstance(gn, int) and n != gn:
        raise ShapeError(f"grid_sample: x has batch {n} but grid has batch {gn}")
    if any(isinstance(d, int) and d < 1 for d in x.shape[2:]):
        raise ShapeError(f"grid_sample: cannot sample an empty input {x}")
    return TensorType(dtype=x.dtype, shape=(n if isinstance(n, int) else gn, x.shape[1]) + tuple(grid.shape[1:-1]))


defop("grid_sample", _grid_sample_type, inputs=2, family="nn",
      attrs={"mode": Attr("str", default="linear"), "padding_mode": Attr("str", default="zeros"),
             "align_corners": Attr("int", default=0)},
      doc="ONNX GridSample / F.grid_sample: x (N, C, *D) read at grid (N, *out, r); nearest/linear/cubic.")
# x and grid both carry the op's own batch axis N: a vmapped batch folds into it.
defbatch("grid_sample", fold_rule("grid_sample"))


def combos(dims):
    """Every combination of one tap per spatial dim: (flat index, weight, valid, per-dim (w, dw))."""
    for combo in itertools.product(*[taps for taps, _ in dims]):
        yield combo


def flat_index(combo, sizes):
    """The taps' indices (one per dim) as one index into the flattened spatial dims."""
    flat = None
    for j, (idx, _, _, _) in enumerate(combo):
        stride = math.prod(sizes[j + 1:])
        term = idx * stride if stride != 1 else idx
        flat = term if flat is None else flat + term
    return flat


@defvjp("grid_sample")
def _grid_sample_vjp(g, x, grid, *, out, mode, padding_mode, align_corners):
    sizes = tuple(x.type.shape[2:])
    if not all(isinstance(d, int) for d in sizes):
        raise ShapeError(f"grid_sample's gradient needs static spatial sizes of x, got {x.type}")
    n, c = x.type.shape[:2]
    r, s = len(sizes), math.prod(sizes)
    out_sp = tuple(grid.type.shape[1:-1])
    p = math.prod(out_sp) if all(isinstance(d, int) for d in out_sp) else None
    gridf = reshape_to(grid, (n, p, r), lambda: bind("concat", shape_part(grid, 0, 1), const_ints([-1, r]), axis=0))
    gf = reshape_to(g, (n, c, p), lambda: bind("concat", shape_part(g, 0, 2), const_ints([-1]), axis=0))
    xf = reshape_to(x, (n, c, s), lambda: bind("concat", shape_part(x, 0, 2), const_ints([s]), axis=0))
    dims = grid_taps(IR, gridf, sizes, mode, padding_mode, align_corners)
    idxs, updates = [], []
    dcoord = [None] * r
    gsum_needed = mode != "nearest"
    for combo in combos(dims):
        flat = bind("broadcast_like", bind("expand_dims", flat_index(combo, sizes), axes=(1,)), gf)  # (N, C, P)
        weight, valid = None, None
        for _, w, _, v in combo:
            if w is not None:
                weight = w if weight is None else weight * w
            if v is not None:
                valid = v if valid is None else valid & v
        mask = None if valid is None else bind("cast", valid, dtype=x.type.dtype)
        full = weight if mask is None else (mask if weight is None else weight * mask)
        idxs.append(flat)
        updates.append(gf if full is None else gf * bind("expand_dims", full, axes=(1,)))
        if gsum_needed:
            gv = bind("reduce_sum", gf * bind("gather_elements", xf, flat, axis=2), axes=(1,), keepdims=False)  # (N, P)
            if mask is not None:
                gv = gv * mask
            for j in range(r):
                term = combo[j][2]
                for i in range(r):
                    if i != j:
                        term = term * combo[i][1]
                term = gv * term
                dcoord[j] = term if dcoord[j] is None else dcoord[j] + term
    index = idxs[0] if len(idxs) == 1 else bind("concat", *idxs, axis=2)
    upd = updates[0] if len(updates) == 1 else bind("concat", *updates, axis=2)
    gx = bind("reshape_like", bind("scatter_elements", bind("zeros_like", xf), index, upd, axis=2, reduction="add"), x)
    if not gsum_needed:
        return gx, bind("zeros_like", grid)
    # the grid's last axis lists the spatial dims in reverse (x = the last dim first)
    parts = [dcoord[j] * dims[j][1] for j in reversed(range(r))]
    ggrid = bind("reshape_like", bind("stack", *parts, axis=2), grid)
    return gx, ggrid


def grid_sample(x, grid, mode: str = "linear", padding_mode: str = "zeros", align_corners: bool = False):
    """Sample ``x`` (N, C, *D) at the normalized positions in ``grid`` (N, *out, r), as
    ``torch.nn.functional.grid_sample`` and ONNX GridSample: -1 and 1 are the centres of the edge
    pixels (``align_corners=True``) or their outer edges (False). ``mode``: "nearest",
    "linear" ("bilinear") or "cubic" ("bicubic"); ``padding_mode``: "zeros", "border",
    "reflection". Differentiable wrt x and grid.

    >>> x = irf.tensor(np.arange(4.0, dtype=np.float32).reshape(1, 1, 2, 2))
    >>> irf.grid_sample(x, irf.tensor(np.zeros((1, 1, 1, 2), np.float32))).numpy()  # the centre
    array([[[[1.5]]]], dtype=float32)
    """
    mode = _ALIASES.get(mode, mode)
    return bind("grid_sample", x, grid, mode=mode, padding_mode=padding_mode, align_corners=int(bool(align_corners)))



# -- roi_align -----------------------------------------------------------------------------------------
ROI_MODES = ("avg", "max")
ROI_COORDINATE_MODES = ("half_pixel", "output_half_pixel")


def _roi_align_type(x: TensorType, rois: TensorType, batch_indices: TensorType, *, mode, output_height, output_width,
                    sampling_ratio, spatial_scale, coordinate_transformation_mode) -> TensorType:
    if mode not in ROI_MODES or coordinate_transformation_mode not in ROI_COORDINATE_MODES:
        raise IRValidationError(f"roi_align: mode {mode!r} must be one of {ROI_MODES} and coordinate_transformation_mode "
                                f"{coordinate_transformation_mode!r} one of {ROI_COORDINATE_MODES}")
    if output_height < 1 or output_width < 1 or sampling_ratio < 0:
        raise IRValidationError(f"roi_align: output_height {output_height} and output_width {output_width} must be "
                                f">= 1 and sampling_ratio {sampling_ratio} >= 0")
    if not x.dtype.is_float or rois.dtype != x.dtype:
        raise DTypeError(f"roi_align: x and rois must share one float dtype, got {x.dtype} and {rois.dtype}")
    if batch_indices.dtype != DType.int64:
        raise DTypeError(f"roi_align: batch_indices must be int64, got {batch_indices.dtype}")
    if x.rank != 4 or rois.rank != 2 or rois.shape[1] not in (4, None) or batch_indices.rank != 1:
        raise ShapeError(f"roi_align: x must be (N, C, H, W), rois (R, 4) and batch_indices (R,); got x {x}, "
                         f"rois {rois}, batch_indices {batch_indices}")
    r, br = rois.shape[0], batch_indices.shape[0]
    if isinstance(r, int) and isinstance(br, int) and r != br:
        raise ShapeError(f"roi_align: {r} rois but {br} batch indices")
    return TensorType(dtype=x.dtype, shape=(r if isinstance(r, int) else br, x.shape[1], output_height, output_width))


defop("roi_align", _roi_align_type, inputs=3, family="nn",
      attrs={"mode": Attr("str", default="avg"), "output_height": Attr("int", default=1),
             "output_width": Attr("int", default=1), "sampling_ratio": Attr("int", default=0),
             "spatial_scale": Attr("float", default=1.0),
             "coordinate_transformation_mode": Attr("str", default="half_pixel")},
      doc="ONNX RoiAlign: (R, C, oh, ow) bilinear average (or max) pooling of x over each ROI.")


def roi_align_graph(types, attrs) -> Graph:
    """roi_align (mode avg, sampling_ratio > 0) written with differentiable ops: each ROI's image
    gathered, ``grid_sample`` (linear, border, align_corners) at the sample points (the reference
    clamps a sample in [-1, 0) to pixel 0 and one past the last pixel to it: border padding),
    times 0 for samples outside [-1, size], averaged per bin. The VJP differentiates it."""
    x, rois, idx = types
    if attrs["mode"] != "avg" or attrs["sampling_ratio"] < 1:
        raise UnsupportedOpError(f"roi_align's gradient is written for mode='avg' with a fixed sampling_ratio >= 1 (the "
                                 f"sample count of sampling_ratio=0 depends on each ROI's size); got mode="
                                 f"{attrs['mode']!r}, sampling_ratio={attrs['sampling_ratio']}")
    if not (x.is_static and rois.is_static) or 1 in x.shape[2:]:
        raise ShapeError(f"roi_align's gradient needs static shapes and spatial sizes > 1, got {x} and {rois}")
    n_r, c, (h, w) = rois.shape[0], x.shape[1], x.shape[2:]
    oh, ow, s = attrs["output_height"], attrs["output_width"], attrs["sampling_ratio"]
    dt = x.dtype.numpy
    half = attrs["coordinate_transformation_mode"] == "half_pixel"
    gb = GraphBuilder("roi_align_samples")
    with gb:
        xi, ri, ii = gb.input("x", x.dtype, x.shape), gb.input("rois", rois.dtype, rois.shape), gb.input("idx", idx.dtype, idx.shape)
        box = bind("sub", bind("mul", ri, np.asarray(attrs["spatial_scale"], dt)), np.asarray(0.5 if half else 0.0, dt))

        def axis_points(lo_col, hi_col, bins, size):
            start = bind("slice", box, starts=(lo_col,), ends=(lo_col + 1,), axes=(1,), steps=None)   # (R, 1)
            length = bind("sub", bind("slice", box, starts=(hi_col,), ends=(hi_col + 1,), axes=(1,), steps=None), start)
            if not half:
                length = bind("maximum", length, np.asarray(1.0, dt))
            frac = ((np.arange(bins)[:, None] + (np.arange(s)[None, :] + 0.5) / s).reshape(1, -1) / bins).astype(dt)
            u = bind("add", start, bind("mul", length, frac))                                          # (R, bins*s)
            valid = bind("cast", bind("logical_and", bind("greater_equal", u, np.asarray(-1.0, dt)),
                                      bind("less_equal", u, np.asarray(float(size), dt))), dtype=x.dtype)
            return bind("sub", bind("mul", u, np.asarray(2.0 / (size - 1), dt)), np.asarray(1.0, dt)), valid

        gy, vy = axis_points(1, 3, oh, h)
        gx, vx = axis_points(0, 2, ow, w)
        shape = (n_r, oh * s, ow * s)
        grid = bind("stack", bind("broadcast_to", bind("expand_dims", gx, axes=(1,)), shape=shape),
                    bind("broadcast_to", bind("expand_dims", gy, axes=(2,)), shape=shape), axis=3)
        samples = bind("grid_sample", bind("gather", xi, ii, axis=0), grid, mode="linear", padding_mode="border",
                       align_corners=1)                                                              # (R, C, oh*s, ow*s)
        valid = bind("mul", bind("expand_dims", vy, axes=(1, 3)), bind("expand_dims", vx, axes=(1, 2)))
        samples = bind("reshape", bind("mul", samples, valid), shape=(n_r, c, oh, s, ow, s))
        gb.output(bind("reduce_mean", samples, axes=(3, 5), keepdims=False))
    return gb.build()


@defvjp("roi_align")
def _roi_align_vjp(g, x, rois, batch_indices, *, out, **attrs):
    graph = roi_align_graph((x.type, rois.type, batch_indices.type), attrs)
    return get_op("call").vjp(g, x, rois, batch_indices, out=out, graph=graph)


# A vmapped x would fold into N only with each example's batch_indices shifted by b * N; the
# op runs in a scan over the batch instead.
defbatch("roi_align", LOOP)


def roi_align(x, rois, batch_indices, output_size=(1, 1), spatial_scale: float = 1.0, sampling_ratio: int = 0,
              mode: str = "avg", aligned: bool = True):
    """Pool each region of interest of ``x`` (N, C, H, W) to ``output_size`` bins: ONNX RoiAlign,
    torchvision's ``roi_align`` (``aligned=True`` is ONNX's half_pixel). ``rois`` (R, 4) holds
    (x1, y1, x2, y2) in input coordinates (times ``spatial_scale``), ``batch_indices`` (R,) the
    image of each. ``sampling_ratio`` samples per bin side (0: as many as the bin is wide).
    Differentiable wrt x and rois for mode "avg" with sampling_ratio >= 1 (``roi_align_graph``).

    >>> x = irf.tensor(np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4))
    >>> rois = irf.tensor(np.array([[0.0, 0.0, 2.0, 2.0]], np.float32))
    >>> irf.roi_align(x, rois, irf.tensor(np.array([0])), output_size=(1, 1), sampling_ratio=1).numpy()  # at (0.5, 0.5)
    array([[[[2.5]]]], dtype=float32)
    """
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    return bind("roi_align", x, rois, batch_indices, mode=mode, output_height=int(oh), output_width=int(ow),
                sampling_ratio=int(sampling_ratio), spatial_scale=float(spatial_scale),
                coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel")


__all__ = ["grid_sample", "roi_align"]
