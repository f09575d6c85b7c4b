"""irf.nn.LSTM / GRU / SimpleRNN against torch.nn.LSTM / GRU / RNN: weights loaded from torch's
state_dict, forward and gradients compared (eager tape and irf.function), export to ONNX."""
from __future__ import annotations

import numpy as np
import pytest

import irflow as irf

torch = pytest.importorskip("torch", reason="the recurrent layers are checked against PyTorch")

CASES = [
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(batch_first=True)),
    ("GRU", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("GRU", dict(bias=False)),
    ("SimpleRNN", dict(nonlinearity="relu", bidirectional=True)),
    ("SimpleRNN", dict(num_layers=3)),
]
TORCH = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}


def pair(kind, kwargs, I=3, H=4, seed=0):
    torch.manual_seed(seed)
    tm = getattr(torch.nn, TORCH[kind])(I, H, **kwargs).double()
    im = getattr(irf.nn, kind)(I, H, dtype="float64", **kwargs)
    im.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, im


def inputs(tm, kind, T=5, B=2, I=3, H=4, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, I) if tm.batch_first else (T, B, I))
    n = tm.num_layers * (2 if tm.bidirectional else 1)
    h0 = rng.standard_normal((n, B, H))
    c0 = rng.standard_normal((n, B, H))
    return x, ((h0, c0) if kind == "LSTM" else h0)


def flat(out):
    y, st = out
    return [y, *st] if isinstance(st, tuple) else [y, st]


def as_np(xs):
    return [t.detach().numpy() if hasattr(t, "detach") else np.asarray(t.numpy() if hasattr(t, "numpy") else t) for t in xs]


def to_torch(hx):
    if isinstance(hx, tuple):
        return tuple(torch.tensor(h, requires_grad=True) for h in hx)
    return torch.tensor(hx, requires_grad=True)


@pytest.mark.parametrize("kind,kwargs", CASES)
def test_state_dict_names_match_torch(kind, kwargs):
    tm, im = pair(kind, kwargs)
    assert set(im.state_dict()) == set(tm.state_dict())
    for k, v in tm.state_dict().items():
        assert im.state_dict()[k].shape == tuple(v.shape)


@pytest.mark.parametrize("kind,kwargs", CASES)
def test_forward_and_gradients_match_torch(kind, kwargs):
    tm, im = pair(kind, kwargs)
    x, hx = inputs(tm, kind)
    tx, thx = torch.tensor(x, requires_grad=True), to_torch(hx)
    want = flat(tm(tx, thx))
    cts = [np.random.default_rng(7 + i).standard_normal(tuple(w.shape)) for i, w in enumerate(want)]
    loss = sum((w * torch.tensor(c)).sum() for w, c in zip(want, cts))
    loss.backward()

    # eager, under a tape
    ex = irf.tensor(x)
    ehx = tuple(irf.tensor(h) for h in hx) if isinstance(hx, tuple) else irf.tensor(hx)
    with irf.GradientTape() as tape:
        tape.watch(ex)
        got = flat(im(ex, ehx))
        eloss = sum(irf.reduce_sum(g * c) for g, c in zip(got, cts))
    for g, w in zip(as_np(got), as_np(want)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10)
    names = [k for k, _ in tm.named_parameters()]
    grads = tape.gradient(eloss, [ex] + [getattr(im, k) for k in names])
    np.testing.assert_allclose(grads[0].numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-10)
    for k, g in zip(names, grads[1:]):
        np.testing.assert_allclose(g.numpy(), dict(tm.named_parameters())[k].grad.numpy(), rtol=1e-9, atol=1e-10,
                                   err_msg=k)

    # traced: one scan per direction and layer; value_and_grad of the same loss
    @irf.function
    def step(x, hx):
        with irf.GradientTape() as t:
            t.watch(x)
            out = flat(im(x, hx))
            loss = sum(irf.reduce_sum(o * c) for o, c in zip(out, cts))
        return [loss] + list(t.gradient(loss, [x] + [getattr(im, k) for k in names]))

    traced = step(x, hx)
    np.testing.assert_allclose(np.asarray(traced[0]), float(loss.detach()), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(traced[1]), tx.grad.numpy(), rtol=1e-9, atol=1e-10)
    for k, g in zip(names, traced[2:]):
        np.testing.assert_allclose(np.asarray(g), dict(tm.named_parameters())[k].grad.numpy(), rtol=1e-9, atol=1e-10)


def test_default_state_unbatched_and_export(tmp_path):
    tm, im = pair("LSTM", dict(bidirectional=True), I=3, H=4)
    x = np.random.default_rng(0).standard_normal((6, 3))
    want = flat(tm(torch.tensor(x)))
    got = flat(im(x))
    for g, w in zip(as_np(got), as_np(want)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10)
    # batch-major, symbolic batch and time: one ONNX file for every shape
    tm32, _ = pair("GRU", dict(batch_first=True, num_layers=2), I=3, H=4)
    im32 = irf.nn.GRU(3, 4, num_layers=2, batch_first=True)
    im32.load_state_dict({k: v.detach().float().numpy() for k, v in tm32.state_dict().items()})
    path = tmp_path / "gru.onnx"
    irf.onnx.export(lambda x: im32(x)[0], str(path), irf.TensorSpec(("batch", "time", 3), "float32"))
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b, t in [(1, 2), (3, 7)]:
        xb = np.random.default_rng(b).standard_normal((b, t, 3)).astype(np.float32)
        (y,) = sess.run(None, {sess.get_inputs()[0].name: xb})
        np.testing.assert_allclose(y, tm32(torch.tensor(xb).double())[0].detach().numpy(), rtol=1e-5, atol=1e-5)


def test_bad_input_is_a_shape_error():
    lstm = irf.nn.LSTM(3, 4)
    with pytest.raises(irf.ShapeError, match="input_size=3"):
        lstm(np.zeros((5, 2, 4), "float32"))
    with pytest.raises(irf.ShapeError, match="initial state"):
        lstm(np.zeros((5, 2, 3), "float32"), (np.zeros((2, 2, 4), "float32"), np.zeros((2, 2, 4), "float32")))
