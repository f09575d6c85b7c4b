"""Vectorized jacobians (one batched pass over all one-hot seeds) against the per-seed
fallback and against hand-written derivatives."""
import numpy as np
import pytest

import irflow as irf
import irflow.autodiff.batching as batching

RNG = np.random.default_rng(5)
W = RNG.standard_normal((3, 4))
B = RNG.standard_normal(4)

FUNCTIONS = {
    "broadcast_add_mul": lambda x: (x + B) * x,
    "matmul_tanh": lambda x: irf.tanh(x @ W),
    "reduce_keepdims": lambda x: x / irf.reduce_sum(x * x, axis=1, keepdims=True),
    "transpose_expand": lambda x: irf.expand_dims(irf.transpose(x), 0) * 2.0,
    "softmax": lambda x: irf.softmax(x, axis=-1),
    "mean_exp": lambda x: irf.reduce_mean(irf.exp(x), axis=0),
    "matmul_relu": lambda x: irf.tanh(irf.relu(x @ W)),  # relu_grad of a batched gradient and an unbatched x
}


def jac_vectorized(fn, x):
    calls = []
    orig = batching.run_batched

    def spy(*a, **k):
        out = orig(*a, **k)
        calls.append(1)
        return out

    batching.run_batched = spy
    try:
        j = irf.jacobian(fn)(x)
    finally:
        batching.run_batched = orig
    return j, bool(calls)


def jac_loop(fn, x):
    """The per-seed fallback: taken when an outer tape records."""
    x = irf.tensor(x)
    with irf.GradientTape() as outer:
        outer.watch(x)
        with irf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        j = tape.jacobian(y, x)
    return j


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_vectorized_jacobian_equals_per_seed_loop(name):
    fn = FUNCTIONS[name]
    x = RNG.standard_normal((2, 3)) if name != "matmul_tanh" else RNG.standard_normal((2, 3))
    if name == "broadcast_add_mul":
        x = RNG.standard_normal((2, 4))
    j_vec, used_batching = jac_vectorized(fn, x)
    j_loop = jac_loop(fn, x)
    assert used_batching, f"{name}: expected the batched path"
    np.testing.assert_allclose(j_vec.numpy(), j_loop.numpy(), rtol=1e-12, atol=1e-14)


def test_softmax_jacobian_matches_hand_formula():
    x = RNG.standard_normal(5)
    j = irf.jacobian(lambda a: irf.softmax(a, axis=-1))(x).numpy()
    p = np.exp(x - x.max())
    p /= p.sum()
    np.testing.assert_allclose(j, np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-15)


def test_jacobian_with_respect_to_several_sources_and_unconnected():
    x, u = irf.tensor(RNG.standard_normal(3)), irf.tensor(RNG.standard_normal(2))
    with irf.GradientTape(persistent=True) as tape:
        tape.watch([x, u])
        y = x * x
    jx, ju = tape.jacobian(y, [x, u])
    np.testing.assert_allclose(jx.numpy(), np.diag(2 * x.numpy()), rtol=1e-12)
    np.testing.assert_array_equal(ju.numpy(), np.zeros((3, 2)))
    assert tape.jacobian(y, u, unconnected_gradients="none") is None


EXTRA = {
    "softmax_of_matmul": lambda x: irf.softmax(x @ W, axis=0),
    "cumsum_flip": lambda x: irf.flip(irf.cumsum(x * x, axis=1), axis=0),
    "reshape_broadcast": lambda x: irf.broadcast_to(irf.reshape(x, (3, 2)), (2, 3, 2)) * 1.5,
}


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_vectorized_jacobian_equals_loop_for_shape_and_nn_ops(name):
    x = RNG.standard_normal((2, 3))
    j_vec, used = jac_vectorized(EXTRA[name], x)
    j_loop = jac_loop(EXTRA[name], x)
    assert used, f"{name}: expected the batched path"
    np.testing.assert_allclose(j_vec.numpy(), j_loop.numpy(), rtol=1e-12, atol=1e-14)
