"""AutoGraph-lite: Python if/while/for-range on traced tensors become cond/while_loop/scan."""
from __future__ import annotations

import numpy as np
import pytest

import irflow as irf
from irflow.autodiff import vjp
from irflow.frontends.autograph import convert
from tests.control.helpers import finite_diff, np_run, ort_run, ort_session

F32 = "float32"


def _ops(fn, *specs):
    return [n.op for n in fn.get_graph(*specs).nodes]


def _reference(x, n, w):
    y = x * w if x.sum() > 0 else -x
    for i in range(n):
        y = y + i
    k = 0
    while y.sum() < 100.0:
        y = y * 2.0
        k += 1
    return y, k


def test_if_for_while_on_traced_tensors_match_python():
    w = irf.Variable(np.float32(3.0), name="w")

    @irf.function(autograph=True)
    def f(x, n):
        if irf.reduce_sum(x) > 0:
            y = x * w
        else:
            y = -x
        for i in irf.range(n):
            y = y + irf.cast(i, "float32")
        k = 0
        while irf.reduce_sum(y) < 100.0:
            tmp = y * 2.0  # a body temporary
            y = tmp
            k = k + 1
        return y, k

    specs = (irf.TensorSpec((2,), F32), irf.TensorSpec((), "int64"))
    ops = _ops(f, *specs)
    assert ops.count("cond") == 1 and ops.count("while_loop") == 2  # for over a traced bound -> while_loop
    g = f.get_graph(*specs)
    sess = ort_session(g)
    for x, n in (([1.0, 2.0], 3), ([-1.0, -2.0], 0), ([0.5, -0.25], 5)):
        x = np.float32(x)
        want_y, want_k = _reference(x.astype(np.float64), n, 3.0)
        y, k = f(x, np.int64(n))
        np.testing.assert_allclose(y.numpy(), want_y, rtol=1e-6)
        assert int(k.numpy()) == want_k
        y_o, k_o = ort_run(sess, g, [x, np.int64(n), np.float32(3.0)])
        np.testing.assert_allclose(y_o, want_y, rtol=1e-6)
        assert int(k_o) == want_k


def test_python_conditions_stay_python():
    @irf.function(autograph=True)
    def f(x, training):
        if training:
            x = x * 2.0
        for _ in range(3):  # builtin range with int bounds: unrolled
            x = x + 1.0
        return x

    assert _ops(f, irf.TensorSpec((2,), F32), True) == ["mul", "add", "add", "add"]
    np.testing.assert_allclose(f(np.float32([1, 2]), False).numpy(), [4, 5])


def test_irf_range_with_int_bounds_is_one_scan_and_differentiates():
    @irf.function(autograph=True)
    def f(x, w):
        y = x
        for i in irf.range(1, 7, 2):  # i = 1, 3, 5
            y = irf.sin(y * w) + irf.cast(i, "float64")
        return y

    def ref(x, w):
        y = x
        for i in (1, 3, 5):
            y = np.sin(y * w) + i
        return y

    specs = [irf.TensorSpec((), "float64")] * 2
    assert _ops(f, *specs) == ["scan"]
    g = f.get_graph(*specs)
    gg = vjp(g, wrt=["x", "w"], seed="ones")
    args = [np.float64(0.4), np.float64(1.3)]
    y, dx, dw = np_run(gg, args)
    assert float(y) == pytest.approx(ref(*args), rel=1e-12)
    np.testing.assert_allclose([dx, dw], [finite_diff(ref, args, 0), finite_diff(ref, args, 1)], rtol=1e-7)


def test_branch_only_assignment_without_prior_value_is_an_error():
    @irf.function(autograph=True)
    def f(x):
        if irf.reduce_sum(x) > 0:
            y = x
        return y  # noqa: F821

    with pytest.raises(irf.IrflowError, match="'y' is assigned in only one branch"):
        f(np.float32([1.0]))


def test_if_with_return_is_left_to_python():
    @irf.function(autograph=True)
    def f(x):
        if irf.reduce_sum(x) > 0:
            return x
        return -x

    with pytest.raises(irf.IrflowError, match="use irf.cond"):
        f(np.float32([1.0]))


def test_converted_function_runs_eagerly_as_python():
    def f(x):
        if irf.reduce_sum(x) > 0:
            y = x * 2.0
        else:
            y = x * 0.0
        i = 0
        while i < 3:
            i = i + 1
        return y, i

    g = convert(f)
    y, i = g(irf.tensor(np.float32([1, 2])))
    np.testing.assert_allclose(y.numpy(), [2, 4])
    assert i == 3


def test_lambda_has_no_source_error():
    with pytest.raises(irf.IrflowError, match="source"):
        convert(eval("lambda x: x"))


def test_elif_chain_and_nested_loops():
    @irf.function(autograph=True)
    def f(x, n):
        s = irf.reduce_sum(x)
        if s > 10.0:
            y = x * 3.0
        elif s > 0.0:
            y = x * 2.0
        else:
            y = x * 0.0
        for i in irf.range(n):
            for j in irf.range(2):
                if irf.reduce_sum(y) < 50.0:
                    y = y + 1.0
        return y

    def ref(x, n):
        s = x.sum()
        y = x * 3.0 if s > 10 else x * 2.0 if s > 0 else x * 0.0
        for _ in range(n):
            for _ in range(2):
                if y.sum() < 50.0:
                    y = y + 1.0
        return y

    spec = (irf.TensorSpec((2,), F32), irf.TensorSpec((), "int64"))
    ops = _ops(f, *spec)
    assert ops.count("cond") == 1 and ops.count("while_loop") == 1  # the inner loops are nested graphs
    for x, n in (([5.0, 6.0], 20), ([1.0, 2.0], 3), ([-1.0, -2.0], 0)):
        np.testing.assert_allclose(f(np.float32(x), np.int64(n)).numpy(), ref(np.float64(x), n), rtol=1e-6)


def test_for_over_a_traced_tensor_is_a_scan_rnn():
    rng = np.random.default_rng(5)
    wx, wh = rng.standard_normal((3, 4)), 0.5 * rng.standard_normal((4, 4))

    @irf.function(autograph=True)
    def rnn(xs, h):
        total = irf.reduce_sum(h) * 0.0
        for x in xs:
            h = irf.tanh(x @ wx + h @ wh)
            total = total + irf.reduce_sum(h * h)
        return total

    specs = (irf.TensorSpec(("T", 2, 3), "float64"), irf.TensorSpec((2, 4), "float64"))
    assert _ops(rnn, *specs).count("scan") == 1
    g = rnn.get_graph(*specs)
    sess = ort_session(g)
    for T in (1, 7):
        xs, h0 = rng.standard_normal((T, 2, 3)), rng.standard_normal((2, 4))
        h, want = h0, 0.0
        for t in range(T):
            h = np.tanh(xs[t] @ wx + h @ wh)
            want += np.sum(h * h)
        assert float(rnn(xs, h0).numpy()) == pytest.approx(want, rel=1e-12)
        assert float(ort_run(sess, g, [xs, h0])[0]) == pytest.approx(want, rel=1e-12)
