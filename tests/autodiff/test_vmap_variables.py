"""vmap / vectorized_map / jacobians with irf.Variable sources (not only watched tensors), as a
TF2 or JAX user writes them: the seed's nested vectorized_map with a Variable (it recursed
forever between the two vmap levels' read_variable), per-example gradients of an irf.nn.MLP's
variables by a tape inside vmap, inside irf.function and under an outer tape; against hand
formulas and NumPy backprop written here (float64)."""
from __future__ import annotations

import numpy as np

import irflow as irf

RNG = np.random.default_rng(23)


def jacobian_of_exp_xx(x: np.ndarray) -> np.ndarray:
    """d exp(x @ x)[i, j] / d x[k, l] = exp(z)[i, j] * (delta_ik x[l, j] + x[i, k] delta_jl)."""
    n = x.shape[0]
    ez, eye = np.exp(x @ x), np.eye(n)
    return ez[:, :, None, None] * (np.einsum("ik,lj->ijkl", eye, x) + np.einsum("ik,jl->ijkl", x, eye))


def test_seed_nested_vectorized_map_with_a_variable_source():
    x_np = RNG.standard_normal((10, 10)) * 0.3
    x = irf.Variable(x_np)
    with irf.GradientTape(persistent=True) as t:
        y = irf.exp(x @ x)
    jac = irf.vectorized_map(lambda yi: irf.vectorized_map(lambda yij: t.gradient(yij, x), yi), y).numpy()
    assert jac.shape == (10, 10, 10, 10)
    np.testing.assert_allclose(jac, jacobian_of_exp_xx(x_np), rtol=1e-10, atol=1e-12)


def test_nested_vectorized_map_with_a_variable_inside_irf_function():
    x_np = RNG.standard_normal((4, 4)) * 0.3
    x = irf.Variable(x_np)

    @irf.function
    def jac():
        with irf.GradientTape(persistent=True) as t:
            y = irf.exp(x @ x)
        return irf.vectorized_map(lambda yi: irf.vectorized_map(lambda yij: t.gradient(yij, x), yi), y)

    np.testing.assert_allclose(jac().numpy(), jacobian_of_exp_xx(x_np), rtol=1e-10, atol=1e-12)
    x.assign(x_np * 2)  # the Variable is read at run time, not frozen into the graph
    np.testing.assert_allclose(jac().numpy(), jacobian_of_exp_xx(x_np * 2), rtol=1e-10, atol=1e-12)


def test_jacobian_and_batch_jacobian_with_variable_sources():
    xs, w_np = RNG.standard_normal((4, 3)), RNG.standard_normal((3, 2))
    w, xv = irf.Variable(w_np), irf.Variable(xs)
    with irf.GradientTape(persistent=True) as t:
        y = irf.tanh(xv @ w)
    d = 1 - np.tanh(xs @ w_np) ** 2  # (4, 2)
    # dy[b, o] / dw[i, p] = d[b, o] xs[b, i] delta_op
    want_w = np.einsum("bo,bi,op->boip", d, xs, np.eye(2))
    for pfor in (True, False):
        np.testing.assert_allclose(t.jacobian(y, w, experimental_use_pfor=pfor).numpy(), want_w, rtol=1e-12)
    # dy[b, o] / dx[b, i] = d[b, o] w[i, o]
    np.testing.assert_allclose(t.batch_jacobian(y, xv).numpy(), np.einsum("bo,io->boi", d, w_np), rtol=1e-12)


def mlp_per_example_grads_numpy(ws, bs, x, y):
    """Hand backprop of sum((tanh(x W0 + b0) W1 + b1 - y)^2) for one example x (3,), y (2,)."""
    h = np.tanh(x @ ws[0] + bs[0])
    r = 2 * (h @ ws[1] + bs[1] - y)
    dh = (ws[1] @ r) * (1 - h ** 2)
    return [np.outer(x, dh), dh, np.outer(h, r), r]


def test_per_example_gradients_of_an_mlp_variables_by_a_tape_inside_vmap():
    mlp = irf.nn.MLP([3, 5, 2], activation="tanh", dtype="float64", rng=np.random.default_rng(1))
    for layer in mlp.layers:  # nonzero biases, so a wrong bias gradient shows
        layer.bias.assign(RNG.standard_normal(layer.bias.shape))
    variables = [mlp.layers[0].weight, mlp.layers[0].bias, mlp.layers[1].weight, mlp.layers[1].bias]
    xs, ys = RNG.standard_normal((6, 3)), RNG.standard_normal((6, 2))

    def per_example(x, y):
        with irf.GradientTape() as tape:
            err = mlp(irf.expand_dims(x, 0))[0] - y
            loss = irf.reduce_sum(err * err)
        return tape.gradient(loss, variables)

    ws = [v.numpy() for v in variables[0::2]]
    bs = [v.numpy() for v in variables[1::2]]
    want = [np.stack(g) for g in zip(*[mlp_per_example_grads_numpy(ws, bs, x, y) for x, y in zip(xs, ys)])]
    for got in (irf.vmap(per_example)(xs, ys), irf.function(irf.vmap(per_example))(xs, ys)):
        assert len(got) == 4
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-10, atol=1e-12)


def test_outer_tape_differentiates_through_vmap_of_a_variable_read():
    w_np, xs = RNG.standard_normal((3, 2)), RNG.standard_normal((5, 3))
    w = irf.Variable(w_np)
    with irf.GradientTape() as t:
        loss = irf.reduce_sum(irf.vmap(lambda x: irf.reduce_sum(irf.tanh(x @ w)))(xs))
    np.testing.assert_allclose(t.gradient(loss, w).numpy(), xs.T @ (1 - np.tanh(xs @ w_np) ** 2), rtol=1e-12)
