"""One computation written eagerly, traced and static gives the same values and the same IR.

The network: a 2-layer ReLU MLP with an L2 loss, checked against NumPy written by hand.
"""
import numpy as np
import pytest

import irflow as irf
from irflow.frontends.recording import GraphRecorder
from tests.frontends.canonical import canonical

rng = np.random.default_rng(0)
N, D, H, C = 8, 4, 16, 3
X = rng.standard_normal((N, D)).astype(np.float32)
T = rng.standard_normal((N, C)).astype(np.float32)
W1 = rng.standard_normal((D, H)).astype(np.float32)
B1 = rng.standard_normal((H,)).astype(np.float32)
W2 = rng.standard_normal((H, C)).astype(np.float32)
B2 = rng.standard_normal((C,)).astype(np.float32)


def numpy_reference():
    h = np.maximum(X @ W1 + B1, 0)
    y = h @ W2 + B2
    d = y - T
    return y, np.float32(0.5) * np.sum(d * d)


def model(x, t, w1, b1, w2, b2):
    """The same Python for all three styles."""
    h = irf.relu(x @ w1 + b1)
    y = h @ w2 + b2
    d = y - t
    return y, 0.5 * irf.reduce_sum(d * d)


def make_variables():
    return [irf.Variable(a, name=n) for a, n in ((W1, "w1"), (B1, "b1"), (W2, "w2"), (B2, "b2"))]


def eager_style():
    vs = make_variables()
    x, t = irf.tensor(X), irf.tensor(T)
    with GraphRecorder("mlp") as rec:
        y, loss = model(x, t, *vs)
    return (y.numpy(), loss.numpy()), rec.to_graph({"x": x, "t": t}, [y, loss])


def traced_style(batch=N):
    vs = make_variables()
    f = irf.function(lambda x, t: model(x, t, *vs))
    y, loss = f(X, T)
    spec_x, spec_t = irf.TensorSpec((batch, D), "float32"), irf.TensorSpec((batch, C), "float32")
    return (y.numpy(), loss.numpy()), f.get_graph(spec_x, spec_t)


def static_style(batch=N):
    prog = irf.static.Program("mlp")
    with prog:
        x = irf.static.placeholder("x", (batch, D), "float32")
        t = irf.static.placeholder("t", (batch, C), "float32")
        vs = [irf.static.variable(a, name=n) for a, n in ((W1, "w1"), (B1, "b1"), (W2, "w2"), (B2, "b2"))]
        y, loss = model(x, t, *vs)
    sess = irf.static.Session(prog)
    y_v, loss_v = sess.run((y, loss), feed_dict={x: X, "t": T})
    return (y_v, loss_v), prog.to_ir([y, loss])


@pytest.mark.parametrize("style", [eager_style, traced_style, static_style], ids=["eager", "traced", "static"])
def test_forward_values_match_numpy(style):
    (y, loss), _ = style()
    y_ref, loss_ref = numpy_reference()
    assert y.dtype == np.float32 and loss.dtype == np.float32
    np.testing.assert_allclose(y, y_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-6, atol=1e-6)


def test_three_irs_are_structurally_equal():
    _, g_eager = eager_style()
    _, g_traced = traced_style()
    _, g_static = static_style()
    for g in (g_eager, g_traced, g_static):
        g.verify()
        assert [v.name for v in g.inputs] == ["x", "t", "w1", "b1", "w2", "b2"]
        assert [n.op for n in g.nodes] == ["matmul", "add", "relu", "matmul", "add", "sub", "mul", "reduce_sum", "mul"]
    assert canonical(g_eager) == canonical(g_traced) == canonical(g_static)


def test_traced_and_static_irs_agree_with_a_symbolic_batch():
    _, g_traced = traced_style(batch="batch")
    _, g_static = static_style(batch="batch")
    assert canonical(g_traced) == canonical(g_static)
    assert g_traced.inputs[0].type.shape == ("batch", D)


