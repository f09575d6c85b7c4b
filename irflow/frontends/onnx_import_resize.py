"""ONNX Resize (and Upsample) as gathers and weighted sums, one axis at a time.

Every mode ONNX defines (nearest, linear, cubic) is separable: along each resized axis the
output at position i is sum_k w_k[i] * x[idx_k[i]] over 1 (nearest), 2 (linear) or 4 (cubic)
taps. The taps and weights depend only on the static sizes and the attributes, so they are
computed here in NumPy, following the ONNX specification, and the graph holds `gather`,
`mul` and `add` ops: differentiable and exportable with no new op. Needs static input sizes
on the resized axes and constant scales/sizes/roi. Antialiasing is not supported.
"""
from __future__ import annotations

import numpy as np

from irflow.frontends.onnx_import_base import importer, np_dtype, rank_of
from irflow.ops.dispatch import bind


def _source_coords(n, out_size: int, in_size: int, scale: float, roi: tuple[float, float] | None) -> np.ndarray:
    """Where each output position samples the input (coordinate_transformation_mode)."""
    mode = n.attr("coordinate_transformation_mode", "half_pixel")
    x = np.arange(out_size, dtype=np.float64)
    width = scale * in_size  # the reference uses the unrounded output width here
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = out_size / (scale * in_size)
        center = in_size / 2
        return center * (1 - adjustment) + (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if width > 1 else np.zeros_like(x)
    if mode == "align_corners":
        return x * (in_size - 1) / (width - 1) if width != 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_crop_and_resize":
        start, end = roi
        if width != 1:
            return start * (in_size - 1) + x * (end - start) * (in_size - 1) / (width - 1)
        return np.full_like(x, 0.5 * (start + end) * (in_size - 1))
    raise n.unsupported(f"coordinate_transformation_mode {mode!r}")


def _nearest(n, coords: np.ndarray) -> np.ndarray:
    mode = n.attr("nearest_mode", "round_prefer_floor")
    frac = coords - np.floor(coords)
    if mode == "round_prefer_floor":
        return np.where(frac == 0.5, np.floor(coords), np.round(coords))
    if mode == "round_prefer_ceil":
        return np.where(frac == 0.5, np.ceil(coords), np.round(coords))
    if mode == "floor":
        return np.floor(coords)
    if mode == "ceil":
        return np.ceil(coords)
    raise n.unsupported(f"nearest_mode {mode!r}")


def _taps(n, coords: np.ndarray, in_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(indices, weights) per tap for the interpolation mode."""
    mode = n.attr("mode", "nearest")
    if mode == "nearest":
        idx = _nearest(n, coords)
        return [(np.clip(idx, 0, in_size - 1).astype(np.int64), np.ones_like(coords))]
    base = np.floor(coords)
    t = coords - base
    if mode == "linear":
        offsets, weights = (0, 1), (1 - t, t)
    elif mode == "cubic":
        a = n.attr("cubic_coeff_a", -0.75)

        def kernel(d):  # Keys' cubic convolution kernel
            d = np.abs(d)
            return np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                            np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0.0))

        offsets = (-1, 0, 1, 2)
        weights = tuple(kernel(t - o) for o in offsets)
    else:
        raise n.unsupported(f"mode {mode!r}")
    idxs = [base + o for o in offsets]
    if n.attr("exclude_outside", 0):
        inside = [(i >= 0) & (i <= in_size - 1) for i in idxs]
        weights = [w * m for w, m in zip(weights, inside)]
        total = np.sum(weights, axis=0)
        weights = [w / np.where(total == 0, 1, total) for w in weights]
    return [(np.clip(i, 0, in_size - 1).astype(np.int64), w) for i, w in zip(idxs, weights)]


@importer("Resize", "Upsample")
def _resize(n):
    x = n.input(0)
    r = rank_of(x)
    if n.attr("antialias", 0):
        raise n.unsupported("antialias=1")
    if n.op_type == "Upsample":
        scales_in, sizes_in, roi_in = n.const(1, "scales"), None, None
    else:
        roi_in = n.const(1, "roi") if n.has_input(1) else None
        scales_in = n.const(2, "scales") if n.has_input(2) else None
        sizes_in = n.const(3, "sizes") if n.has_input(3) else None
    axes = [n.axis(a, r, "axes") for a in (n.attr("axes") or range(r))]
    in_sizes = [x.shape[a] for a in axes]
    scales = np.ones(len(axes))
    if sizes_in is not None and np.asarray(sizes_in).size:
        sizes = [int(s) for s in n.const_ints(3, "sizes")]
        if len(sizes) != len(axes) or any(v < 0 for v in sizes):
            raise n.error(f"sizes {sizes} must be {len(axes)} non-negative numbers (one per resized axis)")
        if not all(isinstance(d, int) for d in in_sizes):
            raise n.unsupported("Resize needs static sizes on the resized axes")
        policy = n.attr("keep_aspect_ratio_policy", "stretch")
        if 0 in in_sizes:
            raise n.unsupported("Resize by sizes of an empty axis")
        ratios = [s / d for s, d in zip(sizes, in_sizes)]
        if policy != "stretch":
            one = min(ratios) if policy == "not_larger" else max(ratios)
            ratios = [one] * len(axes)
            sizes = [int(np.floor(one * d + 0.5)) for d in in_sizes]
        scales = np.asarray(ratios, dtype=np.float64)
        out_sizes = sizes
    else:
        if scales_in is None:
            raise n.error("neither scales nor sizes is given")
        s = np.asarray(scales_in, dtype=np.float64).reshape(-1)
        if len(s) not in (len(axes), r) or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise n.error(f"scales {s.tolist()} must be {len(axes)} finite positive numbers")
        scales = s if len(s) == len(axes) else s[axes]
        if not all(isinstance(d, int) for d in in_sizes):
            raise n.unsupported("Resize needs static sizes on the resized axes")
        out_sizes = [int(np.floor(d * sc)) for d, sc in zip(in_sizes, scales)]
    roi = None
    if roi_in is not None and np.asarray(roi_in).size:
        roi_arr = np.asarray(roi_in, dtype=np.float64).reshape(-1)
        k = len(roi_arr) // 2
        if len(roi_arr) not in (2 * len(axes), 2 * r):
            raise n.error(f"roi has {len(roi_arr)} values; it needs 2 x {len(axes)} (start and end per resized axis)")
        roi = [(roi_arr[i], roi_arr[k + i]) for i in (range(k) if k == len(axes) else axes)]
    extrapolate = n.attr("coordinate_transformation_mode", "half_pixel") == "tf_crop_and_resize"
    fill = n.attr("extrapolation_value", 0.0)
    y = x
    dtype = np_dtype(x)
    for j, a in enumerate(axes):
        in_size, out_size, scale = in_sizes[j], out_sizes[j], float(scales[j])
        if out_size == in_size and scale == 1.0 and not extrapolate:
            continue
        if out_size < 0 or not np.isfinite(scale) or scale <= 0:
            raise n.error(f"axis {a}: output size {out_size} from scale {scale} is not valid")
        n.check_fits((4, out_size), np.float64, f"Resize's taps along axis {a}")  # up to 4 index + weight arrays
        coords = _source_coords(n, out_size, in_size, scale, roi[j] if roi else None)
        bshape = (out_size,) + (1,) * (r - a - 1)  # weights broadcast along axis a
        total = None
        for idx, w in _taps(n, coords, in_size):
            picked = bind("gather", y, idx, axis=a)
            if not np.all(w == 1):
                picked = bind("mul", picked, w.reshape(bshape).astype(dtype))
            total = picked if total is None else bind("add", total, picked)
        y = total
        if extrapolate:
            outside = ((coords < 0) | (coords > in_size - 1)).reshape(bshape)
            if outside.any():
                y = bind("where", outside, np.asarray(fill, dtype=dtype), y)
    return y if y is not x else bind("identity", x)
