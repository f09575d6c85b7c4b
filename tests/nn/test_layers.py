"""Layers, initializers, losses and metrics against NumPy written here and PyTorch when installed."""
import numpy as np
import pytest

import irflow as irf
from irflow import nn

RNG = np.random.default_rng(0)


def test_linear_embedding_layernorm_match_numpy():
    x = RNG.standard_normal((3, 5, 4)).astype("float32")
    lin = nn.Linear(4, 2, rng=0)
    np.testing.assert_allclose(lin(x).numpy(), x @ lin.weight.numpy() + lin.bias.numpy(), rtol=1e-6)
    emb = nn.Embedding(7, 3, rng=0)
    ids = np.array([[0, 6], [2, 2]])
    np.testing.assert_array_equal(emb(ids).numpy(), emb.weight.numpy()[ids])
    ln = nn.LayerNorm(4)
    ln.scale.assign(np.array([1, 2, 3, 4], "float32"))
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(ln(x).numpy(), (x - mu) / np.sqrt(var + 1e-5) * [1, 2, 3, 4], rtol=1e-5, atol=1e-6)


def test_embedding_gradient_accumulates_repeated_ids():
    emb = nn.Embedding(4, 2, rng=0)
    with irf.GradientTape() as tape:
        loss = irf.reduce_sum(emb(np.array([1, 1, 3])))
    g = tape.gradient(loss, emb.weight).numpy()
    np.testing.assert_array_equal(g, [[0, 0], [2, 2], [0, 0], [1, 1]])


def test_conv_pool_flatten_match_torch():
    torch = pytest.importorskip("torch", reason="conv reference is torch.nn.functional")
    x = RNG.standard_normal((2, 3, 8, 8)).astype("float32")
    conv = nn.Conv2d(3, 4, 3, stride=1, padding=1, rng=0)
    conv.bias.assign(RNG.standard_normal(4).astype("float32"))
    model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(2), nn.Flatten())
    t = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(conv.weight.numpy()), torch.tensor(conv.bias.numpy()), padding=1)
    t = torch.nn.functional.avg_pool2d(torch.nn.functional.max_pool2d(torch.relu(t), 2), 2).flatten(1)
    np.testing.assert_allclose(model(x).numpy(), t.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
def test_batchnorm_training_and_inference_match_torch(traced):
    torch = pytest.importorskip("torch", reason="reference is torch.nn.BatchNorm2d")
    bn = nn.BatchNorm(3, momentum=0.2)
    ref = torch.nn.BatchNorm2d(3, momentum=0.2)
    xs = [RNG.standard_normal((4, 3, 5, 5)).astype("float32") * 2 + 1 for _ in range(3)]
    gy = RNG.standard_normal((4, 3, 5, 5)).astype("float32")

    def step(x):
        with irf.GradientTape() as tape:
            y = bn(x, training=True)
            loss = irf.reduce_sum(y * gy)
        return y, tape.gradient(loss, [bn.scale, bn.bias])

    fn = irf.function(step) if traced else step
    for x in xs:
        y, (gs, gb) = fn(x)
        xt = torch.tensor(x, requires_grad=True)
        yt = ref(xt)
        (yt * torch.tensor(gy)).sum().backward()
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(gs.numpy(), ref.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(gb.numpy(), ref.bias.grad.numpy(), rtol=1e-4, atol=1e-4)
        ref.weight.grad = ref.bias.grad = None
    np.testing.assert_allclose(bn.running_mean.numpy(), ref.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), ref.running_var.numpy(), rtol=1e-5, atol=1e-6)
    ref.eval()
    out = bn(xs[0], training=False).numpy()
    np.testing.assert_allclose(out, ref(torch.tensor(xs[0])).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert [v.trainable for v in bn.variables] == [True, True, False, False]


def test_batchnorm_symbolic_batch_uses_runtime_count():
    bn = nn.BatchNorm(2, momentum=1.0)  # running stats become the last batch's
    f = irf.function(lambda x: bn(x, training=True), input_signature=[irf.TensorSpec(("n", 2), "float32")])
    x = RNG.standard_normal((6, 2)).astype("float32")
    f(x)
    np.testing.assert_allclose(bn.running_var.numpy(), x.var(0, ddof=1), rtol=1e-5)
    np.testing.assert_allclose(bn.running_mean.numpy(), x.mean(0), rtol=1e-5, atol=1e-6)


def test_batchnorm_wrong_channels_is_shape_error():
    with pytest.raises(irf.ShapeError, match=r"expects \(N, 3, ...\), got shape \(2, 4\)"):
        nn.BatchNorm(3)(np.zeros((2, 4), "float32"))


def test_dropout_fresh_mask_per_call_and_reproducible():
    x = np.ones((50, 20), "float32")
    a, b = nn.Dropout(0.5, seed=11), nn.Dropout(0.5, seed=11)
    m1, m2 = a(x).numpy(), a(x).numpy()
    assert not np.array_equal(m1, m2)  # a fresh seed per call
    np.testing.assert_array_equal(b(x).numpy(), m1)  # same seed sequence, same masks
    assert set(np.unique(m1)) <= {0.0, 2.0} and 0.35 < (m1 == 0).mean() < 0.65
    np.testing.assert_array_equal(np.asarray(a(x, training=False)), x)  # the input itself
    with pytest.raises(irf.IrflowError, match="rate"):
        nn.Dropout(1.0)


def test_dropout_traced_step_draws_a_fresh_mask_per_call_equal_to_eager():
    x = np.ones((8, 30), "float32")
    eager, traced = nn.Dropout(0.3, seed=5), nn.Dropout(0.3, seed=5)
    f = irf.function(lambda v: traced(v))
    eager_masks = [eager(x).numpy() for _ in range(4)]
    traced_masks = [f(x).numpy() for _ in range(4)]
    assert f.trace_count == 1
    for e, t in zip(eager_masks, traced_masks):
        np.testing.assert_array_equal(t, e)
    assert len({m.tobytes() for m in traced_masks}) == 4  # every call a new mask
    rates = [(m == 0).mean() for m in traced_masks]
    assert all(0.15 < r < 0.45 for r in rates)
    model = nn.Sequential(nn.Linear(30, 2, rng=0), nn.Dropout(0.5))
    assert list(model.state_dict()) == ["layers.0.weight", "layers.0.bias"]  # the call counter is not model state
    w = irf.Variable(np.ones((8, 30), "float32"))
    with irf.GradientTape() as tape:
        y = irf.reduce_sum(eager(w))
    g = tape.gradient(y, w).numpy()  # the mask scaled by 1/(1 - rate), zeros where dropped
    assert np.all((g == 0) | np.isclose(g, 1 / 0.7)) and (g == 0).any() and (g != 0).any()


def test_activations_match_numpy():
    x = RNG.standard_normal(10).astype("float32")
    np.testing.assert_allclose(nn.ReLU()(x).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh(x), rtol=1e-6)
    np.testing.assert_allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp(-x)), rtol=1e-6)
    from math import erf
    np.testing.assert_allclose(nn.GELU()(x).numpy(), [v * 0.5 * (1 + erf(v / 2 ** 0.5)) for v in x], rtol=1e-5, atol=1e-6)


