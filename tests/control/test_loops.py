"""while_loop and fori_loop: eager, traced on NumPy, onnxruntime; gradients with a known
trip count (fori_loop -> scan) and with max_iterations (while_loop -> masked scan)."""
from __future__ import annotations

import numpy as np
import pytest

import irflow as irf
from irflow.autodiff import vjp
from tests.control.helpers import finite_diff, np_run, ort_run, ort_session

F32 = "float32"


def _doubling(x, limit):
    # count the doublings of x until it reaches limit (data-dependent trip count)
    return irf.while_loop(lambda v: v[1] < limit, lambda v: (v[0] + 1, v[1] * 2.0), (np.int64(0), x))


@pytest.mark.parametrize("x0,limit", [(1.0, 100.0), (3.0, 2.0), (0.7, 1000.0)])
def test_while_loop_eager_traced_ort_agree(x0, limit):
    n, v = 0, x0  # the Python reference
    while v < limit:
        n, v = n + 1, v * 2.0
    e = _doubling(irf.tensor(np.float32(x0)), irf.tensor(np.float32(limit)))
    fn = irf.function(_doubling)
    t = fn(np.float32(x0), np.float32(limit))
    g = fn.get_graph(irf.TensorSpec((), F32), irf.TensorSpec((), F32))
    assert [nd.op for nd in g.nodes].count("while_loop") == 1
    o = ort_run(ort_session(g), g, [np.float32(x0), np.float32(limit)])
    for cnt, val in ((e[0].numpy(), e[1].numpy()), (t[0].numpy(), t[1].numpy()), tuple(o)):
        assert int(cnt) == n
        np.testing.assert_allclose(val, v, rtol=1e-6)


def test_while_loop_max_iterations_stops_early_everywhere():
    def f(x):
        return irf.while_loop(lambda v: v < 1e9, lambda v: v * 2.0, x, max_iterations=3)

    fn = irf.function(f)
    g = fn.get_graph(irf.TensorSpec((), F32))
    assert float(f(irf.tensor(np.float32(1))).numpy()) == 8.0
    assert float(fn(np.float32(1)).numpy()) == 8.0
    assert float(ort_run(ort_session(g), g, [np.float32(1)])[0]) == 8.0


def test_while_loop_gradient_with_max_iterations_vs_finite_differences():
    # x <- x * w + c while x < 5, at most 10 steps: the trip count depends on the data
    def f(x, w, c):
        y = irf.while_loop(lambda v: v < 5.0, lambda v: v * w + c, x, max_iterations=10)
        return y * y

    specs = [irf.TensorSpec((), "float64")] * 3
    g = irf.function(f).get_graph(*specs)
    gg = vjp(g, wrt=list(g.input_names), seed="ones")
    gg.verify()
    for args in ([0.5, 1.5, 0.25], [0.1, 1.1, 0.05], [6.0, 2.0, 1.0]):
        args = [np.float64(a) for a in args]
        out = np_run(gg, args)
        fn = lambda *a: np_run(g, a)[0]  # noqa: E731
        for k in range(3):
            np.testing.assert_allclose(out[1 + k], finite_diff(fn, args, k), rtol=1e-6, atol=1e-9)
        o = ort_run(ort_session(gg), gg, args)
        np.testing.assert_allclose(o, out, rtol=1e-10)


def test_while_loop_gradient_without_max_iterations_raises():
    def f(x):
        return irf.while_loop(lambda v: v < 5.0, lambda v: v * 1.5, x)

    g = irf.function(f).get_graph(irf.TensorSpec((), "float64"))
    with pytest.raises(irf.IrflowError, match="max_iterations"):
        vjp(g, wrt=["x"], seed="ones")


def test_fori_loop_static_bounds_is_a_scan_and_differentiates():
    def f(x, w):
        return irf.fori_loop(1, 5, lambda i, y: y * w + irf.cast(i, "float64"), x)

    def ref(x, w):
        y = x
        for i in range(1, 5):
            y = y * w + i
        return y

    fn = irf.function(f)
    g = fn.get_graph(irf.TensorSpec((), "float64"), irf.TensorSpec((), "float64"))
    assert [n.op for n in g.nodes] == ["scan"]
    x, w = np.float64(0.3), np.float64(1.7)
    assert float(f(irf.tensor(x), irf.tensor(w)).numpy()) == pytest.approx(ref(x, w), rel=1e-12)
    assert float(fn(x, w).numpy()) == pytest.approx(ref(x, w), rel=1e-12)
    gg = vjp(g, wrt=["x", "w"], seed="ones")
    y, dx, dw = np_run(gg, [x, w])
    assert dx == pytest.approx(w**4, rel=1e-12)
    np.testing.assert_allclose(dw, finite_diff(ref, [x, w], 1), rtol=1e-7)
    o = ort_run(ort_session(gg), gg, [x, w])
    np.testing.assert_allclose(o, [y, dx, dw], rtol=1e-12)


def test_fori_loop_tensor_bounds_is_a_while_loop():
    def f(n, x):
        return irf.fori_loop(0, n, lambda i, y: y + irf.cast(i, F32), x)

    fn = irf.function(f)
    g = fn.get_graph(irf.TensorSpec((), "int64"), irf.TensorSpec((), F32))
    assert [n.op for n in g.nodes].count("while_loop") == 1
    for n in (0, 1, 6):
        want = float(sum(range(n)))
        assert float(f(irf.tensor(np.int64(n)), irf.tensor(np.float32(0))).numpy()) == want
        assert float(fn(np.int64(n), np.float32(0)).numpy()) == want
        assert float(ort_run(ort_session(g), g, [np.int64(n), np.float32(0)])[0]) == want


def test_verifier_rejects_while_body_that_changes_carry_type():
    b = irf.GraphBuilder("outer")
    x = b.input("x", F32, (2,))
    cb = irf.GraphBuilder("c"); cx = cb.input("a", F32, (2,)); cb.output(cb.op("reduce_all", cb.op("less", cx, 1.0)) if "reduce_all" in irf.ops.REGISTRY else cb.op("less", cb.op("reduce_sum", cx), 1.0))
    bb = irf.GraphBuilder("b"); bx = bb.input("a", F32, (2,)); bb.output(bb.op("cast", bx, dtype="float64"))
    with pytest.raises(irf.DTypeError, match="body_graph 'b' carry 0"):
        b.op("while_loop", x, cond_graph=cb.build(), body_graph=bb.build())
