"""The special ops autodiff rests on: call (a graph as one op), custom_call (custom_gradient),
stop_gradient; their kernels, VJP rules (first and second order) and ONNX lowerings."""
import numpy as np
import onnx
import pytest

import irflow as irf
from irflow.autodiff import vjp as vjp_graph
from irflow.executors.numpy import Interpreter
from irflow.executors.onnx import OrtRunner, to_model

RNG = np.random.default_rng(2)


def small_graph(dtype="float64"):
    """g(x, w) = (exp(x @ w), sum(x @ w)) with a symbolic batch dim."""
    b = irf.GraphBuilder("inner")
    x = b.input("x", dtype, ("batch", 3))
    w = b.input("w", dtype, (3, 2))
    with b:
        h = x @ w
        b.output(irf.exp(h), irf.reduce_sum(h))
    return b.build(verify=True)


def test_call_runs_the_graph_eagerly_and_types_bind_symbols():
    g = small_graph()
    x, w = RNG.standard_normal((4, 3)), RNG.standard_normal((3, 2))
    e, s = irf.bind("call", irf.tensor(x), irf.tensor(w), graph=g)
    np.testing.assert_allclose(e.numpy(), np.exp(x @ w), rtol=1e-12)
    np.testing.assert_allclose(float(s), np.sum(x @ w), rtol=1e-12)
    b = irf.GraphBuilder("outer")
    xs = b.input("x", "float64", (4, 3))
    ws = b.input("w", "float64", (3, 2))
    with b:
        e2, s2 = irf.bind("call", xs, ws, graph=g)
    assert e2.shape == (4, 2) and s2.shape == ()
    with pytest.raises(irf.ShapeError, match="inner"):
        with b:
            irf.bind("call", xs, graph=g)


def test_call_under_a_tape_is_differentiable_first_and_second_order():
    g = small_graph()
    x, w = irf.tensor(RNG.standard_normal((4, 3))), irf.tensor(RNG.standard_normal((3, 2)))
    with irf.GradientTape() as outer:
        outer.watch(w)
        with irf.GradientTape() as tape:
            tape.watch([x, w])
            e, s = irf.bind("call", x, w, graph=g)
            loss = irf.reduce_sum(e) + s * 2.0
        gx, gw = tape.gradient(loss, [x, w])
        gsum = irf.reduce_sum(gw * gw)
    xv, wv = x.numpy(), w.numpy()
    d = np.exp(xv @ wv) + 2.0                    # d loss / d (x @ w)
    np.testing.assert_allclose(gx.numpy(), d @ wv.T, rtol=1e-12)
    np.testing.assert_allclose(gw.numpy(), xv.T @ d, rtol=1e-12)
    # second order: d/dw sum(gw^2) = 2 * sum_ij gw_ij d gw_ij/dw; gw = x^T (exp(xw) + 2)
    # d gw[k,j] / d w[l,j] = sum_i x[i,k] x[i,l] exp(xw)[i,j]
    gwv = xv.T @ d
    want = 2 * np.einsum("kj,ik,il,ij->lj", gwv, xv, xv, np.exp(xv @ wv))
    np.testing.assert_allclose(outer.gradient(gsum, w).numpy(), want, rtol=1e-10)


def test_graph_with_call_exports_to_onnx_and_its_gradient_too():
    g = small_graph("float32")
    b = irf.GraphBuilder("outer")
    x = b.input("x", "float32", ("n", 3))
    w = b.input("w", "float32", (3, 2))
    with b:
        e, s = irf.bind("call", x, w, graph=g)
        e2, _ = irf.bind("call", e @ irf.transpose(w), w, graph=g)  # the same graph twice: names must not clash
        b.output(irf.reduce_sum(e2) + s)
    outer = b.build(verify=True)
    gg = vjp_graph(outer, wrt=["x", "w"], seed="ones").verify()
    feeds = {"x": RNG.standard_normal((5, 3)).astype("float32") * 0.3, "w": RNG.standard_normal((3, 2)).astype("float32") * 0.3}
    for graph in (outer, gg):
        model = to_model(graph)
        onnx.checker.check_model(model, full_check=True)
        assert not any(n.op_type == "call" for n in model.graph.node)
        want = Interpreter(graph).run(feeds)
        got = OrtRunner(graph).run(feeds)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5)


def naive_log1pexp(x):
    return irf.log(1.0 + irf.exp(x))


@irf.custom_gradient
def log1pexp(x):
    """log(1 + e^x), stable: relu(x) + log(1 + e^-|x|); its gradient is sigmoid(x), computed
    from e = e^-|x| (never overflows): 1 / (1 + e) for x >= 0, e / (1 + e) below."""
    e = irf.exp(-irf.abs(x))

    def grad_fn(dy):
        return dy * irf.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))
    return irf.relu(x) + irf.log(1.0 + e), grad_fn


