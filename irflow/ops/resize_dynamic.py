"""``resize_dynamic``: ONNX Resize whose ``roi``, ``scales`` or ``sizes`` are run-time inputs,
and ``resize_dynamic_grad``, its transpose (the VJP with respect to x).

The static ``resize`` op (irflow/ops/resize.py) takes the output sizes and scales as
attributes; the ONNX importer keeps using it whenever they are known at import. When one of
them is computed at run time, import emits ``resize_dynamic(x, roi, scales, sizes)`` with
Resize's attributes; the kernel reads the arrays when it runs (``resize_plan``: the
specification's per-axis scale and output size, keep_aspect_ratio_policy included) and gathers
with the same taps as ``resize`` (``taps_1d``). The resized axes' output sizes are unknown (None)
in the type; the other axes keep their dims.

Resize is linear in x: its VJP is ``resize_dynamic_grad(g, x, roi, scales, sizes)``, the
transposed interpolation (x gives the input shape at run time), whose own VJP is
``resize_dynamic`` again. Its ONNX lowering computes each axis' interpolation matrix at run
time as ONNX Resize of an identity matrix, so gradients export too (not with
keep_aspect_ratio_policy other than stretch: there the per-axis scale and the rounded output
size cannot both be given to a one-axis Resize; the lowering says so).

>>> y = bind("resize_dynamic", x, None, scales, mode="linear")   # doctest: +SKIP
"""
from __future__ import annotations

import math

import numpy as np

from irflow.errors import DTypeError, ExecutorError, IRValidationError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import TensorType
from irflow.ops.batching import LOOP_THIS, materialize, to_front
from irflow.ops.common import bind
from irflow.ops.registry import Attr, defbatch, defop, defvjp
from irflow.ops.resize import COORDINATE_MODES, MODES, NEAREST_MODES, taps_1d

POLICIES = ("stretch", "not_larger", "not_smaller")

ATTRS = {
    "mode": Attr("str", default="nearest"), "coordinate_transformation_mode": Attr("str", default="half_pixel"),
    "nearest_mode": Attr("str", default="round_prefer_floor"), "cubic_coeff_a": Attr("float", default=-0.75),
    "exclude_outside": Attr("int", default=0), "extrapolation_value": Attr("float", default=0.0),
    "keep_aspect_ratio_policy": Attr("str", default="stretch"), "antialias": Attr("int", default=0),
    "axes": Attr("ints", default=None, optional=True),
}


DEFAULTS = {k: a.default for k, a in ATTRS.items()}


def _check_attrs(op: str, rank: int, attrs: dict) -> tuple[int, ...]:
    """The resized axes (all when ``axes`` is None); IRValidationError for unknown modes."""
    attrs = {**DEFAULTS, **attrs}
    for key, allowed in (("mode", MODES), ("coordinate_transformation_mode", COORDINATE_MODES),
                         ("nearest_mode", NEAREST_MODES), ("keep_aspect_ratio_policy", POLICIES)):
        if attrs[key] not in allowed:
            raise IRValidationError(f"{op}: {key} {attrs[key]!r} is not one of {allowed}")
    axes = attrs["axes"]
    if axes is None:
        return tuple(range(rank))
    if len(set(axes)) != len(axes) or not all(isinstance(a, int) and 0 <= a < rank for a in axes):
        raise ShapeError(f"{op}: axes {axes} must be distinct axes in 0..{rank - 1} (normalized) of a rank-{rank} input")
    return tuple(axes)


def _check_arg(op: str, what: str, t: TensorType | None, kinds: str, count: int) -> None:
    if t is None:
        return
    if not (t.dtype.is_float if kinds == "f" else t.dtype is DType.int64):
        raise DTypeError(f"{op}: {what} must be {'a float tensor' if kinds == 'f' else 'int64'}, got {t.dtype.value}")
    if t.rank != 1:
        raise ShapeError(f"{op}: {what} must be 1-D, got shape {t.shape}")
    if isinstance(t.shape[0], int) and t.shape[0] != count:
        raise ShapeError(f"{op}: {what} has {t.shape[0]} values, the {count // (2 if what == 'roi' else 1)} "
                         f"resized axes need {count}")


