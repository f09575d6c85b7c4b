"""cond and scan: eager, traced on NumPy and exported to onnxruntime agree; gradients match
float64 finite differences and a Python-unrolled reference."""
from __future__ import annotations

import numpy as np
import pytest

import irflow as irf
from irflow.autodiff import vjp
from tests.control.helpers import finite_diff, np_run, ort_run, ort_session

F32 = "float32"


# -- y = w1*x if z > 0 else w2*x ------------------------------------------------------------------
def _branchy(x, z, w1, w2):
    return irf.cond(z > 0, lambda x: w1 * x, lambda x: w2 * x, x)


@pytest.mark.parametrize("z", [1.5, -0.5])
def test_cond_eager_traced_ort_agree(z):
    x = np.array([1.0, -2.0, 3.0], F32)
    w1, w2 = np.float32(2.5), np.float32(-0.75)
    want = (w1 if z > 0 else w2) * x  # NumPy reference
    eager = _branchy(irf.tensor(x), irf.tensor(np.float32(z)), irf.tensor(w1), irf.tensor(w2)).numpy()
    f = irf.function(_branchy)
    traced = f(x, np.float32(z), w1, w2).numpy()
    g = f.get_graph(irf.TensorSpec((None,), F32), *[irf.TensorSpec((), F32)] * 3)
    assert [n.op for n in g.nodes].count("cond") == 1
    (on_ort,) = ort_run(ort_session(g), g, [x, np.float32(z), w1, w2])
    for got in (eager, traced, on_ort):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_cond_closure_over_variables_becomes_node_inputs():
    w1 = irf.Variable(np.float32(2.0), name="w1")
    w2 = irf.Variable(np.float32(-3.0), name="w2")

    @irf.function
    def f(x, z):
        return irf.cond(z > 0, lambda x: w1 * x, lambda x: w2 * x, x)

    x = np.array([1.0, 2.0], F32)
    np.testing.assert_allclose(f(x, np.float32(1)).numpy(), 2 * x)
    np.testing.assert_allclose(f(x, np.float32(-1)).numpy(), -3 * x)
    w1.assign(np.float32(5.0))  # the variable is an input of the graph, read at each call
    np.testing.assert_allclose(f(x, np.float32(1)).numpy(), 5 * x)
    g = f.get_graph(irf.TensorSpec((2,), F32), irf.TensorSpec((), F32))
    (node,) = [n for n in g.nodes if n.op == "cond"]
    assert len(node.inputs) == 4  # pred, x, w1, w2: the node is self-contained
    for br in (node.attrs["then_branch"], node.attrs["else_branch"]):
        assert len(br.inputs) == 3
        br.verify()  # closed: verifies with no outer scope


@pytest.mark.parametrize("z", [1.0, -1.0])
def test_cond_gradient_vs_finite_differences(z):
    def loss(x, z, w1, w2):
        y = irf.cond(z > 0, lambda x: w1 * x * x, lambda x: irf.sin(w2 * x), x)
        return irf.reduce_sum(y)

    specs = [irf.TensorSpec(s, "float64") for s in [(3,), (), (), ()]]
    g = irf.function(loss).get_graph(*specs)
    gg = vjp(g, wrt=list(g.input_names), seed="ones")
    gg.verify()
    args = [np.array([0.3, -1.2, 2.0]), np.array(z), np.array(0.7), np.array(-1.3)]
    out = dict(zip(gg.output_names, np_run(gg, args)))
    f = lambda *a: np_run(g, a)[0]  # noqa: E731
    for k, name in enumerate(g.input_names):
        np.testing.assert_allclose(out[f"grad_{name}"], finite_diff(f, args, k), rtol=1e-6, atol=1e-8)
    # and the gradient graph (a cond of the branch gradients) runs on onnxruntime
    ort_out = dict(zip(gg.output_names, ort_run(ort_session(gg), gg, args)))
    for name in g.input_names:
        np.testing.assert_allclose(ort_out[f"grad_{name}"], out[f"grad_{name}"], rtol=1e-10)