def test_canonical_form_tells_different_graphs_apart():
    """The comparison can fail: a different constant or op order gives a different form."""
    _, g = traced_style()
    vs = make_variables()
    f = irf.function(lambda x, t: (lambda y, l: (y, l * 2.0))(*model(x, t, *vs)))
    assert canonical(f.get_graph(X, T)) != canonical(g)
    g2 = irf.function(lambda x, t: model(x, t, *vs)[::-1]).get_graph(X, T)
    assert canonical(g2) != canonical(g)


# -- the dtype rule, enforced the same in the three frontends -----------------------------------------
PROMOTION_CASES = [
    # (a, b, expected dtype) -- Python scalars are weakly typed
    (np.ones(3, np.float16), 2.0, "float16"),
    (np.ones(3, np.float32), np.ones(3, np.float64), "float64"),
    (np.ones(3, np.int32), np.ones(3, np.int64), "int64"),
    (np.ones(3, np.int32), 2, "int32"),
    (np.ones(3, np.bool_), np.full(3, 1.5, np.float32), "float32"),
    (np.ones(3, np.float64), 3, "float64"),
    (np.full(3, 200, np.uint8), np.full(3, -3, np.int8), "int16"),
    (np.ones(3, np.float16), 3, "float16"),
]
PROMOTION_ERRORS = [
    (np.ones(3, np.int32), 1.5, "Python float"),
    (np.ones(3, np.int32), np.ones(3, np.float32), "int32"),
    (np.ones(3, np.bool_), 1.5, "Python float"),
]


def _run_three_ways(a, b):
    """a * b + a computed eagerly, traced and in a Program; returns the three results."""
    def fn(x, y):
        return x * y + x

    eager = fn(irf.tensor(a), b if not isinstance(b, np.ndarray) else irf.tensor(b))
    traced = irf.function(fn)(a, b) if isinstance(b, np.ndarray) else irf.function(lambda x: fn(x, b))(a)
    prog = irf.static.Program()
    with prog:
        pa = irf.static.placeholder("a", a.shape, a.dtype)
        pb = irf.static.placeholder("b", b.shape, b.dtype) if isinstance(b, np.ndarray) else b
        out = fn(pa, pb)
    feeds = {"a": a, "b": b} if isinstance(b, np.ndarray) else {"a": a}
    static = irf.static.Session(prog).run(out, feeds)
    return eager.numpy(), traced.numpy(), static


@pytest.mark.parametrize("a,b,want", PROMOTION_CASES)
def test_dtype_promotion_is_the_same_in_all_frontends(a, b, want):
    expected = (a.astype(want) * np.asarray(b).astype(want) + a.astype(want)).astype(want)
    for got in _run_three_ways(a, b):
        assert got.dtype == np.dtype(want)
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("a,b,text", PROMOTION_ERRORS)
def test_int_with_float_is_a_dtype_error_in_all_frontends(a, b, text):
    def fn(x, y):
        return x * y

    with pytest.raises(irf.DTypeError, match=text):
        fn(irf.tensor(a), irf.tensor(b) if isinstance(b, np.ndarray) else b)
    with pytest.raises(irf.DTypeError, match=text):
        if isinstance(b, np.ndarray):
            irf.function(fn)(a, b)
        else:
            irf.function(lambda x: fn(x, b))(a)
    prog = irf.static.Program()
    with prog, pytest.raises(irf.DTypeError, match=text):
        pa = irf.static.placeholder("a", a.shape, a.dtype)
        fn(pa, irf.static.placeholder("b", b.shape, b.dtype) if isinstance(b, np.ndarray) else b)


def test_python_scalars_alone_default_like_pytorch():
    assert irf.add(1.0, 2.0).dtype == irf.float32
    assert irf.add(1, 2).dtype == irf.int64
    assert irf.function(lambda: irf.add(1.0, 2.0))().dtype == irf.float32
