"""The interpreter's buffer reuse (donation to ufunc nodes, a pool of dead large buffers):
results stay equal to NumPy by hand, and no buffer that anyone else can see is ever written."""
import numpy as np
import pytest

import irflow as irf
from irflow.executors.numpy import Interpreter

RNG = np.random.default_rng(0)


class Recording(Interpreter):
    """Records, per node name, whether the node was offered an ``out`` buffer."""

    def __init__(self, graph):
        super().__init__(graph)
        self.offered: dict[str, bool] = {}

    def run_node(self, node, fn, args, attrs):
        self.offered[node.name] = "out" in attrs
        return super().run_node(node, fn, args, attrs)


def _mlp_step_like():
    """x @ w -> relu -> @ w2, then w - 0.1 * (x^T @ h): large matmul results and elementwise
    chains, as in a training step."""
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", (64, 128))
    w = b.input("w", "float32", (128, 256))
    w2 = b.input("w2", "float32", (256, 128))
    with b:
        h = irf.relu(x @ w)
        y = h @ w2
        z = irf.exp(y * 0.01) + y
        upd = w - (irf.transpose(x, (1, 0)) @ h) * 0.1
    b.output(z)
    b.output(upd)
    return b.build(verify=True)


def _reference(x, w, w2):
    h = np.maximum(x @ w, 0)
    y = h @ w2
    return np.exp(y * np.float32(0.01)) + y, w - (x.T @ h) * np.float32(0.1)


def _feeds():
    return {"x": RNG.standard_normal((64, 128)).astype("float32"),
            "w": RNG.standard_normal((128, 256)).astype("float32"),
            "w2": RNG.standard_normal((256, 128)).astype("float32")}


def test_reused_buffers_give_the_numpy_results_run_after_run():
    g = _mlp_step_like()
    interp = Recording(g)
    for _ in range(4):
        feeds = _feeds()
        copies = {k: v.copy() for k, v in feeds.items()}
        z, upd = interp.run(feeds).values()
        ref_z, ref_upd = _reference(**copies)
        np.testing.assert_allclose(z, ref_z, rtol=1e-5)
        np.testing.assert_allclose(upd, ref_upd, rtol=1e-5)
        for k in feeds:  # feeds are never written
            np.testing.assert_array_equal(feeds[k], copies[k])
    # The mechanism is exercised, not bypassed: some node writes into a reused buffer.
    assert any(interp.offered.values())


def test_outputs_of_earlier_runs_are_never_overwritten():
    g = _mlp_step_like()
    interp = Interpreter(g)
    feeds = _feeds()
    first = interp.run(feeds)
    kept = {k: v.copy() for k, v in first.items()}
    for _ in range(3):
        interp.run(_feeds())
    for k in first:
        np.testing.assert_array_equal(first[k], kept[k])


def test_a_value_still_viewed_by_a_live_value_is_not_reused():
    # t is a view of a (transpose); a dies at `a * 2` while t lives on, so a's buffer must not
    # be donated to or pooled for the multiply.
    b = irf.GraphBuilder("views")
    x = b.input("x", "float32", (256, 256))
    with b:
        a = irf.exp(x)
        t = irf.transpose(a, (1, 0))
        doubled = a * 2.0
        out = t + doubled
    b.output(out)
    g = b.build(verify=True)
    xv = RNG.standard_normal((256, 256)).astype("float32") * 0.1
    expected = np.exp(xv).T + np.exp(xv) * np.float32(2.0)
    interp = Interpreter(g)
    for _ in range(3):
        np.testing.assert_allclose(interp.run({"x": xv})[g.output_names[0]], expected, rtol=1e-6)


def test_a_value_held_under_two_names_is_not_reused():
    # identity returns its input object: `a` and `same` are one array; a dies first.
    b = irf.GraphBuilder("alias")
    x = b.input("x", "float32", (300, 300))
    with b:
        a = irf.exp(x)
        same = irf.identity(a)
        c = a + 1.0  # a's last use: donating it would also change `same`
        out = c * same
    b.output(out)
    g = b.build(verify=True)
    xv = RNG.standard_normal((300, 300)).astype("float32") * 0.1
    e = np.exp(xv)
    interp = Interpreter(g)
    for _ in range(3):
        np.testing.assert_allclose(interp.run({"x": xv})[g.output_names[0]], (e + 1) * e, rtol=1e-6)


def test_pool_serves_a_later_run_without_fresh_large_buffers():
    g = _mlp_step_like()
    interp = Recording(g)
    interp.run(_feeds())
    interp.run(_feeds())
    matmuls = [n.name for n in g.nodes if n.op == "matmul"]
    # On the second run every large matmul result except those still alive can come from the pool.
    assert sum(interp.offered[name] for name in matmuls) >= 1


@pytest.mark.parametrize("op", ["conv2d", "max_pool2d", "max_pool2d_grad", "conv_transpose2d", "relu", "relu_grad",
                                "matmul"])
def test_kernels_write_into_the_offered_buffer_and_match_fresh_results(op):
    from irflow.executors.numpy import KERNELS

    x = RNG.standard_normal((4, 8, 16, 16)).astype("float32")
    x[0, 0, 0, :4] = [np.nan, np.inf, -0.0, 0.0]
    same = RNG.standard_normal(x.shape).astype("float32")
    args, attrs = {
        "conv2d": ((x, RNG.standard_normal((6, 8, 3, 3)).astype("float32")), {"padding": (1, 1, 1, 1)}),
        "conv_transpose2d": ((x, RNG.standard_normal((8, 5, 3, 3)).astype("float32")), {"padding": (1, 1, 1, 1)}),
        "max_pool2d": ((x,), {"kernel_size": (2, 2), "strides": (2, 2)}),
        "max_pool2d_grad": ((x, RNG.standard_normal((4, 8, 8, 8)).astype("float32")),
                            {"kernel_size": (2, 2), "strides": (2, 2)}),
        "relu": ((x,), {}),
        "relu_grad": ((same, x), {}),
        "matmul": ((x, same), {}),
    }[op]
    fresh = KERNELS[op](*args, **attrs)
    buf = np.full(fresh.shape, 7.0, dtype=fresh.dtype)
    got = KERNELS[op](*args, **attrs, out=buf)
    assert got is buf
    np.testing.assert_array_equal(got, fresh)
