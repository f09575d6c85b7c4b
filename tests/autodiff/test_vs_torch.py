"""Gradients of whole models against torch.autograd in float64 (to 1e-5, relative)."""
import numpy as np
import pytest

import irflow as irf

torch = pytest.importorskip("torch", reason="the PyTorch comparison needs torch (optional extra)")
F = torch.nn.functional
RNG = np.random.default_rng(4)


def assert_close_to_torch(ours, theirs, names):
    for name, a, t in zip(names, ours, theirs):
        np.testing.assert_allclose(a.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-10, err_msg=name)


def test_mlp_softmax_cross_entropy_gradients_equal_torch():
    x = RNG.standard_normal((16, 20))
    labels = RNG.integers(0, 5, 16)
    params = [RNG.standard_normal((20, 32)) / 4, RNG.standard_normal(32) * 0.1,
              RNG.standard_normal((32, 32)) / 5, RNG.standard_normal(32) * 0.1,
              RNG.standard_normal((32, 5)) / 5, RNG.standard_normal(5) * 0.1]
    onehot = np.eye(5)[labels]

    def loss_fn(w0, b0, w1, b1, w2, b2):
        h = irf.relu(irf.tensor(x) @ w0 + b0)
        h = irf.tanh(h @ w1 + b1)
        p = irf.softmax(h @ w2 + b2, axis=-1)
        return -irf.reduce_mean(irf.reduce_sum(irf.tensor(onehot) * irf.log(p), axis=1))

    grads = irf.grad(loss_fn, argnums=tuple(range(6)))(*params)
    tp = [torch.tensor(p, requires_grad=True) for p in params]
    h = torch.relu(torch.tensor(x) @ tp[0] + tp[1])
    h = torch.tanh(h @ tp[2] + tp[3])
    F.cross_entropy(h @ tp[4] + tp[5], torch.tensor(labels)).backward()
    assert_close_to_torch(grads, tp, ["w0", "b0", "w1", "b1", "w2", "b2"])


def test_small_cnn_gradients_equal_torch():
    x = RNG.standard_normal((2, 3, 8, 8))
    labels = RNG.integers(0, 4, 2)
    k1, c1 = RNG.standard_normal((4, 3, 3, 3)) * 0.3, RNG.standard_normal(4) * 0.1
    k2 = RNG.standard_normal((6, 4, 3, 3)) * 0.3
    w, b = RNG.standard_normal((6 * 4 * 4, 4)) * 0.1, RNG.standard_normal(4) * 0.1
    onehot = np.eye(4)[labels]

    def loss_fn(k1, c1, k2, w, b):
        h = irf.relu(irf.conv2d(irf.tensor(x), k1, c1, padding=1))
        h = irf.relu(irf.conv2d(h, k2, padding=1))
        h = irf.max_pool2d(h, 2)
        h = irf.reshape(h, (2, 6 * 4 * 4))
        logits = h @ w + b
        return -irf.reduce_mean(irf.reduce_sum(irf.tensor(onehot) * irf.log_softmax(logits, axis=-1), axis=1))

    grads = irf.grad(loss_fn, argnums=(0, 1, 2, 3, 4))(k1, c1, k2, w, b)
    tp = [torch.tensor(p, requires_grad=True) for p in (k1, c1, k2, w, b)]
    h = torch.relu(F.conv2d(torch.tensor(x), tp[0], tp[1], padding=1))
    h = torch.relu(F.conv2d(h, tp[2], padding=1))
    h = F.max_pool2d(h, 2).reshape(2, -1)
    F.cross_entropy(h @ tp[3] + tp[4], torch.tensor(labels)).backward()
    assert_close_to_torch(grads, tp, ["k1", "c1", "k2", "w", "b"])


def test_hessian_vector_product_equals_torch():
    x = RNG.standard_normal(6)
    v = RNG.standard_normal(6)

    def f(a):
        return irf.reduce_sum(irf.tanh(a) ** 3 * irf.exp(a * 0.5))

    _, hv = irf.jvp(irf.grad(f), (x,), (v,))
    tx = torch.tensor(x, requires_grad=True)
    g = torch.autograd.grad((torch.tanh(tx) ** 3 * torch.exp(tx * 0.5)).sum(), tx, create_graph=True)[0]
    (thv,) = torch.autograd.grad(g, tx, grad_outputs=torch.tensor(v))
    np.testing.assert_allclose(hv.numpy(), thv.numpy(), rtol=1e-10)
