"""vmap over the conv / pool / shape / nn ops in real programs: per-example gradients of a small
CNN (vmap(grad(loss)) with conv2d, max_pool2d, avg_pool2d, reshape, layer_norm, dropout and
sparse_softmax_cross_entropy) against separate irf.grad calls, one traced graph on the NumPy
interpreter and onnxruntime (no loop in it), and torch.func.vmap(torch.func.grad)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import irflow as irf
from irflow.executors.onnx import OrtRunner, to_model

RNG = np.random.default_rng(5)
B, C_IN, HW, C1, CLASSES = 6, 2, 8, 4, 5
PARAMS = {"w1": RNG.standard_normal((C1, C_IN, 3, 3)) * 0.4, "b1": RNG.standard_normal(C1) * 0.1,
          "w2": RNG.standard_normal((C1 * 2 * 2, CLASSES)) * 0.3, "b2": RNG.standard_normal(CLASSES) * 0.1}
XS = RNG.standard_normal((B, C_IN, HW, HW))
LABELS = RNG.integers(0, CLASSES, B)


def loss(p, x, label):
    """One example x (C, H, W): conv -> relu -> max pool -> avg pool -> flatten -> dense -> CE."""
    h = irf.conv2d(irf.expand_dims(x, 0), p["w1"], p["b1"], padding=1)
    h = irf.avg_pool2d(irf.max_pool2d(irf.relu(h), 2), 2)  # (1, C1, 2, 2)
    logits = irf.reshape(h, (1, -1)) @ p["w2"] + p["b2"]
    return irf.reduce_sum(irf.sparse_softmax_cross_entropy(logits, irf.reshape(label, (1,))))


def per_example(p, xs, labels):
    return irf.vmap(irf.grad(loss), in_axes=(None, 0, 0))(p, xs, labels)


def test_per_example_cnn_gradients_equal_separate_grad_calls():
    got = per_example(PARAMS, XS, LABELS)
    for i in range(B):
        one = irf.grad(loss)(PARAMS, XS[i], LABELS[i])
        for k in PARAMS:
            np.testing.assert_allclose(got[k].numpy()[i], one[k].numpy(), rtol=1e-10, atol=1e-12)


def _f32(tree):
    return {k: v.astype(np.float32) for k, v in tree.items()}


def test_traced_per_example_cnn_gradients_are_one_graph_on_numpy_and_onnxruntime():
    # float32: onnxruntime's CPU Conv has no float64 kernel
    f = irf.function(per_example)
    want = per_example(PARAMS, XS, LABELS)
    p32, x32 = _f32(PARAMS), XS.astype(np.float32)
    g = f.get_graph(p32, x32, LABELS)
    ops = [n.op for n in g.nodes]
    assert "scan" not in ops, "a batching rule fell back to a loop"
    assert "conv2d_weight_grad" in ops and "max_pool2d_grad" in ops  # the batched backward is in the graph
    onnx.checker.check_model(to_model(g), full_check=True)
    feeds = dict(zip(g.input_names, [p32["w1"], p32["b1"], p32["w2"], p32["b2"], x32, LABELS]))
    ort_out = OrtRunner(g).run(feeds)
    interp = irf.run(g, feeds)
    for v, k in zip(g.outputs, ["w1", "b1", "w2", "b2"]):
        np.testing.assert_allclose(interp[v.name], want[k].numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ort_out[v.name], want[k].numpy(), rtol=1e-4, atol=1e-5)


def test_per_example_cnn_gradients_against_torch_func():
    torch = pytest.importorskip("torch", reason="the torch.func comparison needs PyTorch")
    from torch.func import grad, vmap

    F = torch.nn.functional
    tp = {k: torch.from_numpy(v) for k, v in PARAMS.items()}

    def tloss(p, x, label):
        h = F.conv2d(x[None], p["w1"], p["b1"], padding=1)
        h = F.avg_pool2d(F.max_pool2d(torch.relu(h), 2), 2)
        logits = h.reshape(1, -1) @ p["w2"] + p["b2"]
        return F.cross_entropy(logits, label[None], reduction="sum")

    want = vmap(grad(tloss), in_dims=(None, 0, 0))(tp, torch.from_numpy(XS), torch.from_numpy(LABELS))
    got = per_example(PARAMS, XS, LABELS)
    for k in PARAMS:
        np.testing.assert_allclose(got[k].numpy(), want[k].numpy(), rtol=1e-10, atol=1e-12)


def test_per_example_weights_run_as_one_grouped_convolution():
    """vmap over the weights (an ensemble of B conv nets on one input) is one conv2d, and its
    ONNX export (float32) matches; a loop of the unbatched net is the reference."""
    ws = RNG.standard_normal((B, C1, C_IN, 3, 3)).astype(np.float32)
    x = XS[:2].astype(np.float32)

    def net(w):
        return irf.max_pool2d(irf.conv2d(x, w, strides=1, padding="same"), 2)

    f = irf.function(lambda ws: irf.vmap(net)(ws))
    g = f.get_graph(ws)
    convs = [n for n in g.nodes if n.op == "conv2d"]
    assert len(convs) == 1 and "scan" not in [n.op for n in g.nodes]
    want = np.stack([net(w).numpy() for w in ws])
    np.testing.assert_allclose(f(ws).numpy(), want, rtol=1e-5, atol=1e-6)
    onnx.checker.check_model(to_model(g), full_check=True)
    out = OrtRunner(g).run({g.input_names[0]: ws})
    np.testing.assert_allclose(np.asarray(list(out.values())[0]), want, rtol=1e-4, atol=1e-5)


def test_vmapped_layer_norm_dropout_and_gather_export_to_onnx():
    """A transformer-ish example function: embedding gather, layer_norm with per-example scale,
    dropout in inference mode, softmax attention over its own tokens."""
    table = RNG.standard_normal((10, 4))
    ids = RNG.integers(0, 10, (B, 3))
    scales = RNG.standard_normal((B, 4))

    def one(tok, scale):
        h = irf.layer_norm(irf.gather(table, tok), scale)
        h = irf.dropout(h, rate=0.1, seed=2, training=False)
        att = irf.softmax(h @ irf.transpose(h), axis=-1)
        return irf.concat([att @ h, h], axis=-1)

    f = irf.function(lambda ids, scales: irf.vmap(one)(ids, scales))
    want = np.stack([one(ids[i], scales[i]).numpy() for i in range(B)])
    np.testing.assert_allclose(f(ids, scales).numpy(), want, rtol=1e-10, atol=1e-12)
    g = f.get_graph(ids, scales)
    assert "scan" not in [n.op for n in g.nodes]
    onnx.checker.check_model(to_model(g), full_check=True)
    out = OrtRunner(g).run(dict(zip(g.input_names, [ids, scales])))
    np.testing.assert_allclose(np.asarray(list(out.values())[0]), want, rtol=1e-9, atol=1e-10)


def test_vmapped_indexing_ops_with_batched_indices_export_to_onnx():
    """Batched indices take the batch-index-column path (gather_nd, scatter_add, gather with both
    batched); with pad, slice, one_hot, topk, tile and stack in one traced vmapped function."""
    data = RNG.standard_normal((B, 5, 3))
    idx = RNG.integers(0, 5, (B, 4, 1))
    pos = RNG.integers(-3, 3, (B, 2))

    def one(d, i, p):
        picked = irf.gather_nd(d, i)  # (4, 3)
        spread = irf.scatter_add(irf.zeros_like(d), i, picked * 2.0)  # (5, 3)
        rows = irf.gather(d, p, axis=0)  # (2, 3)
        hot = irf.one_hot(irf.reshape(i, (4,)), 5, dtype="float64")  # (4, 5)
        padded = irf.pad(spread, ((1, 2), (0, 1)), mode="reflect")  # (8, 4)
        cut = irf.slice(padded, [6, 0], [None, None], steps=[-2, 3])  # (4, 2)
        vals, _ = irf.topk(irf.tile(rows, (1, 2)), 3)  # (2, 3)
        return irf.stack([irf.reduce_sum(hot @ spread), irf.reduce_sum(cut), irf.reduce_sum(vals)])

    f = irf.function(lambda d, i, p: irf.vmap(one)(d, i, p))
    want = np.stack([one(data[k], idx[k], pos[k]).numpy() for k in range(B)])
    np.testing.assert_allclose(f(data, idx, pos).numpy(), want, rtol=1e-10, atol=1e-12)
    g = f.get_graph(data, idx, pos)
    assert "scan" not in [n.op for n in g.nodes]
    onnx.checker.check_model(to_model(g), full_check=True)
    out = OrtRunner(g).run(dict(zip(g.input_names, [data, idx, pos])))
    np.testing.assert_allclose(np.asarray(list(out.values())[0]), want, rtol=1e-9, atol=1e-10)


def test_jacobian_of_a_conv_net_is_one_loop_free_graph_and_matches_finite_differences():
    """irf.jacobian vmaps the VJP over one-hot cotangents: only the cotangent is batched, so the
    conv weight gradient takes the no-copy path (the B cotangents as B times the output channels)."""
    x = RNG.standard_normal((2, 3, 6, 6))
    w = RNG.standard_normal((4, 3, 3, 3))

    def f(w):
        return irf.reshape(irf.avg_pool2d(irf.tanh(irf.conv2d(x, w, padding=1)), 2), (-1,))

    jf = irf.function(irf.jacobian(f))
    jac = jf(w).numpy()
    assert jac.shape == (2 * 4 * 3 * 3, 4, 3, 3, 3)
    assert "scan" not in [n.op for n in jf.get_graph(w).nodes]
    eps = 1e-6
    for k in [(0, 0, 0, 0), (1, 2, 0, 1), (3, 1, 2, 2)]:
        wp, wm = w.copy(), w.copy()
        wp[k] += eps
        wm[k] -= eps
        fd = (f(wp).numpy() - f(wm).numpy()) / (2 * eps)
        np.testing.assert_allclose(jac[(slice(None),) + k], fd, rtol=1e-6, atol=1e-8)


def test_a_symbolic_batch_size_exports_without_a_loop():
    """Traced with a None batch dim, the rules read the batch size at run time (-1 reshapes,
    Expand with a 1 for the batch): the graph runs on any batch size on NumPy and onnxruntime."""
    w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)

    def one(x):  # x (N, C, H, W): one example is a small batch of images
        h = irf.reshape(irf.max_pool2d(irf.relu(irf.conv2d(x, w, padding=1)), 2), (-1,))
        return irf.broadcast_to(irf.expand_dims(irf.layer_norm(h), 0), (2, 128))

    f = irf.function(lambda xs: irf.vmap(one)(xs), input_signature=[irf.TensorSpec((None, 2, 3, 8, 8), "float32")])
    g = f.get_graph()
    assert g.outputs[0].type.shape[0] is None and "scan" not in [n.op for n in g.nodes]
    onnx.checker.check_model(to_model(g), full_check=True)
    for b in (1, 5):
        xs = RNG.standard_normal((b, 2, 3, 8, 8)).astype(np.float32)
        want = np.stack([one(x).numpy() for x in xs])
        np.testing.assert_allclose(irf.run(g, {g.input_names[0]: xs})[g.outputs[0].name], want, rtol=1e-5, atol=1e-6)
        out = OrtRunner(g).run({g.input_names[0]: xs})
        np.testing.assert_allclose(out[g.outputs[0].name], want, rtol=1e-4, atol=1e-5)