def test_cond_branch_mismatch_errors():
    def f(x, z):
        return irf.cond(z > 0, lambda x: x, lambda x: irf.cast(x, "float64"), x)

    with pytest.raises(irf.IRValidationError, match="then_branch.*else_branch|dtypes and ranks"):
        irf.function(f)(np.ones(2, F32), np.float32(1))

    def g(x, z):
        return irf.cond(z > 0, lambda x: (x, x), lambda x: x, x)

    with pytest.raises(irf.IrflowError, match="different structures"):
        irf.function(g)(np.ones(2, F32), np.float32(1))


def test_verifier_rejects_mismatched_branch_graph():
    b = irf.GraphBuilder("outer")
    p = b.input("p", "bool", ())
    x = b.input("x", F32, (2,))
    tb = irf.GraphBuilder("t"); tx = tb.input("a", F32, (2,)); tb.output(tb.op("exp", tx))
    eb = irf.GraphBuilder("e"); ex = eb.input("a", F32, (2,)); eb.output(eb.op("cast", ex, dtype="float64"))
    with pytest.raises(irf.IRValidationError, match="output 0 is float32\\[2\\] in then_branch 't' but float64\\[2\\]"):
        b.op("cond", p, x, then_branch=tb.build(), else_branch=eb.build())


# -- an Elman RNN unrolled by scan ------------------------------------------------------------------
def _rnn(xs, h0, wx, wh, b):
    def step(h, x):
        h = irf.tanh(x @ wx + h @ wh + b)
        return h, h

    return irf.scan(step, h0, xs)


def _rnn_numpy(xs, h0, wx, wh, b):
    h, hs = h0, []
    for x in xs:
        h = np.tanh(x @ wx + h @ wh + b)
        hs.append(h)
    return h, np.stack(hs)


def _rnn_args(T, dtype=F32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((T, 2, 3)).astype(dtype), rng.standard_normal((2, 4)).astype(dtype),
            (0.5 * rng.standard_normal((3, 4))).astype(dtype), (0.5 * rng.standard_normal((4, 4))).astype(dtype),
            (0.1 * rng.standard_normal(4)).astype(dtype)]


def _rnn_specs(dtype=F32):
    return [irf.TensorSpec(("T", 2, 3), dtype), irf.TensorSpec((2, 4), dtype), irf.TensorSpec((3, 4), dtype),
            irf.TensorSpec((4, 4), dtype), irf.TensorSpec((4,), dtype)]


