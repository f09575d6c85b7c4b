"""``resize``: ONNX Resize as one op (nearest, linear, cubic; every coordinate mode).

Every mode is separable: along each resized axis, output position i is
``sum_k w_k[i] * x[idx_k[i]]`` over 1 (nearest), 2 (linear) or 4 (cubic) taps whose indices
and weights depend only on the static sizes and the attributes (``axis_taps``, following the
ONNX specification). The NumPy kernel gathers with them; the VJP multiplies the gradient by
each axis' transposed (out, in) interpolation matrix, a ``matmul`` with a constant; the ONNX
lowering is ONNX ``Resize`` itself, so an imported model exports as onnxruntime's native,
fused op (before this op, import decomposed Resize into gathers, muls and adds, which ran
2.4-3.8x slower than onnxruntime on the original UNet).

Attributes: ``axes`` (the resized axes), ``out_sizes`` (their output sizes), ``scales`` (the
per-axis scale the coordinate transform uses; ONNX's scale, or out/in when sizes were given),
``mode``, ``coordinate_transformation_mode``, ``nearest_mode``, ``cubic_coeff_a``,
``exclude_outside``, ``extrapolation_value``, ``roi`` (2 per axis for tf_crop_and_resize),
``antialias`` (linear and cubic downscaling: the kernel widened by 1/scale, 2 * ceil(R / scale)
taps). The resized axes must have static input sizes; ``resize_dynamic``
(irflow/ops/resize_dynamic.py) is Resize with run-time scales / sizes / roi, with the same taps.

>>> y = bind("resize", x, axes=(2, 3), out_sizes=(16, 16), scales=(2.0, 2.0), mode="linear")   # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any

import numpy as np

from irflow.errors import IRValidationError, ShapeError
from irflow.ir.types import TensorType
from irflow.ops.common import bind
from irflow.ops.registry import Attr, defbatch, defop, defvjp

MODES = ("nearest", "linear", "cubic")
COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                    "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def source_coords(coordinate_mode: str, out_size: int, in_size: int, scale: float, roi) -> np.ndarray:
    """Where each output position samples the input (ONNX coordinate_transformation_mode)."""
    x = np.arange(out_size, dtype=np.float64)
    width = scale * in_size  # the reference uses the unrounded output width here
    if coordinate_mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if coordinate_mode == "half_pixel_symmetric":
        adjustment = out_size / (scale * in_size)
        return in_size / 2 * (1 - adjustment) + (x + 0.5) / scale - 0.5
    if coordinate_mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if width > 1 else np.zeros_like(x)
    if coordinate_mode == "align_corners":
        return x * (in_size - 1) / (width - 1) if width != 1 else np.zeros_like(x)
    if coordinate_mode == "asymmetric":
        return x / scale
    if coordinate_mode == "tf_crop_and_resize":
        start, end = roi
        if width != 1:
            return start * (in_size - 1) + x * (end - start) * (in_size - 1) / (width - 1)
        return np.full_like(x, 0.5 * (start + end) * (in_size - 1))
    raise IRValidationError(f"resize: coordinate_transformation_mode {coordinate_mode!r} is not one of {COORDINATE_MODES}")


def _nearest(nearest_mode: str, coords: np.ndarray) -> np.ndarray:
    frac = coords - np.floor(coords)
    if nearest_mode == "round_prefer_floor":
        return np.where(frac == 0.5, np.floor(coords), np.round(coords))
    if nearest_mode == "round_prefer_ceil":
        return np.where(frac == 0.5, np.ceil(coords), np.round(coords))
    if nearest_mode == "floor":
        return np.floor(coords)
    if nearest_mode == "ceil":
        return np.ceil(coords)
    raise IRValidationError(f"resize: nearest_mode {nearest_mode!r} is not one of {NEAREST_MODES}")


def _keys_cubic(a: float):
    def kernel(d):  # Keys' cubic convolution kernel
        d = np.abs(d)
        return np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                        np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0.0))

    return kernel


def taps_1d(*, mode: str, coordinate_transformation_mode: str, nearest_mode: str, cubic_coeff_a: float,
            exclude_outside: int, antialias: int, in_size: int, out_size: int, scale: float,
            roi: tuple[float, float] | None) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray | None]:
    """(indices, weights) per tap along one resized axis (output position i is
    ``sum_k w_k[i] * x[idx_k[i]]``), and the positions outside the input (tf_crop_and_resize's
    extrapolation) or None. Indices are clamped into the input (the specification's edge padding).

    ``antialias`` (linear and cubic only, as the specification says; nearest ignores it): when
    downscaling, the kernel is stretched by 1/scale (``K(scale * d)``), so it spans
    2 * ceil(R / scale) taps (R = 1 linear, 2 cubic), normalized to sum 1.
    """
    cmode = coordinate_transformation_mode
    if out_size == 0:  # nothing to sample (and a tiny antialias scale would ask for a huge window)
        return [(np.zeros(0, np.int64), np.zeros(0))], None
    coords = source_coords(cmode, out_size, in_size, scale, roi)
    if mode == "nearest":
        idx = _nearest(nearest_mode, coords)
        taps = [(np.clip(idx, 0, in_size - 1).astype(np.int64), np.ones_like(coords))]
    else:
        base = np.floor(coords)
        t = coords - base
        if mode not in ("linear", "cubic"):
            raise IRValidationError(f"resize: mode {mode!r} is not one of {MODES}")
        if antialias and scale < 1:
            reach = 1 if mode == "linear" else 2
            kern = (lambda d: np.clip(1 - np.abs(d), 0, None)) if mode == "linear" else _keys_cubic(float(cubic_coeff_a))
            start = int(np.floor(-reach / scale)) + 1  # the window covers every tap with a nonzero weight
            offsets = tuple(range(start, 1 - start + 1))
            weights = [kern(scale * (o - t)) for o in offsets]
            total = np.sum(weights, axis=0)
            weights = [w / total for w in weights]
        elif mode == "linear":
            offsets, weights = (0, 1), [1 - t, t]
        else:
            kern = _keys_cubic(float(cubic_coeff_a))
            offsets = (-1, 0, 1, 2)
            weights = [kern(t - o) for o in offsets]
        idxs = [base + o for o in offsets]
        if exclude_outside:
            inside = [(i >= 0) & (i <= in_size - 1) for i in idxs]
            weights = [w * m for w, m in zip(weights, inside)]
            total = np.sum(weights, axis=0)
            weights = [w / np.where(total == 0, 1, total) for w in weights]
        taps = [(np.clip(i, 0, in_size - 1).astype(np.int64), w) for i, w in zip(idxs, weights)]
    outside = None
    if cmode == "tf_crop_and_resize":
        outside = (coords < 0) | (coords > in_size - 1)
        if not outside.any():
            outside = None
    return taps, outside


def tap_count(mode: str, antialias: int, scale: float) -> int:
    """How many taps ``taps_1d`` gives per output position (for import-time size checks)."""
    if mode == "nearest":
        return 1
    reach = 1 if mode == "linear" else 2
    if antialias and scale < 1:
        return 2 * int(np.ceil(reach / scale))
    return 2 * reach


_TAP_ATTRS = ("mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside", "antialias")


def axis_taps(attrs: dict, j: int, in_size: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray | None]:
    """``taps_1d`` of the j-th resized axis of a ``resize`` op."""
    roi = attrs["roi"]
    return taps_1d(**{k: attrs.get(k, 0) for k in _TAP_ATTRS}, in_size=in_size, out_size=attrs["out_sizes"][j],
                   scale=float(attrs["scales"][j]), roi=(roi[2 * j], roi[2 * j + 1]) if roi else None)


def interpolation_matrix(attrs: dict, j: int, in_size: int) -> np.ndarray:
    """The (out, in) matrix M of the j-th resized axis: y = M @ x along that axis (0 rows where
    tf_crop_and_resize extrapolates)."""
    taps, outside = axis_taps(attrs, j, in_size)
    m = np.zeros((attrs["out_sizes"][j], in_size))
    rows = np.arange(m.shape[0])
    for idx, w in taps:
        np.add.at(m, (rows, idx), w)
    if outside is not None:
        m[outside] = 0.0
    return m


_ATTRS = {
    "axes": Attr("ints"), "out_sizes": Attr("ints"), "scales": Attr("floats"),
    "mode": Attr("str", default="nearest"), "coordinate_transformation_mode": Attr("str", default="half_pixel"),
    "nearest_mode": Attr("str", default="round_prefer_floor"), "cubic_coeff_a": Attr("float", default=-0.75),
    "exclude_outside": Attr("int", default=0), "extrapolation_value": Attr("float", default=0.0),
    "roi": Attr("floats", default=None, optional=True), "antialias": Attr("int", default=0),
}


def _resize_type(x: TensorType, *, axes, out_sizes, scales, mode, coordinate_transformation_mode, nearest_mode,
                 cubic_coeff_a, exclude_outside, extrapolation_value, roi, antialias) -> TensorType:
    if mode not in MODES or coordinate_transformation_mode not in COORDINATE_MODES or nearest_mode not in NEAREST_MODES:
        raise IRValidationError(f"resize: mode {mode!r} / coordinate_transformation_mode "
                                f"{coordinate_transformation_mode!r} / nearest_mode {nearest_mode!r} not supported")
    if not (len(axes) == len(out_sizes) == len(scales)) or len(set(axes)) != len(axes):
        raise IRValidationError(f"resize: axes {axes}, out_sizes {out_sizes} and scales {scales} must match one to one")
    if roi is not None and len(roi) != 2 * len(axes):
        raise IRValidationError(f"resize: roi must have 2 values per resized axis, got {roi}")
    shape = list(x.shape)
    for a, s in zip(axes, out_sizes):
        if not 0 <= a < x.rank:
            raise ShapeError(f"resize: axis {a} out of range for {x}")
        if not isinstance(x.shape[a], int):
            raise ShapeError(f"resize: the resized axis {a} of {x} must have a static size")
        if s < 0:
            raise ShapeError(f"resize: output size {s} along axis {a} is negative")
        shape[a] = s
    if not x.dtype.is_float:
        raise ShapeError(f"resize takes float tensors here, got {x.dtype}")
    return TensorType(dtype=x.dtype, shape=tuple(shape))


defop("resize", _resize_type, attrs=_ATTRS, family="nn",
      doc="ONNX Resize (nearest, linear, cubic; every coordinate mode; antialias) over static axes; separable taps.")


@defbatch("resize")
def _resize_batch(inputs, dims, size, *, axes, **attrs):
    # each resized axis shifted past the batch axis (order kept: out_sizes, scales, roi follow it)
    d = dims[0]
    return bind("resize", inputs[0], axes=tuple(a + (a >= d) for a in axes), **attrs), d


@defvjp("resize")
def _resize_vjp(g, x, *, out, **attrs):
    # y = M_k ... M_1 x (one matrix per resized axis), so g_x = M_1^T ... M_k^T g.
    r = x.ndim
    for j in reversed(range(len(attrs["axes"]))):
        a = attrs["axes"][j]
        m = interpolation_matrix(attrs, j, x.shape[a]).astype(x.dtype.numpy)
        perm = tuple(i for i in range(r) if i != a) + (a,)
        moved = bind("transpose", g, perm=perm) if a != r - 1 else g
        moved = bind("matmul", moved, m)  # (..., out) @ (out, in)
        inverse = tuple(int(i) for i in np.argsort(perm))
        g = bind("transpose", moved, perm=inverse) if a != r - 1 else moved
    return (g,)


def resize_attrs(**given: Any) -> dict:
    """The op's attributes with defaults filled in (for importers and tests)."""
    attrs = {k: v.default for k, v in _ATTRS.items() if k not in ("axes", "out_sizes", "scales")}
    attrs.update(given)
    return attrs


__all__: list[str] = []
