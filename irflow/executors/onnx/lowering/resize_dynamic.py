"""ONNX lowerings of ``resize_dynamic`` (ONNX Resize with its run-time inputs) and
``resize_dynamic_grad`` (the transposed interpolation: per resized axis, ONNX Resize of an
identity matrix gives that axis' interpolation matrix at run time, and a MatMul applies its
transpose to the gradient)."""
from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from irflow.errors import UnsupportedOpError
from irflow.executors.onnx.lowering import lowering
from irflow.executors.onnx.lowering.nn import input_type
from irflow.ir.dtypes import DType


def _float32(ctx, name: str) -> str:
    """Resize's scales must be float32 in ONNX; onnxruntime's kernel also reads roi as float32."""
    if not name or input_type(ctx, name).dtype is DType.float32:
        return name
    return ctx.emit("Cast", [name], 1, to=1)[0]


def _resize_attrs(a: dict, axes=None) -> dict:
    """ONNX Resize's attributes (axes, keep_aspect_ratio_policy, antialias: opset 18, export's minimum)."""
    attrs = dict(mode=a["mode"], coordinate_transformation_mode=a["coordinate_transformation_mode"],
                 nearest_mode=a["nearest_mode"], cubic_coeff_a=float(a["cubic_coeff_a"]),
                 exclude_outside=int(a["exclude_outside"]), extrapolation_value=float(a["extrapolation_value"]))
    extra = {}
    if a["antialias"]:
        extra["antialias"] = int(a["antialias"])
    if a["keep_aspect_ratio_policy"] != "stretch":
        extra["keep_aspect_ratio_policy"] = a["keep_aspect_ratio_policy"]
    if axes is not None:
        extra["axes"] = list(axes)
    attrs.update(extra)
    return attrs


@lowering("resize_dynamic")
def _resize_dynamic(ctx, node, ins, outs):
    x, roi, scales, sizes = (list(ins) + [""] * 4)[:4]
    ctx.emit("Resize", [x, _float32(ctx, roi), _float32(ctx, scales), sizes], outs, **_resize_attrs(node.attrs, node.attrs["axes"]))


def _pick(ctx, name: str, positions) -> str:
    return ctx.emit("Gather", [name, ctx.const(np.asarray(positions, np.int64), "pick")], 1, axis=0)[0]


@lowering("resize_dynamic_grad")
def _resize_dynamic_grad(ctx, node, ins, outs):
    g, x, roi, scales, sizes = (list(ins) + [""] * 5)[:5]
    a = dict(node.attrs)
    if a["keep_aspect_ratio_policy"] != "stretch":
        # one scale for all axes with rounded sizes: a one-axis Resize takes either the scale or
        # the size, and its output size would be floor(scale * in), not the policy's rounding
        raise UnsupportedOpError(f"lowering {node.name} (resize_dynamic_grad): keep_aspect_ratio_policy "
                                 f"{a['keep_aspect_ratio_policy']!r} has no ONNX lowering for the gradient; only 'stretch'")
    t = input_type(ctx, g)
    r = t.rank
    axes = a["axes"] if a["axes"] is not None else tuple(range(r))
    k = len(axes)
    zero = numpy_helper.from_array(np.zeros(1, t.dtype.numpy))
    a.update(extrapolation_value=0.0)  # positions outside the crop get no gradient
    one_axis = _resize_attrs(dict(a, keep_aspect_ratio_policy="stretch"), axes=(1,))
    shape = ctx.emit("Shape", [x], 1)[0]
    y = g
    for j, axis in enumerate(axes):
        n = _pick(ctx, shape, [axis])
        eye = ctx.emit("EyeLike", [ctx.emit("ConstantOfShape", [ctx.emit("Concat", [n, n], 1, axis=0)[0]], 1, value=zero)[0]], 1)[0]
        args = [eye, _pick(ctx, _float32(ctx, roi), [j, k + j]) if roi else "", _pick(ctx, _float32(ctx, scales), [j]) if scales else "",
                _pick(ctx, sizes, [j]) if sizes else ""]
        m_t = ctx.emit("Resize", args, 1, **one_axis)[0]  # (in, out): row i is the resize of e_i, so M^T
        perm = [i for i in range(r) if i != axis] + [axis]
        inverse = [int(i) for i in np.argsort(perm)]
        moved = ctx.emit("Transpose", [y], 1, perm=perm)[0] if axis != r - 1 else y
        moved = ctx.emit("MatMul", [moved, ctx.emit("Transpose", [m_t], 1, perm=[1, 0])[0]], 1)[0]  # (..., out) @ (out, in)
        y = ctx.emit("Transpose", [moved], 1, perm=inverse)[0] if axis != r - 1 else moved
    ctx.emit("Identity", [y], outs)
