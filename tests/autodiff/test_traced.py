"""One tape mechanism for eager and traced code: gradients inside irf.function and static
Programs become nodes of the same graph; an irf.function called under an eager tape is
differentiable."""
import numpy as np
import pytest

import irflow as irf
from irflow.autodiff import symbolic_gradients
from irflow.executors.numpy import Interpreter

RNG = np.random.default_rng(3)


def test_symbolic_gradients_emit_backward_nodes_into_the_builder():
    b = irf.GraphBuilder("train")
    x = b.input("x", "float64", ("n", 3))
    w = b.input("w", "float64", (3, 2))
    with b:
        y = irf.exp(x @ w)
        loss = irf.reduce_sum(y * y)
        gx, gw = symbolic_gradients(loss, [x, w])
        b.output(loss, gw, gx)
    g = b.build(verify=True)
    xv, wv = RNG.standard_normal((4, 3)) * 0.5, RNG.standard_normal((3, 2)) * 0.5
    out = Interpreter(g).run({"x": xv, "w": wv})
    d = 2 * np.exp(xv @ wv) ** 2                    # d loss / d (x @ w)
    np.testing.assert_allclose(out[g.output_names[1]], xv.T @ d, rtol=1e-12)
    np.testing.assert_allclose(out[g.output_names[2]], d @ wv.T, rtol=1e-12)


def test_symbolic_second_order_and_grad_ys():
    b = irf.GraphBuilder("hvp")
    x = b.input("x", "float64", (3,))
    v = b.input("v", "float64", (3,))
    with b:
        y = irf.reduce_sum(x * x * x)
        (gx,) = symbolic_gradients(y, [x])
        (hv,) = symbolic_gradients(irf.reduce_sum(gx * v), [x])   # Hessian-vector product: 6 x * v
        (weighted,) = symbolic_gradients([x * x], [x], grad_ys=[v])  # v * 2x
        b.output(hv, weighted)
    g = b.build(verify=True)
    xv, vv = RNG.standard_normal(3), RNG.standard_normal(3)
    out = Interpreter(g).run({"x": xv, "v": vv})
    np.testing.assert_allclose(out[g.output_names[0]], 6 * xv * vv, rtol=1e-12)
    np.testing.assert_allclose(out[g.output_names[1]], 2 * xv * vv, rtol=1e-12)


def test_symbolic_unconnected_zero_or_none():
    b = irf.GraphBuilder("u")
    x = b.input("x", "float32", (3,))
    u = b.input("u", "float32", (2,))
    with b:
        gx, gu = symbolic_gradients(irf.reduce_sum(x), [x, u])
        none = symbolic_gradients(irf.reduce_sum(x), [u], unconnected_gradients="none")
        b.output(gu)
    assert none == [None]
    out = Interpreter(b.build()).run({"x": np.ones(3, "float32"), "u": np.ones(2, "float32")})
    np.testing.assert_array_equal(next(iter(out.values())), np.zeros(2, "float32"))


def test_tape_inside_irf_function_makes_one_graph_of_forward_backward_update():
    w = irf.Variable(RNG.standard_normal((3, 2)), name="w")

    @irf.function
    def train_step(x, t):
        with irf.GradientTape() as tape:
            d = x @ w - t
            loss = irf.reduce_sum(d * d)
        gw = tape.gradient(loss, w)
        w.assign_sub(0.1 * gw)
        return loss

    x, t = RNG.standard_normal((5, 3)), RNG.standard_normal((5, 2))
    w0 = w.numpy().copy()
    loss = train_step(x, t)
    d = x @ w0 - t
    np.testing.assert_allclose(float(loss), np.sum(d * d), rtol=1e-12)
    np.testing.assert_allclose(w.numpy(), w0 - 0.1 * (2 * x.T @ d), rtol=1e-12)
    graph = train_step.get_graph(irf.TensorSpec((5, 3), "float64"), irf.TensorSpec((5, 2), "float64"))
    ops = [n.op for n in graph.nodes]
    assert "matmul" in ops and ops.count("matmul") >= 2      # forward and backward in the same graph
    assert len(graph.outputs) == 2                           # the loss and the new value of w


def test_static_program_gradients():
    prog = irf.static.Program()
    with prog:
        xs = irf.static.placeholder("x", (None, 3), "float64")
        w1 = irf.static.variable(RNG.standard_normal((3, 2)), name="w1")
        loss = irf.reduce_sum(irf.relu(xs @ w1) * 2.0)
        (g1,) = irf.static.gradients(loss, [w1])
    sess = irf.static.Session(prog)
    xv = RNG.standard_normal((4, 3))
    (gv,) = sess.run([g1], feed_dict={xs: xv})
    w1v = sess.run([w1])[0] if not hasattr(w1, "numpy") else w1.numpy()
    np.testing.assert_allclose(gv, xv.T @ (2.0 * ((xv @ w1v) > 0)), rtol=1e-12)