def _args_type(op: str, x: TensorType, roi, scales, sizes, attrs: dict) -> tuple[int, ...]:
    if not x.dtype.is_float:
        raise DTypeError(f"{op} takes float tensors here, got {x.dtype.value}")
    axes = _check_attrs(op, x.rank, attrs)
    if (scales is None) == (sizes is None):
        raise ShapeError(f"{op}: exactly one of scales and sizes must be given")
    _check_arg(op, "roi", roi, "f", 2 * len(axes))
    _check_arg(op, "scales", scales, "f", len(axes))
    _check_arg(op, "sizes", sizes, "i", len(axes))
    return axes


def _resize_dynamic_type(x, roi=None, scales=None, sizes=None, **attrs) -> TensorType:
    axes = _args_type("resize_dynamic", x, roi, scales, sizes, attrs)
    shape = tuple(None if i in axes else d for i, d in enumerate(x.shape))  # sizes known only at run time
    return TensorType(dtype=x.dtype, shape=shape)


def _resize_dynamic_grad_type(g, x, roi=None, scales=None, sizes=None, **attrs) -> TensorType:
    _args_type("resize_dynamic_grad", x, roi, scales, sizes, attrs)
    if g.dtype != x.dtype or g.rank != x.rank:
        raise ShapeError(f"resize_dynamic_grad: the gradient {g} must have x's dtype and rank ({x})")
    return x


defop("resize_dynamic", _resize_dynamic_type, inputs=(1, 4), attrs=ATTRS, family="nn",
      doc="ONNX Resize with roi / scales / sizes read at run time (inputs x, roi or None, scales or None, "
          "sizes); the resized axes' sizes are unknown in the type.")
defop("resize_dynamic_grad", _resize_dynamic_grad_type, inputs=(2, 5), attrs=ATTRS, family="nn",
      doc="The transpose of resize_dynamic (its VJP wrt x): inputs g, x (for its shape), roi, scales, sizes.")


def _args(args: tuple) -> tuple:
    """(roi, scales, sizes) from the inputs after the data (trailing omitted ones absent)."""
    return (tuple(args) + (None, None, None))[:3]


@defvjp("resize_dynamic")
def _resize_dynamic_vjp(g, x, *args, out, **attrs):
    return (bind("resize_dynamic_grad", g, x, *_args(args), **attrs),) + (None,) * len(args)


@defvjp("resize_dynamic_grad")
def _resize_dynamic_grad_vjp(gg, g, x, *args, out, **attrs):
    # linear in g, the transpose of resize_dynamic's linear part: its own transpose is resize_dynamic
    # without the fill (extrapolation_value 0: the fill is the affine part); x only gives a shape
    return (bind("resize_dynamic", gg, *_args(args), **dict(attrs, extrapolation_value=0.0)), None) + (None,) * len(args)


def _shifted(attrs: dict, rank: int) -> dict:
    """The attrs for an input with a batch axis in front: the resized axes move up by one."""
    axes = attrs["axes"] if attrs["axes"] is not None else tuple(range(rank))
    return dict(attrs, axes=tuple(a + 1 for a in axes))


@defbatch("resize_dynamic")
def _resize_dynamic_batch(inputs, dims, size, **attrs):
    x, *args = inputs
    if any(d is not None for d in dims[1:]):  # per-example scales or sizes: per-example output shapes
        return LOOP_THIS
    return bind("resize_dynamic", to_front(x, dims[0]), *args, **_shifted(attrs, x.type.rank - 1)), 0


