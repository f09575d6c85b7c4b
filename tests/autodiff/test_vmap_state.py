"""Variable assignments inside irf.vmap (issue 13): an assignment whose value does not depend on
the batch is applied once per vmapped call (eagerly after the batched graph runs, inside
irf.function as the function's state output); one that depends on the batch (BatchNorm's running
statistics in training mode) is an IrflowError naming the Variable. irf.nn.Dropout under vmap
gives example b the mask of the loop's (b+1)-th call, so per-example gradients of a model with
dropout equal a Python loop of irf.grad calls and a NumPy backprop written here (float64)."""
from __future__ import annotations

import numpy as np
import pytest

import irflow as irf

RNG = np.random.default_rng(13)
B, D, H, C = 5, 4, 6, 3


def _params():
    return (RNG.standard_normal((D, H)) * 0.5, RNG.standard_normal(H) * 0.1, RNG.standard_normal((H, C)) * 0.5)


def _loss_fn(drop):
    def loss(w1, b1, w2, x, y):
        h = drop(irf.relu(x @ w1 + b1), training=True)
        return irf.reduce_sum(irf.square(h @ w2 - y))
    return loss


def _numpy_grads(w1, b1, w2, x, y, mask):
    """Backprop of sum((drop(relu(x w1 + b1)) w2 - y)^2) for one example; ``mask`` includes the 1/(1-rate) scale."""
    z = x @ w1 + b1
    a = np.maximum(z, 0.0)
    h = a * mask
    r = h @ w2 - y
    g_out = 2.0 * r
    g_w2 = np.outer(h, g_out)
    g_h = w2 @ g_out
    g_z = g_h * mask * (z > 0)
    return np.outer(x, g_z), g_z, g_w2


def _reset(drop, k):
    drop._module_calls.assign(np.array(k, np.int64))


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "irf.function"])
def test_per_example_gradients_with_dropout_match_a_python_loop_and_numpy(traced):
    w1, b1, w2 = _params()
    xs, ys = RNG.standard_normal((B, D)), RNG.standard_normal((B, C))
    drop = irf.nn.Dropout(0.5, seed=7)
    loss = _loss_fn(drop)
    per_example = irf.vmap(irf.grad(loss, argnums=(0, 1, 2)), in_axes=(None, None, None, 0, 0))
    run = irf.function(per_example) if traced else per_example

    _reset(drop, 3)
    got = [g.numpy() for g in run(w1, b1, w2, xs, ys)]
    assert int(drop._module_calls.numpy()) == 3 + B  # one assignment for the whole call: k -> k + B

    # the Python loop a user would write, from the same counter
    _reset(drop, 3)
    loop = [[g.numpy() for g in irf.grad(loss, argnums=(0, 1, 2))(w1, b1, w2, xs[i], ys[i])] for i in range(B)]
    assert int(drop._module_calls.numpy()) == 3 + B
    for j in range(3):
        np.testing.assert_allclose(got[j], np.stack([lg[j] for lg in loop]), rtol=1e-12, atol=1e-12)

    # NumPy backprop with each call's mask read off the unbatched layer (dropout of ones)
    _reset(drop, 3)
    masks = [drop(irf.tensor(np.ones(H)), training=True).numpy() for _ in range(B)]
    assert len({tuple(m) for m in masks}) > 1  # the examples' masks differ
    assert all(set(np.unique(m)) <= {0.0, 2.0} for m in masks)
    ref = [_numpy_grads(w1, b1, w2, xs[i], ys[i], masks[i]) for i in range(B)]
    for j in range(3):
        np.testing.assert_allclose(got[j], np.stack([r[j] for r in ref]), rtol=1e-10, atol=1e-12)

    # the next call continues the sequence (no mask reused)
    _reset(drop, 3 + B)
    again = run(w1, b1, w2, xs, ys)[2].numpy()
    assert int(drop._module_calls.numpy()) == 3 + 2 * B
    assert not np.allclose(again, got[2])


def test_dropout_forward_under_vmap_is_the_loop_and_the_counter_moves_once_per_call():
    drop = irf.nn.Dropout(0.3, seed=11)
    xs = RNG.standard_normal((4, 8))
    _reset(drop, 0)
    loop = np.stack([drop(irf.tensor(x), training=True).numpy() for x in xs])
    f = irf.function(lambda v: irf.vmap(lambda x: drop(x, training=True))(v))
    for run in (irf.vmap(lambda x: drop(x, training=True)), f):
        _reset(drop, 0)
        np.testing.assert_array_equal(run(xs).numpy(), loop)
        assert int(drop._module_calls.numpy()) == 4
    # traced once, run twice: the state output carries the counter forward
    _reset(drop, 0)
    f(xs)
    f(xs)
    assert int(drop._module_calls.numpy()) == 8
    # eval mode: identity, counter untouched
    np.testing.assert_array_equal(irf.vmap(lambda x: drop(x, training=False))(xs).numpy(), xs)
    assert int(drop._module_calls.numpy()) == 8


def test_unbatched_assignment_is_hoisted_and_reads_after_it_see_it():
    v = irf.Variable(np.array(2.0), name="acc")

    def fn(x):
        v.assign_add(1.0)          # unbatched: applied once
        return x * v               # reads the assigned value, as Python code runs in order

    np.testing.assert_allclose(irf.vmap(fn)(np.arange(3.0)).numpy(), np.arange(3.0) * 3.0)
    assert float(v.numpy()) == 3.0
    g = irf.function(lambda xs: irf.vmap(fn)(xs))
    np.testing.assert_allclose(g(np.arange(3.0)).numpy(), np.arange(3.0) * 4.0)
    np.testing.assert_allclose(g(np.arange(3.0)).numpy(), np.arange(3.0) * 5.0)
    assert float(v.numpy()) == 5.0


def test_batch_dependent_assignment_names_the_variable_and_the_fix():
    bn = irf.nn.BatchNorm(3, name="bn")  # a default name depends on the modules made before (batch_norm_1)
    xs = RNG.standard_normal((4, 2, 3)).astype("float32")
    before = bn.running_mean.numpy().copy() if hasattr(bn, "running_mean") else None
    for run in (irf.vmap(lambda x: bn(x, training=True)),
                irf.function(lambda v: irf.vmap(lambda x: bn(x, training=True))(v))):
        with pytest.raises(irf.IrflowError) as e:
            run(xs)
        msg = str(e.value)
        assert "bn/running_mean" in msg and "depends on the mapped examples" in msg
        assert "training=False" in msg and "outside vmap" in msg
    if before is not None:
        np.testing.assert_array_equal(bn.running_mean.numpy(), before)  # nothing half-applied
    # the suggested fix works: eval mode inside vmap
    out = irf.vmap(lambda x: bn(x, training=False))(xs).numpy()
    np.testing.assert_allclose(out, xs / np.sqrt(1.0 + bn.epsilon), rtol=1e-5)


def test_nested_vmap_dropout_is_the_nested_loop_row_major():
    drop = irf.nn.Dropout(0.5, seed=5)
    xs = RNG.standard_normal((2, 3, 4)) + 3.0
    _reset(drop, 0)
    loop = np.stack([np.stack([drop(irf.tensor(xs[i, j]), training=True).numpy() for j in range(3)]) for i in range(2)])
    nested = irf.vmap(irf.vmap(lambda x: drop(x, training=True)))
    for run in (nested, irf.function(lambda v: nested(v))):
        _reset(drop, 0)
        np.testing.assert_array_equal(run(xs).numpy(), loop)
        assert int(drop._module_calls.numpy()) == 6
