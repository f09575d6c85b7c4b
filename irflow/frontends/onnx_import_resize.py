"""ONNX Resize -> the ``resize`` op (``irflow/ops/resize.py``), which exports back as ONNX
Resize; Upsample (deprecated) -> gathers and weighted sums, one axis at a time, with the same
taps. Needs static input sizes on the resized axes and constant scales/sizes/roi.
Antialiasing is not supported.
"""
from __future__ import annotations

import numpy as np

from irflow.errors import IRValidationError
from irflow.frontends.onnx_import_base import importer, np_dtype, rank_of
from irflow.ops.dispatch import bind
from irflow.ops.resize import axis_taps, resize_attrs


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
        if not all(isinstance(d, int) for d, sc in zip(in_sizes, scales) if sc != 1.0):
            raise n.unsupported("Resize needs static sizes on the resized axes")
        out_sizes = [int(np.floor(d * sc)) if sc != 1.0 else d for d, sc in zip(in_sizes, scales)]
    roi = None
    if roi_in is not None and np.asarray(roi_in).size:
        roi_arr = np.asarray(roi_in, dtype=np.float64).reshape(-1)
        k = len(roi_arr) // 2
        if len(roi_arr) not in (2 * len(axes), 2 * r):
            raise n.error(f"roi has {len(roi_arr)} values; it needs 2 x {len(axes)} (start and end per resized axis)")
        roi = [(roi_arr[i], roi_arr[k + i]) for i in (range(k) if k == len(axes) else axes)]
    cmode = n.attr("coordinate_transformation_mode", "half_pixel")
    attrs = resize_attrs(mode=n.attr("mode", "nearest"), coordinate_transformation_mode=cmode,
                         nearest_mode=n.attr("nearest_mode", "round_prefer_floor"),
                         cubic_coeff_a=float(n.attr("cubic_coeff_a", -0.75)), exclude_outside=int(n.attr("exclude_outside", 0)),
                         extrapolation_value=float(n.attr("extrapolation_value", 0.0)))
    keep = []
    for j, a in enumerate(axes):
        in_size, out_size, scale = in_sizes[j], out_sizes[j], float(scales[j])
        if out_size == in_size and scale == 1.0 and cmode != "tf_crop_and_resize":
            continue
        if out_size < 0 or not np.isfinite(scale) or scale <= 0:
            raise n.error(f"axis {a}: output size {out_size} from scale {scale} is not valid")
        n.check_fits((4, out_size), np.float64, f"Resize's taps along axis {a}")  # up to 4 index + weight arrays
        keep.append(j)
    if not keep:
        return bind("identity", x)
    attrs.update(axes=tuple(axes[j] for j in keep), out_sizes=tuple(out_sizes[j] for j in keep),
                 scales=tuple(float(scales[j]) for j in keep),
                 roi=tuple(v for j in keep for v in roi[j]) if roi else None)
    try:
        axis_taps(attrs, 0, in_sizes[keep[0]])  # unknown modes: an UnsupportedOpError naming the node
    except IRValidationError as e:
        raise n.unsupported(str(e)) from None
    if n.op_type == "Resize":
        return bind("resize", x, **attrs)
    return _decomposed(x, attrs, r)


def _decomposed(x, attrs: dict, r: int):
    """Upsample (deprecated since opset 10) as gathers and weighted sums, one axis at a time."""
    y = x
    dtype = np_dtype(x)
    for j, a in enumerate(attrs["axes"]):
        taps, outside = axis_taps(attrs, j, x.shape[a])
        bshape = (attrs["out_sizes"][j],) + (1,) * (r - a - 1)  # weights broadcast along axis a
        total = None
        for idx, w in taps:
            picked = bind("gather", y, idx, axis=a)
            if not np.all(w == 1):
                picked = bind("mul", picked, w.reshape(bshape).astype(dtype))
            total = picked if total is None else bind("add", total, picked)
        y = total
        if outside is not None:
            y = bind("where", outside.reshape(bshape), np.asarray(attrs["extrapolation_value"], dtype=dtype), y)
    return y