def test_initializers_statistics_and_seeding():
    big = (400, 600)
    a = np.sqrt(6 / 1000)
    w = nn.init.glorot_uniform(big, rng=0)
    assert w.dtype == np.float32 and np.abs(w).max() <= a and abs(w.std() - a / np.sqrt(3)) < 0.01 * a
    assert abs(nn.init.glorot_normal(big, rng=0).std() - np.sqrt(2 / 1000)) < 0.02 * np.sqrt(2 / 1000)
    assert abs(nn.init.he_normal(big, rng=0).std() - np.sqrt(2 / 400)) < 0.02 * np.sqrt(2 / 400)
    assert np.abs(nn.init.he_uniform(big, rng=0)).max() <= np.sqrt(6 / 400)
    assert nn.init.fans((8, 3, 5, 5)) == (75, 200)
    np.testing.assert_array_equal(nn.init.glorot_uniform((3, 3), rng=4), nn.init.glorot_uniform((3, 3), rng=4))
    nn.init.seed(5)
    m1 = nn.MLP([3, 3])
    nn.init.seed(5)
    m2 = nn.MLP([3, 3])
    np.testing.assert_array_equal(m1.variables[0].numpy(), m2.variables[0].numpy())
    assert nn.init.zeros((2,), "float64").dtype == np.float64 and (nn.init.ones((2,)) == 1).all()
    with pytest.raises(irf.IrflowError, match="unknown initializer"):
        nn.Linear(2, 2, weight_init="nope")


def _np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_losses_match_numpy_and_are_stable():
    logits = RNG.standard_normal((6, 4)).astype("float32")
    labels = RNG.integers(0, 4, 6)
    want = -_np_log_softmax(logits.astype(np.float64))[np.arange(6), labels].mean()
    np.testing.assert_allclose(float(nn.losses.softmax_cross_entropy(logits, labels)), want, rtol=1e-6)
    huge = np.array([[1000.0, -1000.0]], "float32")
    assert float(nn.losses.softmax_cross_entropy(huge, np.array([1]))) == pytest.approx(2000.0)
    t = RNG.uniform(size=(6, 4)).astype("float32")
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    np.testing.assert_allclose(float(nn.losses.binary_cross_entropy(logits, t)),
                               -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(), rtol=1e-5)
    assert np.isfinite(float(nn.losses.binary_cross_entropy(np.array([100.0, -100.0], "float32"), np.array([0.0, 1.0], "float32"))))
    np.testing.assert_allclose(float(nn.losses.mse(logits, t)), ((logits - t) ** 2).mean(), rtol=1e-6)
    with pytest.raises(irf.DTypeError, match="integer class indices"):
        nn.losses.softmax_cross_entropy(logits, labels.astype("float32"))
    with pytest.raises(irf.ShapeError, match="one more axis"):
        nn.losses.softmax_cross_entropy(logits, labels[:, None])


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    logits = RNG.standard_normal((5, 3)).astype("float32")
    labels = np.array([0, 2, 1, 1, 0])
    x = irf.Variable(logits)
    with irf.GradientTape() as tape:
        loss = nn.losses.softmax_cross_entropy(x, labels)
    p = np.exp(_np_log_softmax(logits.astype(np.float64)))
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), (p - np.eye(3)[labels]) / 5, rtol=1e-5, atol=1e-7)


def test_metrics_eager_and_traced():
    acc, mean = nn.metrics.Accuracy(), nn.metrics.Mean()
    acc.update_state(np.array([0, 1, 2]), np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]]))
    acc.update_state(np.array([1]), np.array([1]))
    assert float(acc.result()) == pytest.approx(3 / 4)
    mean.update_state(np.array([1.0, 2.0]))
    f = irf.function(lambda v: mean.update_state(v))
    f(np.array([3.0, 6.0], "float32"))
    assert float(mean.result()) == pytest.approx(3.0)
    mean.reset_state()
    assert float(mean.result()) == 0.0  # Keras: an empty metric is 0, not NaN
    with pytest.raises(irf.ShapeError, match="Accuracy"):
        acc.update_state(np.zeros(3), np.zeros((3, 2, 2)))
