"""NumPy kernels of ``resize`` and ``resize_dynamic`` (per resized axis, a weighted sum of
gathers; irflow/ops/resize.py computes the taps) and of ``resize_dynamic_grad`` (the same taps
transposed: a scatter-add per tap). 16-bit floats are computed in float32."""
from __future__ import annotations

import numpy as np

from irflow.errors import ExecutorError
from irflow.executors.numpy.kernels import kernel
from irflow.ops.resize import axis_taps
from irflow.ops.resize_dynamic import DEFAULTS, plan_taps, resize_plan


def _work(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) if x.dtype.itemsize == 2 else x


def apply_taps(y: np.ndarray, a: int, taps, outside, fill: float) -> np.ndarray:
    """Output position i along axis ``a`` = sum over taps of w[i] * y[idx[i]]; ``fill`` where
    ``outside`` (tf_crop_and_resize's extrapolation)."""
    bshape = (-1,) + (1,) * (y.ndim - a - 1)
    total = None
    for idx, w in taps:
        picked = np.take(y, idx, axis=a)
        if not np.all(w == 1):
            picked = picked * w.astype(y.dtype).reshape(bshape)
        total = picked if total is None else total + picked
    if outside is not None:
        total = np.where(outside.reshape(bshape), np.asarray(fill, y.dtype), total)
    return total


def transpose_taps(g: np.ndarray, a: int, in_size: int, taps, outside) -> np.ndarray:
    """The adjoint of ``apply_taps`` along axis ``a``: g (out positions) -> in_size positions."""
    gm = np.moveaxis(g, a, 0)
    if outside is not None:  # the fill does not depend on x
        gm = np.where(outside.reshape((-1,) + (1,) * (gm.ndim - 1)), 0, gm)
    res = np.zeros((in_size,) + gm.shape[1:], dtype=g.dtype)
    wshape = (-1,) + (1,) * (gm.ndim - 1)
    for idx, w in taps:
        np.add.at(res, idx, gm * w.astype(g.dtype).reshape(wshape))
    return np.moveaxis(res, 0, a)


def _finish(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y, dtype=x.dtype) if y is not x else x.copy()


@kernel("resize")
def resize(x, **attrs):
    y = _work(x)
    for j, a in enumerate(attrs["axes"]):
        taps, outside = axis_taps(attrs, j, x.shape[a])
        y = apply_taps(y, a, taps, outside, attrs["extrapolation_value"])
    return _finish(y, x)


@kernel("resize_dynamic")
def resize_dynamic(x, roi=None, scales=None, sizes=None, **attrs):
    y = _work(x)
    for a, out_size, scale, pair in resize_plan("resize_dynamic", x.shape, roi, scales, sizes, attrs):
        taps, outside = plan_taps(attrs, y.shape[a], out_size, scale, pair)
        y = apply_taps(y, a, taps, outside, attrs.get("extrapolation_value", DEFAULTS["extrapolation_value"]))
    return _finish(y, x)


@kernel("resize_dynamic_grad")
def resize_dynamic_grad(g, x, roi=None, scales=None, sizes=None, **attrs):
    plan = resize_plan("resize_dynamic_grad", x.shape, roi, scales, sizes, attrs)
    want = list(x.shape)
    for a, out_size, _, _ in plan:
        want[a] = out_size
    if tuple(want) != g.shape:
        raise ExecutorError(f"resize_dynamic_grad: the gradient has shape {g.shape}, the resize of {x.shape} gives {tuple(want)}")
    y = _work(g)
    for a, out_size, scale, pair in reversed(plan):
        taps, outside = plan_taps(attrs, x.shape[a], out_size, scale, pair)
        y = transpose_taps(y, a, x.shape[a], taps, outside)
    return np.ascontiguousarray(y, dtype=x.dtype)
