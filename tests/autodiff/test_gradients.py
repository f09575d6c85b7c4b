"""Gradients against independent references: hand-written NumPy backprop and float64
central finite differences (tolerances written next to each check)."""
import numpy as np
import pytest

import irflow as irf

RNG = np.random.default_rng(0)


def fd_grad(f, x, eps=1e-6):
    """Central differences of a scalar NumPy function f at x (float64), element by element."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


def test_sum_xy_plus_z_gradients_are_y_x_ones():
    x, y, z = (RNG.standard_normal((3, 4)) for _ in range(3))
    tx, ty, tz = irf.tensor(x), irf.tensor(y), irf.tensor(z)
    with irf.GradientTape() as tape:
        tape.watch([tx, ty, tz])
        s = irf.reduce_sum(tx * ty + tz)
    gx, gy, gz = tape.gradient(s, [tx, ty, tz])
    np.testing.assert_array_equal(gx.numpy(), y)
    np.testing.assert_array_equal(gy.numpy(), x)
    np.testing.assert_array_equal(gz.numpy(), np.ones((3, 4)))


def test_two_layer_relu_net_l2_loss_matches_hand_backprop():
    x = RNG.standard_normal((8, 5))
    t = RNG.standard_normal((8, 3))
    w1, b1 = RNG.standard_normal((5, 6)), RNG.standard_normal(6)
    w2, b2 = RNG.standard_normal((6, 3)), RNG.standard_normal(3)

    def loss(w1, b1, w2, b2):
        h = irf.relu(irf.tensor(x) @ w1 + b1)
        d = h @ w2 + b2 - irf.tensor(t)
        return irf.reduce_sum(d * d) * 0.5

    got = irf.grad(loss, argnums=(0, 1, 2, 3))(w1, b1, w2, b2)
    # hand-derived backprop
    z1 = x @ w1 + b1
    h = np.maximum(z1, 0)
    d = h @ w2 + b2 - t
    gw2, gb2 = h.T @ d, d.sum(0)
    dh = d @ w2.T
    dz1 = dh * (z1 > 0)
    gw1, gb1 = x.T @ dz1, dz1.sum(0)
    for g, want in zip(got, (gw1, gb1, gw2, gb2)):
        np.testing.assert_allclose(g.numpy(), want, rtol=1e-12, atol=1e-12)


def test_jacobian_of_exp_x_matmul_x_matches_finite_differences():
    x = RNG.standard_normal((10, 10)) * 0.3
    jac = irf.jacobian(lambda a: irf.exp(a @ a))(x).numpy()
    assert jac.shape == (10, 10, 10, 10)
    eps = 1e-6
    fd = np.zeros((10, 10, 10, 10))
    for i in np.ndindex(10, 10):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        fd[(...,) + i] = (np.exp(xp @ xp) - np.exp(xm @ xm)) / (2 * eps)
    np.testing.assert_allclose(jac, fd, rtol=1e-6, atol=1e-7)


def test_tape_jacobian_vectorized_equals_per_row_gradients():
    x = irf.tensor(RNG.standard_normal((3, 4)))
    w = irf.tensor(RNG.standard_normal((4, 2)))
    with irf.GradientTape(persistent=True) as tape:
        tape.watch([x, w])
        y = irf.exp(x @ w)
    jx, jw = tape.jacobian(y, [x, w])
    assert jx.shape == (3, 2, 3, 4) and jw.shape == (3, 2, 4, 2)
    xv, wv = x.numpy(), w.numpy()
    yv = np.exp(xv @ wv)
    # d y[i,j] / d x[k,l] = y[i,j] * delta_ik * w[l,j];  d y[i,j] / d w[k,l] = y[i,j] * x[i,k] * delta_jl
    want_x = np.einsum("ij,ik,lj->ijkl", yv, np.eye(3), wv)
    want_w = np.einsum("ij,ik,jl->ijkl", yv, xv, np.eye(2))
    np.testing.assert_allclose(jx.numpy(), want_x, rtol=1e-12)
    np.testing.assert_allclose(jw.numpy(), want_w, rtol=1e-12)


def test_hessian_of_sum_tanh_cubed_matches_finite_differences_of_gradient():
    x = RNG.standard_normal(5)
    hess = irf.hessian(lambda a: irf.reduce_sum(irf.tanh(a) ** 3))(x).numpy()

    def grad_np(a):  # d/da sum tanh(a)^3 = 3 tanh^2 (1 - tanh^2), written by hand
        t = np.tanh(a)
        return 3 * t ** 2 * (1 - t ** 2)

    eps = 1e-6
    fd = np.stack([(grad_np(x + eps * e) - grad_np(x - eps * e)) / (2 * eps) for e in np.eye(5)], axis=1)
    assert hess.shape == (5, 5)
    np.testing.assert_allclose(hess, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(hess, hess.T, atol=1e-12)


def test_hessian_through_relu_matches_finite_differences_of_gradient():
    # relu's gradient is a relu_grad node; its own VJP (w.r.t. the incoming gradient) carries
    # the second derivative, here through the vectorized jacobian of the gradient.
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal(5), rng.standard_normal((5, 4))
    h = x @ w
    assert (h > 0).any() and (h < 0).any() and np.abs(h).min() > 0.1  # both sides of the kink, none near it
    hess = irf.hessian(lambda a: irf.reduce_sum(irf.relu(a @ w) ** 3))(x).numpy()

    def grad_np(a):  # d/da sum relu(a w)^3 = w (3 relu(a w)^2), written by hand
        return w @ (3 * np.maximum(a @ w, 0) ** 2)

    eps = 1e-6
    fd = np.stack([(grad_np(x + eps * e) - grad_np(x - eps * e)) / (2 * eps) for e in np.eye(5)], axis=1)
    np.testing.assert_allclose(hess, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(hess, hess.T, atol=1e-12)


def test_grad_of_grad_of_sin_is_minus_sin():
    xs = np.linspace(-3, 3, 7)
    d2 = irf.grad(irf.grad(irf.sin))
    for v in xs:
        np.testing.assert_allclose(float(d2(np.float64(v))), -np.sin(v), rtol=1e-12, atol=1e-14)


def test_third_derivative_through_nested_grads():
    d3 = irf.grad(irf.grad(irf.grad(lambda x: x * x * x * x)))
    np.testing.assert_allclose(float(d3(np.float64(1.5))), 24 * 1.5, rtol=1e-12)


def test_jvp_equals_finite_difference_directional_derivative():
    x = RNG.standard_normal((4, 3))
    w = RNG.standard_normal((3, 3))
    t = RNG.standard_normal((4, 3))

    def f_np(a):
        return np.exp(np.tanh(a @ w)) * a

    y, dy = irf.jvp(lambda a: irf.exp(irf.tanh(a @ w)) * a, (x,), (t,))
    eps = 1e-6
    fd = (f_np(x + eps * t) - f_np(x - eps * t)) / (2 * eps)
    np.testing.assert_allclose(y.numpy(), f_np(x), rtol=1e-12)
    np.testing.assert_allclose(dy.numpy(), fd, rtol=1e-6, atol=1e-8)


def test_vjp_transform_matches_hand_formula_and_can_be_called_twice():
    x = RNG.standard_normal(4)
    y, f_vjp = irf.vjp(lambda a: irf.exp(a) * 2.0, x)
    ct = RNG.standard_normal(4)
    (g1,) = f_vjp(irf.tensor(ct))
    (g2,) = f_vjp(irf.tensor(2 * ct))
    np.testing.assert_allclose(g1.numpy(), ct * 2 * np.exp(x), rtol=1e-12)
    np.testing.assert_allclose(g2.numpy(), 2 * ct * 2 * np.exp(x), rtol=1e-12)


def test_value_and_grad_has_aux_and_argnums_tuple():
    x, y = RNG.standard_normal(3), RNG.standard_normal(3)

    def f(a, b):
        s = irf.reduce_sum(a * b)
        return s, "aux"

    (v, aux), (ga, gb) = irf.value_and_grad(f, argnums=(0, 1), has_aux=True)(x, y)
    assert aux == "aux"
    np.testing.assert_allclose(float(v), float(np.sum(x * y)), rtol=1e-12)
    np.testing.assert_array_equal(ga.numpy(), y)
    np.testing.assert_array_equal(gb.numpy(), x)


def test_grad_of_non_scalar_function_is_an_error():
    with pytest.raises(irf.IrflowError, match="scalar"):
        irf.grad(lambda a: a * 2.0)(np.ones(3))


def test_broadcasting_gradients_sum_to_the_input_shape():
    x = RNG.standard_normal((4, 1, 3))
    b = RNG.standard_normal(3)
    gx, gb = irf.grad(lambda a, c: irf.reduce_sum((a + c) * (a * c)), argnums=(0, 1))(x, b)
    # d/da sum((a+c)*a*c) = (2a c + c^2) summed over the broadcast axis of size 1 (none here: a is 4x1x3 vs c 3)
    full_a = np.broadcast_to(x, (4, 1, 3))
    np.testing.assert_allclose(gx.numpy(), 2 * full_a * b + b ** 2, rtol=1e-12)
    np.testing.assert_allclose(gb.numpy(), (full_a ** 2 + 2 * full_a * b).sum(axis=(0, 1)), rtol=1e-12)
