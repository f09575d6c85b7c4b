"""ONNX Resize -> the ``resize`` op (``irflow/ops/resize.py``), which exports back as ONNX
Resize; Upsample (deprecated) -> gathers and weighted sums, one axis at a time, with the same
taps. That needs static input sizes on the resized axes and constant scales/sizes/roi; when
one of them is computed at run time (or a resized axis has a symbolic size) the node becomes
``resize_dynamic`` (``irflow/ops/resize_dynamic.py``), which reads them when it runs.
Antialiasing (linear and cubic) is supported on both paths.
"""
from __future__ import annotations

import numpy as np

from irflow.errors import IRValidationError, ShapeError
from irflow.frontends.onnx_import_base import importer, np_dtype, rank_of
from irflow.ops.dispatch import bind
from irflow.ops.resize import axis_taps, resize_attrs, tap_count


def _slots(n) -> dict[str, int]:
    return {"scales": 1} if n.op_type == "Upsample" else {"roi": 1, "scales": 2, "sizes": 3}


def _given(n, i: int) -> bool:
    """Input ``i`` is there and not an empty tensor (ONNX marks an unused scales/roi so)."""
    if not n.has_input(i):
        return False
    known = n.ctx.known_value(n.input_names[i])
    if known is not None:
        return np.asarray(known).size > 0
    shape = n.input(i).shape
    return not (len(shape) == 1 and shape[0] == 0)


class _RunTime(Exception):
    """The static path cannot be taken: import as ``resize_dynamic``."""


@importer("Resize", "Upsample")
def _resize(n):
    x = n.input(0)
    r = rank_of(x)
    slots = _slots(n)
    if any(n.run_time(i) for i in slots.values()):
        return _at_run_time(n, x, r, slots)
    try:
        return _static(n, x, r, slots)
    except _RunTime:
        return _at_run_time(n, x, r, slots)


def _mode_attrs(n) -> dict:
    return dict(mode=n.attr("mode", "nearest"), coordinate_transformation_mode=n.attr("coordinate_transformation_mode", "half_pixel"),
                nearest_mode=n.attr("nearest_mode", "round_prefer_floor"), cubic_coeff_a=float(n.attr("cubic_coeff_a", -0.75)),
                exclude_outside=int(n.attr("exclude_outside", 0)), extrapolation_value=float(n.attr("extrapolation_value", 0.0)),
                antialias=int(n.attr("antialias", 0)) if n.attr("mode", "nearest") != "nearest" else 0)  # nearest ignores it


def _at_run_time(n, x, r: int, slots: dict[str, int]):
    """``resize_dynamic`` with the given inputs (run-time or constant) as inputs."""
    args = {k: (n.input(i) if _given(n, i) else None) for k, i in slots.items()}
    if (args.get("scales") is None) == (args.get("sizes") is None):
        raise n.error("exactly one of scales and sizes must be given (the other omitted or empty)")
    axes = n.attr("axes")
    attrs = dict(_mode_attrs(n), keep_aspect_ratio_policy=n.attr("keep_aspect_ratio_policy", "stretch"),
                 axes=None if axes is None else tuple(n.axis(a, r, "axes") for a in axes))
    try:
        return bind("resize_dynamic", x, args.get("roi"), args.get("scales"), args.get("sizes"), **attrs)
    except IRValidationError as e:  # an unknown mode
        raise n.unsupported(str(e)) from None
    except ShapeError as e:
        raise n.error(str(e)) from None


def _static(n, x, r: int, slots: dict[str, int]):
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
            raise _RunTime  # a symbolic size: the ratio is known only at run time
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
            raise _RunTime  # the output size of a symbolic axis is known only at run time
        out_sizes = [int(np.floor(d * sc)) if sc != 1.0 else d for d, sc in zip(in_sizes, scales)]
    roi = None
    if roi_in is not None and np.asarray(roi_in).size:
        roi_arr = np.asarray(roi_in, dtype=np.float64).reshape(-1)
        k = len(roi_arr) // 2
        if len(roi_arr) not in (2 * len(axes), 2 * r):
            raise n.error(f"roi has {len(roi_arr)} values; it needs 2 x {len(axes)} (start and end per resized axis)")
        roi = [(roi_arr[i], roi_arr[k + i]) for i in (range(k) if k == len(axes) else axes)]
    attrs = resize_attrs(**_mode_attrs(n))
    cmode = attrs["coordinate_transformation_mode"]
    keep = []
    for j, a in enumerate(axes):
        in_size, out_size, scale = in_sizes[j], out_sizes[j], float(scales[j])
        if out_size == in_size and scale == 1.0 and cmode != "tf_crop_and_resize":
            continue
        if out_size < 0 or not np.isfinite(scale) or scale <= 0:
            raise n.error(f"axis {a}: output size {out_size} from scale {scale} is not valid")
        taps = tap_count(attrs["mode"], attrs["antialias"], scale)  # index + weight arrays per tap
        n.check_fits((taps, out_size), np.float64, f"Resize's taps along axis {a}")
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
