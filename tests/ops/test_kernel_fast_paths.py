"""Kernels with a fast path for large inputs agree bit for bit with the plain NumPy expression."""
import itertools
import warnings

import numpy as np
import pytest

from irflow.executors.numpy.kernels import KERNELS
from irflow.ir.dtypes import DType


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


SPECIALS = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("shape", [(64, 48), (6, 10), (2048,)])  # the bit path from 1024 elements, np.where below
@pytest.mark.parametrize("transposed", [False, True])
def test_relu_grad_matches_np_where_bit_for_bit(dtype, shape, transposed):
    dtype = np.dtype(DType(dtype).numpy)
    rng = np.random.default_rng(1)
    g = (rng.standard_normal(shape) * 10).astype(dtype)
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    flat_g, flat_x = g.reshape(-1), x.reshape(-1)
    # every special value of g meets every special value of x (and a positive and negative one)
    for i, (a, b) in enumerate(itertools.product(SPECIALS + [1.0], SPECIALS + [2.0, -3.0])):
        flat_g[i], flat_x[i] = a, b
    if transposed:
        g, x = g.T, x.T
        assert not x.flags.c_contiguous or x.ndim == 1
    got = KERNELS["relu_grad"](g, x)
    want = np.where(x > 0, g, np.zeros((), dtype))
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()  # NaN payloads kept, +0.0 (never -0.0) where x <= 0


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_relu_grad_16_bit_compare_on_every_value(dtype):
    """The 16-bit path compares bit patterns instead of floats: check it on all 65536 of them."""
    dtype = np.dtype(DType(dtype).numpy)
    x = np.arange(2**16, dtype=np.uint16).view(dtype)
    g = np.random.default_rng(2).integers(0, 2**16, x.shape, dtype=np.uint16).view(dtype)
    got = KERNELS["relu_grad"](g, x)
    assert got.tobytes() == np.where(x > 0, g, np.zeros((), dtype)).tobytes()


def test_reduce_mean_over_empty_axis_is_nan_without_warning():
    x = np.zeros((0, 3), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = KERNELS["reduce_mean"](x, axes=(0,), keepdims=False)
    assert out.dtype == np.float32 and np.isnan(out).all()


def _max_pool_grad_by_scan(x, g):
    """Per 2x2 window: scan the taps in row-major order, moving to a tap only if it is
    strictly greater than the running maximum (NaN-propagating), as the general kernel does."""
    dx = np.zeros_like(x)
    n, c, h, w = x.shape
    for i, j, r, s in itertools.product(range(n), range(c), range(h // 2), range(w // 2)):
        taps = [(2 * r + a, 2 * s + b) for a in range(2) for b in range(2)]
        best, pick = x[i, j][taps[0]], taps[0]
        for t in taps[1:]:
            if x[i, j][t] > best:
                pick = t
            best = np.maximum(best, x[i, j][t])
        dx[i, j][pick] = g[i, j, r, s]
    return dx


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("specials", [False, True])
def test_max_pool_2x2_grad_fast_path_picks_the_scan_choice_on_ties_and_nans(dtype, specials):
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, (2, 3, 6, 8)).astype(dtype)  # small integers: many tied windows
    if specials:
        x[rng.random(x.shape) < 0.15] = np.nan
        x[rng.random(x.shape) < 0.05] = np.inf
    g = (rng.standard_normal((2, 3, 3, 4)) + 3.0).astype(dtype)  # nonzero, finite
    got = KERNELS["max_pool2d_grad"](x, g, kernel_size=(2, 2), strides=(2, 2))
    np.testing.assert_array_equal(got, _max_pool_grad_by_scan(x, g))
