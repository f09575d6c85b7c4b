"""Kernels with a fast path for large inputs agree bit for bit with the plain NumPy expression."""
import warnings

import numpy as np
import pytest

from irflow.executors.numpy.kernels import KERNELS


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int8", "uint8"])
@pytest.mark.parametrize("shapes", [((64, 256), (64, 256), (256,)), ((64, 1), (1, 256), (64, 256)),
                                    ((2048,), (), (2048,)), ((32, 64), (64,), ())])
def test_where_bit_select_matches_np_where(dtype, shapes):
    rng = np.random.default_rng(0)
    cs, xs, ys = shapes
    cond = rng.random(cs) > 0.5
    x = (rng.standard_normal(xs) * 10).astype(dtype)
    y = (rng.standard_normal(ys) * 10).astype(dtype)
    if x.dtype.kind == "f" and x.ndim:
        x.reshape(-1)[0] = np.nan
        x.reshape(-1)[-1] = -0.0
    got = KERNELS["where"](cond, x, y)
    want = np.where(cond, x, y)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()  # NaN payloads and signed zeros included


def test_reduce_mean_over_empty_axis_is_nan_without_warning():
    x = np.zeros((0, 3), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = KERNELS["reduce_mean"](x, axes=(0,), keepdims=False)
    assert out.dtype == np.float32 and np.isnan(out).all()