def test_rnn_scan_eager_traced_ort_agree_for_lengths_3_and_50():
    f = irf.function(_rnn, input_signature=_rnn_specs())
    g = f.get_graph(*_rnn_specs())
    assert [n.op for n in g.nodes] == ["scan"]
    sess = ort_session(g)  # ONE exported model, a symbolic sequence length
    for T in (3, 50):
        args = _rnn_args(T, seed=T)
        h_ref, hs_ref = _rnn_numpy(*args)
        h_e, hs_e = _rnn(*map(irf.tensor, args))
        h_t, hs_t = f(*args)
        h_o, hs_o = ort_run(sess, g, args)
        assert hs_o.shape == (T, 2, 4)
        for h, hs in ((h_e.numpy(), hs_e.numpy()), (h_t.numpy(), hs_t.numpy()), (h_o, hs_o)):
            np.testing.assert_allclose(h, h_ref, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(hs, hs_ref, rtol=1e-5, atol=1e-6)


def _rnn_loss(xs, h0, wx, wh, b):
    h, hs = _rnn(xs, h0, wx, wh, b)
    return irf.reduce_sum(h * h) + irf.reduce_mean(hs * hs * 0.5)


def test_rnn_gradients_vs_finite_differences_and_unrolled_python():
    g = irf.function(_rnn_loss).get_graph(*_rnn_specs("float64"))
    gg = vjp(g, wrt=list(g.input_names), seed="ones")
    gg.verify()
    args = [a.astype(np.float64) for a in _rnn_args(5, seed=1)]
    out = dict(zip(gg.output_names, np_run(gg, args)))
    f = lambda *a: np_run(g, a)[0]  # noqa: E731
    # the same RNN unrolled by a Python loop, differentiated by an eager tape
    ts = [irf.Variable(a, name=f"v{i}") for i, a in enumerate(args)]
    with irf.GradientTape() as tape:
        h, hs = ts[1], []
        for t in range(args[0].shape[0]):
            h = irf.tanh(ts[0][t] @ ts[2] + h @ ts[3] + ts[4])
            hs.append(h)
        loss = irf.reduce_sum(h * h) + irf.reduce_mean(irf.stack(hs) * irf.stack(hs) * 0.5)
    unrolled = tape.gradient(loss, ts)
    for k, name in enumerate(g.input_names):
        fd = finite_diff(f, args, k)
        np.testing.assert_allclose(out[f"grad_{name}"], fd, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(out[f"grad_{name}"], unrolled[k].numpy(), rtol=1e-10, atol=1e-12)


def test_eager_scan_on_a_tape_matches_traced_gradient():
    args = [a.astype(np.float64) for a in _rnn_args(4, seed=2)]
    ws = [irf.Variable(a, name=f"p{i}") for i, a in enumerate(args)]
    with irf.GradientTape() as tape:
        loss = _rnn_loss(*ws)
    eager = tape.gradient(loss, ws)
    g = irf.function(_rnn_loss).get_graph(*_rnn_specs("float64"))
    gg = vjp(g, wrt=list(g.input_names), seed="ones")
    out = dict(zip(gg.output_names, np_run(gg, args)))
    for e, name in zip(eager, g.input_names):
        np.testing.assert_allclose(e.numpy(), out[f"grad_{name}"], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("T", [1, 4])
def test_running_product_dyT_dw(T):
    # y_t = (y_{t-1} + x_t) * w, so y_T = y0 w^T + sum_t x_t w^(T-t+1)
    def f(y0, xs, w):
        yT, _ = irf.scan(lambda y, x: ((y + x) * w, y), y0, xs)
        return yT

    rng = np.random.default_rng(T)
    y0, xs, w = np.float64(0.4), rng.standard_normal(T), np.float64(1.3)
    t = np.arange(1, T + 1)
    want_y = y0 * w**T + np.sum(xs * w ** (T - t + 1))
    want_dw = T * y0 * w ** (T - 1) + np.sum(xs * (T - t + 1) * w ** (T - t))
    fn = irf.function(f)
    g = fn.get_graph(irf.TensorSpec((), "float64"), irf.TensorSpec(("T",), "float64"), irf.TensorSpec((), "float64"))
    gg = vjp(g, wrt=["w"], seed="ones")
    y, dw = np_run(gg, [y0, xs, w])
    np.testing.assert_allclose(y, want_y, rtol=1e-12)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-12)
    y_o, dw_o = ort_run(ort_session(gg), gg, [y0, xs, w])
    np.testing.assert_allclose(dw_o, want_dw, rtol=1e-12)
    np.testing.assert_allclose(y_o, want_y, rtol=1e-12)
    eager_dw = irf.grad(f, argnums=2)(irf.tensor(y0), irf.tensor(xs), irf.tensor(w))  # a tape over the Python loop
    np.testing.assert_allclose(eager_dw.numpy(), want_dw, rtol=1e-12)


def test_rnn_training_step_on_onnxruntime():
    """A traced train step (forward scan, tape gradient = reverse scan, SGD update) runs on ORT
    and agrees with the same step on the NumPy executor and with a hand-written NumPy step."""
    args = _rnn_args(6, seed=3)
    xs, h0 = args[0], args[1]
    params = {}
    for ex in ("numpy", "ort"):
        ws = [irf.Variable(a.copy(), name=n) for a, n in zip(args[2:], ["wx", "wh", "b"])]

        @irf.function(executor=ex)
        def step(xs, h0):
            with irf.GradientTape() as tape:
                loss = _rnn_loss(xs, h0, *ws)
            grads = tape.gradient(loss, ws)
            for w, gw in zip(ws, grads):
                w.assign_sub(0.1 * gw)
            return loss

        losses = [float(step(xs, h0).numpy()) for _ in range(3)]
        params[ex] = ([w.numpy() for w in ws], losses)
    for a, b in zip(params["numpy"][0], params["ort"][0]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(params["numpy"][1], params["ort"][1], rtol=1e-5)
    assert params["ort"][1][2] < params["ort"][1][0]  # it trains
    # first step against float64 finite differences of the loss
    g = irf.function(_rnn_loss).get_graph(*_rnn_specs("float64"))
    a64 = [a.astype(np.float64) for a in args]
    f = lambda *a: np_run(g, a)[0]  # noqa: E731
    for k in (2, 3, 4):
        want = a64[k] - 0.1 * finite_diff(f, a64, k)
        # after one step only: recompute with a fresh run
        ws = [irf.Variable(x.copy(), name=f"q{i}") for i, x in enumerate(args[2:])]

        @irf.function(executor="ort")
        def one(xs, h0):
            with irf.GradientTape() as tape:
                loss = _rnn_loss(xs, h0, *ws)
            for w, gw in zip(ws, tape.gradient(loss, ws)):
                w.assign_sub(0.1 * gw)
            return loss

        one(xs, h0)
        np.testing.assert_allclose(ws[k - 2].numpy(), want, rtol=1e-4, atol=1e-5)


def test_scan_reverse_and_no_xs():
    def f(c):
        return irf.scan(lambda c, _: (c + 1.0, c * 2.0), c, None, length=4, reverse=True)

    want_c, want_ys = 5.0, np.array([8.0, 6.0, 4.0, 2.0], F32)  # step t=3 runs first with c=1
    ce, yse = f(irf.tensor(np.float32(1)))
    fn = irf.function(f)
    ct, yst = fn(np.float32(1))
    g = fn.get_graph(irf.TensorSpec((), F32))
    co, yso = ort_run(ort_session(g), g, [np.float32(1)])
    for c, ys in ((ce.numpy(), yse.numpy()), (ct.numpy(), yst.numpy()), (co, yso)):
        assert float(c) == want_c
        np.testing.assert_array_equal(ys, want_ys)


def test_scan_reverse_with_xs_gradient():
    def f(xs, w):
        c, ys = irf.scan(lambda c, x: (c * w + x, c * x), np.float64(1.0), xs, reverse=True)
        return c + irf.reduce_sum(ys * ys)

    g = irf.function(f).get_graph(irf.TensorSpec(("T",), "float64"), irf.TensorSpec((), "float64"))
    gg = vjp(g, wrt=list(g.input_names), seed="ones")
    args = [np.array([0.5, -1.0, 2.0]), np.array(0.9)]
    out = np_run(gg, args)
    fn = lambda *a: np_run(g, a)[0]  # noqa: E731
    for k in range(2):
        np.testing.assert_allclose(out[1 + k], finite_diff(fn, args, k), rtol=1e-6)
    ort_out = ort_run(ort_session(gg), gg, args)
    for a, b in zip(out, ort_out):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_scan_carry_type_change_is_an_error():
    def f(x):
        return irf.scan(lambda c, x: (irf.cast(c, "float64"), x), np.float32(0), x)

    with pytest.raises(irf.DTypeError, match="carry 0"):
        irf.function(f)(np.ones(3, F32))


def test_nested_cond_inside_scan_captures_through_two_levels():
    w = irf.Variable(np.float32(3.0), name="w")

    def f(xs, thr):
        def step(c, x):
            y = irf.cond(x > thr, lambda v: v * w, lambda v: -v, x)
            return c + y, y
        return irf.scan(step, np.float32(0), xs)

    xs = np.array([1.0, -2.0, 4.0, 0.5], F32)
    thr = np.float32(0.7)
    want_y = np.where(xs > thr, xs * 3.0, -xs)
    fn = irf.function(f)
    for c, ys in (f(irf.tensor(xs), irf.tensor(thr)), fn(xs, thr)):
        np.testing.assert_allclose(ys.numpy(), want_y)
        np.testing.assert_allclose(c.numpy(), want_y.sum())
    g = fn.get_graph(irf.TensorSpec(("T",), F32), irf.TensorSpec((), F32))
    g.verify()
    c, ys = ort_run(ort_session(g), g, [xs, thr, np.float32(3.0)])
    np.testing.assert_allclose(ys, want_y)


def test_gradient_graph_runs_the_forward_scan_once():
    g = irf.function(_rnn_loss).get_graph(*_rnn_specs("float64"))
    gg = vjp(g, wrt=["wx", "wh"], seed="ones")
    scans = [n for n in gg.nodes if n.op == "scan"]
    assert len(scans) == 2  # the forward (also saving its per-step carries) and the reverse scan
    assert [n.attrs["reverse"] for n in scans] == [False, True]
    assert len(scans[0].outputs) == 3  # final h, stacked hs, stacked carry-in
