"""Gradients of broadcasts whose dims are symbolic: whether a dim was 1 is decided at run time."""
import numpy as np
import pytest

import irflow as irf
from irflow.autodiff import vjp
from irflow.executors.numpy import Interpreter
from irflow.executors.onnx import OrtRunner
from tests.ops.harness import check_op


def _graph():
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", ("n", 3))
    y = b.input("y", "float32", (5, 3))
    with b:
        loss = irf.reduce_sum((x * y) ** 2)
    b.output(loss)
    return vjp(b.build(verify=True), wrt=["x", "y"], seed="ones").verify()


@pytest.mark.parametrize("n", [1, 5])
@pytest.mark.parametrize("executor", ["numpy", "ort"])
def test_gradient_sums_only_when_the_symbol_was_one(n, executor):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = rng.standard_normal((5, 3)).astype(np.float32)
    g = _graph()
    runner = Interpreter(g) if executor == "numpy" else OrtRunner(g)
    out = runner.run({"x": x, "y": y})
    # d/dx sum((x*y)^2) = 2 x y^2, summed over the broadcast rows when x has one row
    want_x = (2 * x * y ** 2).sum(axis=0, keepdims=True) if n == 1 else 2 * x * y ** 2
    want_y = 2 * x ** 2 * y
    np.testing.assert_allclose(out["grad_x"], want_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["grad_y"], want_y, rtol=1e-5, atol=1e-5)
    assert out["grad_x"].shape == x.shape


def test_sum_to_like_op():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((4, 3, 2))
    like = rng.standard_normal((1, 3, 1))
    check_op("sum_to_like", [g, like], lambda g, like: g.sum(axis=(0, 2), keepdims=True), {"axes": (0, 1, 2)},
             grad_inputs=[0])
