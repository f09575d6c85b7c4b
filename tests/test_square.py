"""irf.square: values against NumPy, dtype kept, gradient against finite differences, traced + vmapped."""
import numpy as np
import pytest

import irflow as irf


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_square_matches_numpy_and_keeps_dtype(dtype):
    x = (np.arange(-6, 6).reshape(3, 4) * (0.75 if dtype.startswith("float") else 1)).astype(dtype)
    out = irf.square(irf.tensor(x)).numpy()
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, np.square(x))


def test_square_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3))

    def loss_np(v):
        return float(np.sum(np.sin(v) * v * v))

    g = irf.grad(lambda t: irf.reduce_sum(irf.sin(t) * irf.square(t)))(irf.tensor(x)).numpy()
    eps, fd = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        fd[i] = (loss_np(x + d) - loss_np(x - d)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_square_in_function_and_vmap():
    x = np.array([[1.5, -2.0], [3.0, 0.25]])
    traced = irf.function(lambda t: irf.square(t) + 1.0)(irf.tensor(x)).numpy()
    np.testing.assert_allclose(traced, x * x + 1.0)
    vm = irf.vmap(irf.square)(irf.tensor(x)).numpy()
    np.testing.assert_allclose(vm, x * x)