@defbatch("resize_dynamic_grad")
def _resize_dynamic_grad_batch(inputs, dims, size, **attrs):
    g, x, *args = inputs
    if any(d is not None for d in dims[2:]):
        return LOOP_THIS
    like = (g, dims[0]) if dims[0] is not None else (x, dims[1])
    rank = (g.type.rank - 1) if dims[0] is not None else g.type.rank
    g, x = materialize(g, dims[0], size, like), materialize(x, dims[1], size, like)
    return bind("resize_dynamic_grad", g, x, *args, **_shifted(attrs, rank)), 0


def resize_plan(op: str, shape: tuple[int, ...], roi, scales, sizes, attrs: dict) -> list[tuple[int, int, float, tuple | None]]:
    """What the specification does along each resized axis, from the run-time arrays:
    (axis, output size, scale, (roi start, roi end) or None), identity axes left out (as the
    reference). ExecutorError naming ``op`` for values ONNX rejects."""
    attrs = {**DEFAULTS, **attrs}  # an eager call passes only the attrs given
    axes = _check_attrs(op, len(shape), attrs)
    k = len(axes)
    roi = None if roi is None or np.asarray(roi).size == 0 else np.asarray(roi, np.float64).reshape(-1)
    if roi is not None and roi.size != 2 * k:
        raise ExecutorError(f"{op}: roi has {roi.size} values; {k} resized axes need {2 * k}")
    in_sizes = [shape[a] for a in axes]
    if sizes is not None and np.asarray(sizes).size:
        sz = np.asarray(sizes).reshape(-1)
        if sz.size != k or np.any(sz < 0):
            raise ExecutorError(f"{op}: sizes {sz.tolist()} must be {k} non-negative numbers (one per resized axis)")
        if 0 in in_sizes:
            raise ExecutorError(f"{op}: cannot resize an empty axis to given sizes (input shape {tuple(shape)})")
        ratios = [int(s) / d for s, d in zip(sz, in_sizes)]
        outs = [int(s) for s in sz]
        policy = attrs["keep_aspect_ratio_policy"]
        if policy != "stretch":
            one = min(ratios) if policy == "not_larger" else max(ratios)
            ratios = [one] * k
            outs = [int(one * d + 0.5) for d in in_sizes]
    else:
        sc = None if scales is None else np.asarray(scales, np.float64).reshape(-1)
        if sc is None or sc.size != k or not np.all(np.isfinite(sc)) or np.any(sc <= 0):
            got = "no scales or sizes" if sc is None or sc.size == 0 else f"scales {sc.tolist()}"
            raise ExecutorError(f"{op}: {got}; it needs {k} finite positive scales (one per resized axis) or sizes")
        ratios = [float(s) for s in sc]
        outs = [int(math.floor(s * d)) for s, d in zip(ratios, in_sizes)]
    plan = []
    for j, a in enumerate(axes):
        pair = None if roi is None else (float(roi[j]), float(roi[k + j]))
        identity = math.isclose(ratios[j], 1.0) and outs[j] == in_sizes[j] and (
            pair is None or (math.isclose(pair[0], 0.0, abs_tol=1e-9) and math.isclose(pair[1], 1.0)))
        if identity:
            continue
        if attrs["coordinate_transformation_mode"] == "tf_crop_and_resize" and pair is None:
            raise ExecutorError(f"{op}: coordinate_transformation_mode tf_crop_and_resize needs roi")
        plan.append((a, outs[j], ratios[j], pair))
    return plan


def plan_taps(attrs: dict, in_size: int, out_size: int, scale: float, pair) -> tuple[list, np.ndarray | None]:
    """``taps_1d`` for one step of a ``resize_plan``."""
    attrs = {**DEFAULTS, **attrs}
    return taps_1d(mode=attrs["mode"], coordinate_transformation_mode=attrs["coordinate_transformation_mode"],
                   nearest_mode=attrs["nearest_mode"], cubic_coeff_a=attrs["cubic_coeff_a"],
                   exclude_outside=attrs["exclude_outside"], antialias=attrs["antialias"], in_size=in_size,
                   out_size=out_size, scale=scale, roi=pair)


__all__: list[str] = []