def test_irf_function_called_under_an_eager_tape_is_differentiable():
    w = irf.Variable(RNG.standard_normal((3, 2)), name="w_eager")

    @irf.function
    def f(x):
        return irf.reduce_sum(irf.exp(x @ w))

    x = irf.tensor(RNG.standard_normal((4, 3)))
    with irf.GradientTape() as tape:
        tape.watch(x)
        y = f(x) * 3.0
    gx, gw = tape.gradient(y, [x, w])
    e = 3.0 * np.exp(x.numpy() @ w.numpy())
    np.testing.assert_allclose(gx.numpy(), e @ w.numpy().T, rtol=1e-12)
    np.testing.assert_allclose(gw.numpy(), x.numpy().T @ e, rtol=1e-12)


def test_grad_of_irf_function_second_order():
    @irf.function
    def f(x):
        return irf.reduce_sum(irf.exp(x) * x)

    d2 = irf.grad(lambda a: irf.reduce_sum(irf.grad(f)(a)))
    xv = RNG.standard_normal(3)
    np.testing.assert_allclose(d2(xv).numpy(), (2 + xv) * np.exp(xv), rtol=1e-12)


def test_grad_transform_inside_a_trace():
    @irf.function
    def g(x):
        return irf.grad(lambda a: irf.reduce_sum(a * a * a))(x)

    xv = RNG.standard_normal(4)
    np.testing.assert_allclose(g(xv).numpy(), 3 * xv ** 2, rtol=1e-12)


def test_watch_accessed_variables_false_needs_explicit_watch():
    v = irf.Variable(np.array([1.0, 2.0]), name="v")
    with irf.GradientTape(watch_accessed_variables=False) as tape:
        y = irf.reduce_sum(v * v)
    assert tape.gradient(y, v, unconnected_gradients="none") is None
    with irf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(v)
        y = irf.reduce_sum(v * v)
    np.testing.assert_allclose(tape.gradient(y, v).numpy(), [2.0, 4.0])
    with irf.GradientTape() as tape:          # default: trainable variables are watched
        y = irf.reduce_sum(v * v * v)
    assert tape.watched_variables() == [v]
    np.testing.assert_allclose(tape.gradient(y, v).numpy(), [3.0, 12.0])


def test_untrainable_variable_is_not_watched_automatically():
    v = irf.Variable(np.array([1.0, 2.0]), name="frozen", trainable=False)
    with irf.GradientTape() as tape:
        y = irf.reduce_sum(v * v)
    assert tape.gradient(y, v, unconnected_gradients="none") is None


def test_variable_assigned_after_the_forward_pass_uses_the_value_read():
    v = irf.Variable(np.array([1.0, 2.0]), name="v2")
    with irf.GradientTape(persistent=True) as tape:
        y = irf.reduce_sum(v * v * v)
    v.assign(np.array([10.0, 10.0]))
    np.testing.assert_allclose(tape.gradient(y, v).numpy(), [3.0, 12.0])


def test_jvp_and_custom_gradient_inside_a_trace():
    @irf.custom_gradient
    def square(x):
        return x * x, lambda dy: dy * 2.0 * x

    @irf.function
    def f(x, t):
        y, dy = irf.jvp(lambda a: irf.sin(a) * a, (x,), (t,))
        g = irf.grad(lambda a: irf.reduce_sum(square(a)))(x)
        return dy, g

    xv, tv = RNG.standard_normal(4), RNG.standard_normal(4)
    dy, g = f(xv, tv)
    np.testing.assert_allclose(dy.numpy(), (np.cos(xv) * xv + np.sin(xv)) * tv, rtol=1e-12)
    np.testing.assert_allclose(g.numpy(), 2 * xv, rtol=1e-12)
    graph = f.get_graph(irf.TensorSpec((4,), "float64"), irf.TensorSpec((4,), "float64"))
    # The custom gradient stays in the IR as a call of its backward graph. (Its forward
    # custom_call is gone: only the gradient is returned, and the seed ones_like(loss), which
    # read the forward for its shape alone, is folded into a constant.)
    assert any(n.op == "call" and n.attrs["graph"].name.endswith("_bwd") for n in graph.nodes)


def test_grad_with_dict_argument_mirrors_it():
    params = {"w": RNG.standard_normal((3, 2)), "b": RNG.standard_normal(2)}
    x = RNG.standard_normal((4, 3))

    def loss(p):
        return irf.reduce_sum((irf.tensor(x) @ p["w"] + p["b"]) ** 2)

    g = irf.grad(loss)(params)
    r = 2 * (x @ params["w"] + params["b"])
    assert set(g) == {"w", "b"}
    np.testing.assert_allclose(g["w"].numpy(), x.T @ r, rtol=1e-12)
    np.testing.assert_allclose(g["b"].numpy(), r.sum(0), rtol=1e-12)


def test_hessian_and_jacobian_inside_a_trace():
    @irf.function
    def h(x):
        return irf.hessian(lambda a: irf.reduce_sum(irf.tanh(a) ** 3))(x), irf.jacobian(lambda a: irf.exp(a) * a)(x)

    xv = RNG.standard_normal(4)
    hess, jac = h(xv)
    t = np.tanh(xv)
    # d2/da2 tanh^3 = 6 t (1 - t^2)^2 - 6 t^3 (1 - t^2), written by hand; diagonal
    want = np.diag(6 * t * (1 - t ** 2) ** 2 - 6 * t ** 3 * (1 - t ** 2))
    np.testing.assert_allclose(hess.numpy(), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jac.numpy(), np.diag((1 + xv) * np.exp(xv)), rtol=1e-12)
