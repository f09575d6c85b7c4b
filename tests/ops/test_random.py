"""random_uniform and random_normal.

The NumPy kernel is a pure function of its attrs: tested bit for bit against the documented
definition (``numpy.random.default_rng(seed)``) and for determinism. onnxruntime draws other
bits from the same distributions, so its results are tested statistically (moments within a
tolerance), with ``check_op(..., ort=False)`` and separate ORT tests.
"""
from __future__ import annotations

import numpy as np
import pytest

import irflow as irf
from irflow.autodiff import vjp
from irflow.executors.numpy import Interpreter
from irflow.executors.onnx import OrtRunner
from irflow.ops.registry import get_op
from tests.ops.harness import check_op


def uniform_ref(shape, seed, low, high, dtype):
    draw = np.float64 if dtype == np.float64 else np.float32
    u = np.random.default_rng(seed).random(shape, dtype=draw)
    return (u * draw(high - low) + draw(low)).astype(dtype)


def normal_ref(shape, seed, mean, stddev, dtype):
    draw = np.float64 if dtype == np.float64 else np.float32
    z = np.random.default_rng(seed).standard_normal(shape, dtype=draw)
    return (z * draw(stddev) + draw(mean)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_random_uniform_is_the_documented_pcg64_draw(dtype):
    attrs = dict(shape=(3, 4), dtype=irf.DType(dtype), seed=7, low=-2.0, high=3.0)
    np_dtype = irf.DType(dtype).numpy
    (out,) = check_op("random_uniform", [], lambda: uniform_ref((3, 4), 7, -2.0, 3.0, np_dtype), attrs,
                      ort=False, rtol=0, atol=0)
    assert ((out.astype(np.float64) >= -2.0) & (out.astype(np.float64) <= 3.0)).all()


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_random_normal_is_the_documented_pcg64_draw(dtype):
    attrs = dict(shape=(5,), dtype=irf.DType(dtype), seed=3, mean=1.5, stddev=0.5)
    np_dtype = irf.DType(dtype).numpy
    check_op("random_normal", [], lambda: normal_ref((5,), 3, 1.5, 0.5, np_dtype), attrs, ort=False, rtol=0, atol=0)


def test_same_seed_same_values_other_seed_other_values():
    a = irf.random_normal((100,), seed=1).numpy()
    np.testing.assert_array_equal(a, irf.random_normal((100,), seed=1).numpy())
    assert not np.array_equal(a, irf.random_normal((100,), seed=2).numpy())
    # and a graph run twice gives the same draw (a pure function of the attrs)
    b = irf.GraphBuilder("r")
    with b:
        b.output(irf.random_uniform((50,), seed=9))
    interp = Interpreter(b.build(verify=True))
    np.testing.assert_array_equal(interp.run({})[b.outputs[0].name], interp.run({})[b.outputs[0].name])


def test_numpy_moments():
    u = irf.random_uniform((200_000,), low=-1.0, high=3.0, seed=4).numpy().astype(np.float64)
    assert abs(u.mean() - 1.0) < 0.02 and abs(u.var() - 16 / 12) < 0.02
    assert u.min() >= -1.0 and u.max() < 3.0
    z = irf.random_normal((200_000,), mean=2.0, stddev=3.0, seed=4, dtype="float64").numpy()
    assert abs(z.mean() - 2.0) < 0.03 and abs(z.std() - 3.0) < 0.03


def _ort_draws(op_fn, runs=2):
    b = irf.GraphBuilder("r")
    with b:
        b.output(op_fn(), names=["y"])
    runner = OrtRunner(b.build(verify=True))
    return [runner.run({})["y"] for _ in range(runs)]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_onnxruntime_uniform_has_the_same_distribution(dtype):
    first, second = _ort_draws(lambda: irf.random_uniform((100_000,), low=-1.0, high=3.0, seed=4, dtype=dtype))
    assert first.dtype == irf.DType(dtype).numpy and first.shape == (100_000,)
    u = first.astype(np.float64)
    assert abs(u.mean() - 1.0) < 0.03 and abs(u.var() - 16 / 12) < 0.03
    assert u.min() >= -1.0 and u.max() <= 3.0
    # onnxruntime's generator advances on every run (NumPy's kernel does not): documented.
    assert not np.array_equal(first, second)


def test_onnxruntime_normal_has_the_same_distribution():
    (z,) = _ort_draws(lambda: irf.random_normal((100_000,), mean=2.0, stddev=3.0, seed=4), runs=1)
    assert z.dtype == np.float32
    assert abs(z.mean() - 2.0) < 0.05 and abs(z.std() - 3.0) < 0.05
    skew = np.mean(((z - z.mean()) / z.std()) ** 3)
    assert abs(skew) < 0.05


def test_random_ops_are_not_differentiable_but_gradients_flow_around_them():
    assert not get_op("random_uniform").differentiable and not get_op("random_normal").differentiable
    b = irf.GraphBuilder("noise")
    x = b.input("x", "float64", (4,))
    with b:
        b.output(x * irf.random_normal((4,), seed=5, dtype="float64"), names=["y"])
    grads = Interpreter(vjp(b.build(), wrt=["x"], seed="ones")).run({"x": np.ones(4)})
    np.testing.assert_array_equal(grads["grad_x"], normal_ref((4,), 5, 0.0, 1.0, np.float64))


def test_random_errors_name_the_op():
    with pytest.raises(irf.DTypeError, match=r"random_uniform: dtype must be a float dtype"):
        irf.random_uniform((2,), dtype="int32")
    with pytest.raises(irf.IRValidationError, match=r"random_normal: seed must be an int >= 0"):
        irf.random_normal((2,), seed=-1)
    with pytest.raises(irf.IRValidationError, match=r"random_uniform: low must be <= high"):
        irf.random_uniform((2,), low=1.0, high=0.0)
    with pytest.raises(irf.IRValidationError, match=r"random_normal: shape must be a tuple of ints >= 0"):
        irf.random_normal((2, -1))
    b = irf.GraphBuilder("g")
    with b, pytest.raises(irf.IRValidationError, match=r"random_normal: stddev must be >= 0"):
        irf.random_normal((2,), stddev=-1.0)
