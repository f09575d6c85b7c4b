"""Jacobians by ONE vectorized graph (vmap of the VJP over one-hot cotangents): the seed's
nested vectorized_map form, tape.jacobian, irf.jacobian, batch_jacobian, hessian; against
float64 finite differences, hand formulas and the loop of gradients."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import irflow as irf
import irflow.autodiff.vmap_transform as vmap_mod
from irflow.executors.onnx import OrtRunner, to_model

RNG = np.random.default_rng(5)


def finite_difference_jacobian(f, x, eps=1e-6):
    """Central differences in float64, one column per element of x (the independent reference)."""
    y0 = np.asarray(f(x))
    jac = np.zeros(y0.shape + x.shape)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = eps
        jac[(Ellipsis,) + idx] = (np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps)
    return jac


def expm_xx(x):
    return np.exp(x @ x)


@pytest.fixture(scope="module")
def seed_problem():
    x_np = RNG.standard_normal((10, 10)) * 0.3
    x = irf.tensor(x_np)
    with irf.GradientTape(persistent=True) as t:
        t.watch(x)
        y = irf.exp(irf.matmul(x, x))
    eye = np.eye(100).reshape(100, 10, 10)  # the loop of gradients: one gradient per element of y
    loop = np.stack([t.gradient(y, x, output_gradients=eye[k]).numpy() for k in range(100)]).reshape(10, 10, 10, 10)
    return x_np, x, t, y, loop, finite_difference_jacobian(expm_xx, x_np)


def test_loop_of_gradients_matches_finite_differences(seed_problem):
    x_np, x, t, y, loop, fd = seed_problem
    np.testing.assert_allclose(loop, fd, rtol=1e-6, atol=1e-7)


def test_seed_nested_vectorized_map_with_tape_gradient_inside(seed_problem):
    x_np, x, t, y, loop, fd = seed_problem
    jac = irf.vectorized_map(lambda yi: irf.vectorized_map(lambda yij: t.gradient(yij, x), yi), y).numpy()
    assert jac.shape == (10, 10, 10, 10)
    np.testing.assert_allclose(jac, loop, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jac, fd, rtol=1e-6, atol=1e-7)


def test_tape_jacobian_is_one_vectorized_graph(seed_problem, monkeypatch):
    x_np, x, t, y, loop, fd = seed_problem
    calls = []
    orig = vmap_mod.vmap_graph
    monkeypatch.setattr(vmap_mod, "vmap_graph", lambda *a, **k: calls.append(a[2]) or orig(*a, **k))
    import irflow.autodiff.tape as tape_mod

    tape_mod._BATCHED.clear()
    jac = t.jacobian(y, x).numpy()
    assert calls == [100], "the jacobian should be one graph vmapped over the 100 one-hot cotangents"
    np.testing.assert_allclose(jac, loop, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.jacobian(y, x, experimental_use_pfor=False).numpy(), loop, rtol=1e-12, atol=1e-12)


def test_irf_jacobian_eager_and_traced(seed_problem):
    x_np, x, t, y, loop, fd = seed_problem
    f = lambda a: irf.exp(a @ a)  # noqa: E731
    np.testing.assert_allclose(irf.jacobian(f)(x_np).numpy(), fd, rtol=1e-6, atol=1e-7)
    traced = irf.function(irf.jacobian(f))
    np.testing.assert_allclose(traced(x_np).numpy(), loop, rtol=1e-12, atol=1e-12)
    g = traced.get_graph(x_np)
    assert len(g.nodes) < 60, f"the traced jacobian should not grow with y.size ({len(g.nodes)} nodes)"


def test_traced_jacobian_exports_to_onnx_and_agrees_with_onnxruntime(seed_problem):
    x_np, x, t, y, loop, fd = seed_problem
    traced = irf.function(irf.jacobian(lambda a: irf.exp(a @ a)))
    g = traced.get_graph(x_np)
    model = to_model(g)
    onnx.checker.check_model(model, full_check=True)
    ort = OrtRunner(g).run({g.inputs[0].name: x_np})
    np.testing.assert_allclose(np.asarray(list(ort.values())[0]), loop, rtol=1e-10, atol=1e-12)
    interp = irf.run(g, {g.inputs[0].name: x_np})
    np.testing.assert_allclose(np.asarray(list(interp.values())[0]), loop, rtol=1e-12, atol=1e-12)


def test_nested_vectorized_map_inside_irf_function(seed_problem):
    x_np, x, t, y, loop, fd = seed_problem

    @irf.function
    def jac(a):
        with irf.GradientTape(persistent=True) as tape:
            tape.watch(a)
            yy = irf.exp(a @ a)
        return irf.vectorized_map(lambda yi: irf.vectorized_map(lambda yij: tape.gradient(yij, a), yi), yy)

    np.testing.assert_allclose(jac(x_np).numpy(), loop, rtol=1e-12, atol=1e-12)
    g = jac.get_graph(x_np)
    assert "scan" not in [n.op for n in g.nodes], "every op of the nested jacobian has a batching rule"
    onnx.checker.check_model(to_model(g), full_check=True)
    ort = OrtRunner(g).run({g.inputs[0].name: x_np})
    np.testing.assert_allclose(np.asarray(list(ort.values())[0]), loop, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,fn", [
    ("broadcast_add_mul", lambda x: (x + np.arange(4.0)) * x),
    ("matmul_tanh", lambda x: irf.tanh(x @ np.linspace(-1, 1, 12).reshape(4, 3))),
    ("reduce_keepdims", lambda x: x / irf.reduce_sum(x * x, axis=1, keepdims=True)),
    ("mean_exp", lambda x: irf.reduce_mean(irf.exp(x), axis=0)),
    ("relu_matmul", lambda x: irf.tanh(irf.relu(x @ np.linspace(-1, 1, 12).reshape(4, 3)))),
])
def test_jacobians_against_finite_differences(name, fn):
    x = RNG.standard_normal((2, 4))
    j = irf.jacobian(fn)(x).numpy()
    fd = finite_difference_jacobian(lambda a: fn(irf.tensor(a)).numpy(), x)
    np.testing.assert_allclose(j, fd, rtol=1e-6, atol=1e-7)


def test_jacobian_under_an_outer_tape_is_differentiable():
    """hessian = jacobian of jacobian: the vectorized jacobian runs through bind when recorded."""
    x = RNG.standard_normal(4)
    h = irf.hessian(lambda a: irf.reduce_sum(irf.tanh(a) ** 3))(x).numpy()
    t = np.tanh(x)
    d2 = 6 * t * (1 - t ** 2) ** 2 - 6 * t ** 3 * (1 - t ** 2)  # d2/dx2 of tanh^3
    np.testing.assert_allclose(h, np.diag(d2), rtol=1e-10, atol=1e-12)
    traced = irf.function(irf.hessian(lambda a: irf.reduce_sum(irf.tanh(a) ** 3)))
    np.testing.assert_allclose(traced(x).numpy(), np.diag(d2), rtol=1e-10, atol=1e-12)


def test_batch_jacobian_equals_per_example_jacobians():
    w = RNG.standard_normal((3, 5))
    x = irf.tensor(RNG.standard_normal((6, 3)))
    with irf.GradientTape(persistent=True) as t:
        t.watch(x)
        y = irf.tanh(x @ w)
    bj = t.batch_jacobian(y, x).numpy()
    assert bj.shape == (6, 5, 3)
    for b in range(6):
        fd = finite_difference_jacobian(lambda a: np.tanh(a @ w), x.numpy()[b])
        np.testing.assert_allclose(bj[b], fd, rtol=1e-6, atol=1e-7)
    full = t.jacobian(y, x).numpy()  # (6, 5, 6, 3): its diagonal blocks
    np.testing.assert_allclose(bj, np.stack([full[b, :, b] for b in range(6)]), rtol=1e-12)

    @irf.function
    def traced(xx):
        with irf.GradientTape() as tape:
            tape.watch(xx)
            yy = irf.tanh(xx @ w)
        return tape.batch_jacobian(yy, xx)

    np.testing.assert_allclose(traced(x.numpy()).numpy(), bj, rtol=1e-12)


def test_jacobian_with_respect_to_several_sources_and_unconnected():
    x, u = irf.tensor(RNG.standard_normal(3)), irf.tensor(RNG.standard_normal(2))
    with irf.GradientTape(persistent=True) as tape:
        tape.watch([x, u])
        y = x * x
    jx, ju = tape.jacobian(y, [x, u])
    np.testing.assert_allclose(jx.numpy(), np.diag(2 * x.numpy()), rtol=1e-12)
    np.testing.assert_array_equal(ju.numpy(), np.zeros((3, 2)))
    assert tape.jacobian(y, u, unconnected_gradients="none") is None


def test_vmap_of_jacobian_and_hessian_eager_and_traced():
    """vmap(jacobian(f)) and vmap(hessian(f)) (per-example jacobians / hessians), against
    hand formulas; the traced version is one graph."""
    w = RNG.standard_normal((3, 3))
    xs = RNG.standard_normal((5, 3))
    f = lambda x: irf.tanh(x @ w)  # noqa: E731
    want = np.stack([(1 - np.tanh(x @ w) ** 2)[:, None] * w.T for x in xs])
    np.testing.assert_allclose(irf.vmap(irf.jacobian(f))(xs).numpy(), want, rtol=1e-12, atol=1e-14)
    traced = irf.function(lambda a: irf.vmap(irf.jacobian(f))(a))
    np.testing.assert_allclose(traced(xs).numpy(), want, rtol=1e-12, atol=1e-14)
    h = irf.vmap(irf.hessian(lambda x: irf.reduce_sum(irf.tanh(x) ** 3)))(xs).numpy()
    t = np.tanh(xs)
    d2 = 6 * t * (1 - t ** 2) ** 2 - 6 * t ** 3 * (1 - t ** 2)
    np.testing.assert_allclose(h, np.stack([np.diag(d) for d in d2]), rtol=1e-10, atol=1e-12)
