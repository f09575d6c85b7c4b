"""Nested control flow, higher order, and the errors users can cause."""
from __future__ import annotations

import numpy as np
import pytest

import irflow as irf
from irflow.autodiff import vjp
from tests.control.helpers import finite_diff, np_run, ort_run, ort_session

F32 = "float32"


def test_scan_of_scan_and_cond_gradient_vs_finite_differences_and_ort():
    def f(xs, w):
        def outer(c, row):
            c2, _ = irf.scan(lambda a, x: (irf.sin(a * w + x), ()), c, row)
            y = irf.cond(c2 > 0, lambda v: v * w, lambda v: v * v, c2)
            return c2, y

        c, ys = irf.scan(outer, np.float64(0.1), xs)
        return c + irf.reduce_sum(ys)

    g = irf.function(f).get_graph(irf.TensorSpec((3, 4), "float64"), irf.TensorSpec((), "float64"))
    gg = vjp(g, wrt=list(g.input_names), seed="ones")
    gg.verify()
    args = [np.random.default_rng(0).standard_normal((3, 4)), np.float64(0.8)]
    out = np_run(gg, args)
    fn = lambda *a: np_run(g, a)[0]  # noqa: E731
    for k in range(2):
        np.testing.assert_allclose(out[1 + k], finite_diff(fn, args, k), rtol=1e-6, atol=1e-9)
    for a, b in zip(ort_run(ort_session(gg), gg, args), out):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_second_order_through_scan():
    xs = np.array([0.3, -0.2, 0.5])

    def h(w):
        c, _ = irf.scan(lambda a, x: (irf.sin(a * w + x), ()), np.float64(0.1), irf.constant(xs))
        return c

    def ref(w):
        a = 0.1
        for x in xs:
            a = np.sin(a * w + x)
        return a

    d2 = float(irf.hessian(h)(irf.tensor(np.float64(0.7))).numpy())
    e = 1e-4
    assert d2 == pytest.approx((ref(0.7 + e) - 2 * ref(0.7) + ref(0.7 - e)) / e**2, rel=1e-6)


def test_cond_predicate_must_be_bool():
    with pytest.raises(irf.DTypeError, match="predicate must be a bool"):
        irf.function(lambda x: irf.cond(irf.reduce_sum(x), lambda v: v, lambda v: v, x))(np.ones(2, F32))


def test_scan_errors_name_the_problem():
    with pytest.raises(irf.IrflowError, match="length= is required"):
        irf.function(lambda c: irf.scan(lambda c, x: (c, c), c, None))(np.float32(0))
    with pytest.raises(irf.IrflowError, match="must return a pair"):
        irf.function(lambda xs: irf.scan(lambda c, x: c, np.float32(0), xs))(np.ones(3, F32))
    with pytest.raises(irf.ShapeError, match="scanned input 1 has length 4, expected 3"):
        irf.function(lambda a, b: irf.scan(lambda c, x: (c, x[0] + x[1]), np.float32(0), (a, b)))(np.ones(3, F32), np.ones(4, F32))
    with pytest.raises(irf.IrflowError, match="structure of init"):
        irf.function(lambda xs: irf.scan(lambda c, x: ((c, c), x), np.float32(0), xs))(np.ones(3, F32))


def test_while_loop_body_structure_error():
    with pytest.raises(irf.IrflowError, match="body_fn must return"):
        irf.function(lambda x: irf.while_loop(lambda v: v[0] < 3.0, lambda v: v[0] + 1.0, (x, x)))(np.float32(0))


def test_traced_value_leaking_into_a_later_trace_is_an_error():
    kept = []

    @irf.function
    def f(x):
        kept.append(x * 2.0)
        return x

    f(np.float32(1))

    @irf.function
    def g(x):
        return irf.cond(x > 0, lambda v: v + kept[0], lambda v: v, x)

    with pytest.raises(irf.IrflowError, match="cannot leave its trace"):
        g(np.float32(1))


def test_assigning_a_variable_inside_a_branch_is_an_error():
    w = irf.Variable(np.float32(1.0), name="w")

    def f(x):
        def br(v):
            w.assign(v)
            return v
        return irf.cond(x > 0, br, lambda v: v, x)

    with pytest.raises(irf.IrflowError, match="nested graph"):
        irf.function(f)(np.float32(1))


def test_dict_carries_and_xs_and_an_empty_carry():
    def f(xs, d):
        c, ys = irf.scan(lambda c, x: ({"s": c["s"] + x["a"], "n": c["n"] + 1}, {"sq": x["a"] * x["a"], "b": x["b"]}),
                         {"s": np.float32(0), "n": np.int64(0)}, {"a": xs, "b": d})
        _, zs = irf.scan(lambda c, x: ((), x * 2.0), (), xs)  # a map: no carry
        return c, ys, zs

    xs, d = np.float32([1, 2, 3]), np.int64([4, 5, 6])
    fn = irf.function(f)
    g = fn.get_graph(irf.TensorSpec(("T",), F32), irf.TensorSpec(("T",), "int64"))
    flat_ort = ort_run(ort_session(g), g, [xs, d])
    for c, ys, zs in (f(irf.tensor(xs), irf.tensor(d)), fn(xs, d)):
        assert float(c["s"].numpy()) == 6.0 and int(c["n"].numpy()) == 3 and c["n"].dtype == irf.int64
        np.testing.assert_array_equal(ys["sq"].numpy(), xs * xs)
        np.testing.assert_array_equal(ys["b"].numpy(), d)
        np.testing.assert_array_equal(zs.numpy(), 2 * xs)
    for got, want in zip(flat_ort, [6.0, 3, xs * xs, d, 2 * xs]):
        np.testing.assert_array_equal(got, want)