def test_custom_gradient_log1pexp_is_stable_at_100():
    x = np.array([-100.0, -1.0, 0.0, 1.0, 30.0, 100.0], dtype=np.float32)
    y, g = irf.value_and_grad(lambda a: irf.reduce_sum(log1pexp(a)))(x)
    want_y = np.logaddexp(0.0, x.astype(np.float64)).sum()
    np.testing.assert_allclose(float(y), want_y, rtol=1e-6)
    want_g = 1 / (1 + np.exp(-x.astype(np.float64)))
    # sigmoid(-100) = 3.7e-44 is a float32 subnormal with only a few significant bits: atol 1e-44
    np.testing.assert_allclose(g.numpy(), want_g, rtol=1e-6, atol=1e-44)
    assert np.isfinite(g.numpy()).all() and g.numpy()[0] > 0
    # the naive formula's autodiff gradient at 100 is inf/inf = NaN in float32: the reason for the custom rule
    with np.errstate(all="ignore"):
        gn = irf.grad(lambda a: irf.reduce_sum(naive_log1pexp(a)))(x)
    assert np.isnan(gn.numpy()[-1])


def test_custom_gradient_second_order_differentiates_the_custom_rule():
    x = np.array([-2.0, 0.5, 3.0])
    d2 = irf.grad(lambda a: irf.reduce_sum(irf.grad(lambda b: irf.reduce_sum(log1pexp(b)))(a)))(x)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(d2.numpy(), s * (1 - s), rtol=1e-10)


def test_custom_gradient_graph_and_its_gradient_export_to_onnxruntime():
    b = irf.GraphBuilder("softplus")
    x = b.input("x", "float32", ("n",))
    with b:
        b.output(irf.reduce_sum(log1pexp(x) * 2.0))
    g = b.build(verify=True)
    assert any(n.op == "custom_call" for n in g.nodes)
    gg = vjp_graph(g, wrt=["x"], seed="ones").verify()
    model = to_model(gg)
    onnx.checker.check_model(model, full_check=True)
    xv = np.array([-100.0, -1.0, 0.0, 2.0, 100.0], dtype=np.float32)
    got = OrtRunner(gg).run({"x": xv})
    want_grad = 2 / (1 + np.exp(-xv.astype(np.float64)))
    np.testing.assert_allclose(got[gg.output_names[-1]], want_grad, rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(got[gg.output_names[0]], 2 * np.logaddexp(0, xv.astype(np.float64)).sum(), rtol=1e-6)


def test_stop_gradient_in_a_graph_exports_as_identity():
    b = irf.GraphBuilder("sg")
    x = b.input("x", "float32", (3,))
    with b:
        b.output(irf.reduce_sum(irf.stop_gradient(x) * x))
    g = b.build(verify=True)
    gg = vjp_graph(g, wrt=["x"], seed="ones").verify()
    xv = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    got = OrtRunner(gg).run({"x": xv})
    np.testing.assert_allclose(got[gg.output_names[-1]], xv)


def test_custom_gradient_reading_a_variable_is_an_error_not_a_stale_constant():
    v = irf.Variable(np.array([1.0, 2.0]), name="scale")

    @irf.custom_gradient
    def scaled(x):
        return x * v, lambda dy: dy * v

    with pytest.raises(irf.IrflowError, match="Variable 'scale'"):
        scaled(np.array([1.0, 1.0]))


def test_custom_gradient_with_several_inputs_and_a_none_gradient():
    @irf.custom_gradient
    def f(x, y):
        return x * y, lambda dy: (dy * y * 10.0, None)   # a deliberately different rule for x, none for y

    x, y = RNG.standard_normal(3), RNG.standard_normal(3)
    gx, gy = irf.grad(lambda a, b: irf.reduce_sum(f(a, b)), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx.numpy(), 10 * y, rtol=1e-12)
    np.testing.assert_array_equal(gy.numpy(), np.zeros(3))


def test_graphs_with_call_and_custom_call_round_trip_through_json(tmp_path):
    b = irf.GraphBuilder("outer")
    x = b.input("x", "float64", (4, 3))
    w = b.input("w", "float64", (3, 2))
    with b:
        e, s = irf.bind("call", x, w, graph=small_graph())
        b.output(irf.reduce_sum(log1pexp(e)) + s)
    g = b.build(verify=True)
    gg = vjp_graph(g, wrt=["x", "w"], seed="ones").verify()
    path = tmp_path / "gg.irflow.json"
    gg.save(path)
    back = irf.ir.load(path).verify()
    assert back == gg
    feeds = {"x": RNG.standard_normal((4, 3)), "w": RNG.standard_normal((3, 2))}
    want, got = Interpreter(gg).run(feeds), Interpreter(back).run(feeds)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
