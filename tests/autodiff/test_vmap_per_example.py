"""Per-example gradients: vmap(grad(loss)) of an MLP (batch 64) against 64 separate irf.grad
calls, a NumPy backprop written here, onnxruntime, and torch.func.vmap(torch.func.grad)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import irflow as irf
from irflow.executors.onnx import OrtRunner, to_model

RNG = np.random.default_rng(11)
B, D, H, C = 64, 20, 16, 5
PARAMS = {"w1": RNG.standard_normal((D, H)) * 0.3, "b1": RNG.standard_normal(H) * 0.1,
          "w2": RNG.standard_normal((H, C)) * 0.3, "b2": RNG.standard_normal(C) * 0.1}
XS = RNG.standard_normal((B, D))
LABELS = RNG.integers(0, C, B)
YS = np.eye(C)[LABELS]


def loss(p, x, y):
    """Cross entropy of one example: logsumexp(logits) - logits[label] (y one-hot)."""
    logits = irf.relu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
    return irf.logsumexp(logits, axis=-1) - irf.reduce_sum(y * logits)


def numpy_per_example_grads():
    out = {k: [] for k in PARAMS}
    for x, y in zip(XS, YS):
        a = x @ PARAMS["w1"] + PARAMS["b1"]
        h = np.maximum(a, 0)
        z = h @ PARAMS["w2"] + PARAMS["b2"]
        p = np.exp(z - z.max())
        p /= p.sum()
        dz = p - y
        dh = (PARAMS["w2"] @ dz) * (a > 0)
        out["w2"].append(np.outer(h, dz))
        out["b2"].append(dz)
        out["w1"].append(np.outer(x, dh))
        out["b1"].append(dh)
    return {k: np.stack(v) for k, v in out.items()}


REF = numpy_per_example_grads()


def test_vmap_of_grad_equals_separate_grad_calls_and_numpy():
    got = irf.vmap(irf.grad(loss), in_axes=(None, 0, 0))(PARAMS, XS, YS)
    separate = [irf.grad(loss)(PARAMS, XS[i], YS[i]) for i in range(B)]
    for k in PARAMS:
        np.testing.assert_allclose(got[k].numpy(), np.stack([s[k].numpy() for s in separate]), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(got[k].numpy(), REF[k], rtol=1e-10, atol=1e-12)


def test_traced_per_example_gradients_are_one_graph_on_numpy_and_onnxruntime():
    f = irf.function(lambda p, x, y: irf.vmap(irf.grad(loss), in_axes=(None, 0, 0))(p, x, y))
    out = f(PARAMS, XS, YS)
    for k in PARAMS:
        np.testing.assert_allclose(out[k].numpy(), REF[k], rtol=1e-10, atol=1e-12)
    g = f.get_graph(PARAMS, XS, YS)
    onnx.checker.check_model(to_model(g), full_check=True)
    feeds = dict(zip(g.input_names, [PARAMS["w1"], PARAMS["b1"], PARAMS["w2"], PARAMS["b2"], XS, YS]))
    ort_out = OrtRunner(g).run(feeds)
    interp = irf.run(g, feeds)
    for v, k in zip(g.outputs, ["w1", "b1", "w2", "b2"]):
        np.testing.assert_allclose(ort_out[v.name], REF[k], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(interp[v.name], REF[k], rtol=1e-10, atol=1e-12)


def test_against_torch_func_vmap_grad():
    torch = pytest.importorskip("torch", reason="the torch.func comparison needs PyTorch")
    from torch.func import grad, vmap

    tp = {k: torch.from_numpy(v) for k, v in PARAMS.items()}

    def tloss(p, x, label):
        logits = torch.relu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
        return torch.nn.functional.cross_entropy(logits[None], label[None])

    want = vmap(grad(tloss), in_dims=(None, 0, 0))(tp, torch.from_numpy(XS), torch.from_numpy(LABELS))
    got = irf.vmap(irf.grad(loss), in_axes=(None, 0, 0))(PARAMS, XS, YS)
    for k in PARAMS:
        np.testing.assert_allclose(got[k].numpy(), want[k].numpy(), rtol=1e-10, atol=1e-12)


def test_grad_of_a_vmapped_loss_and_jvp_of_vmap_compose():
    """grad(mean of vmap(loss)) = mean of per-example grads; jvp through vmap = J @ t."""
    mean_loss = lambda p: irf.reduce_mean(irf.vmap(loss, in_axes=(None, 0, 0))(p, XS, YS))  # noqa: E731
    g = irf.grad(mean_loss)(PARAMS)
    for k in PARAMS:
        np.testing.assert_allclose(g[k].numpy(), REF[k].mean(0), rtol=1e-10, atol=1e-12)
    t = RNG.standard_normal((B, D))
    f = lambda x: irf.vmap(lambda xi: irf.tanh(xi @ PARAMS["w1"]))(x)  # noqa: E731
    _, dy = irf.jvp(f, (XS,), (t,))
    a = np.tanh(XS @ PARAMS["w1"])
    np.testing.assert_allclose(dy.numpy(), (1 - a ** 2) * (t @ PARAMS["w1"]), rtol=1e-10, atol=1e-12)
    jv = irf.vmap(lambda xi, ti: irf.jvp(lambda u: irf.tanh(u @ PARAMS["w1"]), (xi,), (ti,))[1])(XS, t)
    np.testing.assert_allclose(jv.numpy(), (1 - a ** 2) * (t @ PARAMS["w1"]), rtol=1e-10, atol=1e-12)
