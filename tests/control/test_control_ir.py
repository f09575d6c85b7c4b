"""Control-flow nodes as IR: closed nested graphs in the verifier, JSON round trips, Programs."""
from __future__ import annotations

import numpy as np
import pytest

import irflow as irf
from irflow.ir.graph import Graph, Node, Value
from irflow.ir.types import TensorType
from tests.control.helpers import np_run

F32 = "float32"


def test_verifier_rejects_a_nested_graph_reading_an_outer_value():
    t = TensorType(dtype="float32", shape=(2,))
    # the branch reads %x of the outer graph without taking it as an input
    branch = Graph(name="br", inputs=(), outputs=(Value(name="y", type=t),),
                   nodes=(Node(op="exp", inputs=("x",), outputs=(Value(name="y", type=t),), name="e"),))
    outer = Graph(
        name="outer",
        inputs=(Value(name="p", type=TensorType(dtype="bool", shape=())), Value(name="x", type=t)),
        outputs=(Value(name="r", type=t),),
        nodes=(Node(op="cond", inputs=("p",), outputs=(Value(name="r", type=t),),
                    attrs={"then_branch": branch, "else_branch": branch}, name="c"),),
    )
    with pytest.raises(irf.IRValidationError, match="attribute 'then_branch'.*input %x is not defined"):
        outer.verify()


def test_control_flow_graph_json_round_trip(tmp_path):
    def f(xs, z):
        c, ys = irf.scan(lambda c, x: (c + x, irf.cond(x > z, lambda a: a * 2.0, lambda a: a, x)), np.float32(0), xs)
        return c, ys

    g = irf.function(f).get_graph(irf.TensorSpec(("T",), F32), irf.TensorSpec((), F32))
    path = tmp_path / "g.irflow.json"
    g.save(path)
    g2 = irf.ir.load(path)
    assert g2 == g
    g2.verify()
    xs = np.float32([1, -1, 3])
    c, ys = np_run(g2, [xs, np.float32(0)])
    assert float(c) == 3.0
    np.testing.assert_array_equal(ys, np.where(xs > 0, 2 * xs, xs))


@pytest.mark.parametrize("executor", ["numpy", "ort"])
def test_scan_in_a_static_program_trains(executor):
    rng = np.random.default_rng(0)
    wx0, wh0 = rng.standard_normal((3, 4)), 0.3 * rng.standard_normal((4, 4))
    prog = irf.static.Program()
    with prog:
        xs = irf.static.placeholder("xs", (None, 2, 3), "float64")
        wx = irf.static.variable(wx0, name="wx")
        wh = irf.static.variable(wh0, name="wh")
        _, hs = irf.scan(lambda h, x: (irf.tanh(x @ wx + h @ wh),) * 2, np.zeros((2, 4)), xs)
        loss = irf.reduce_sum(hs * hs)
        (gw,) = irf.static.gradients(loss, [wx])
        step = irf.static.group(wx.assign_sub(0.1 * gw))
    sess = irf.static.Session(prog, executor=executor)
    x = rng.standard_normal((5, 2, 3))

    def ref_loss(wx_):
        h, tot = np.zeros((2, 4)), 0.0
        for t in range(5):
            h = np.tanh(x[t] @ wx_ + h @ wh0)
            tot += np.sum(h * h)
        return tot

    assert float(sess.run(loss, {xs: x})) == pytest.approx(ref_loss(wx0), rel=1e-12)
    g = sess.run(gw, {xs: x})
    eps, fd = 1e-6, np.zeros_like(wx0)
    for i in np.ndindex(wx0.shape):
        d = np.zeros_like(wx0)
        d[i] = eps
        fd[i] = (ref_loss(wx0 + d) - ref_loss(wx0 - d)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    sess.run(step, {xs: x})
    np.testing.assert_allclose(sess.value(wx), wx0 - 0.1 * g, rtol=1e-12)
