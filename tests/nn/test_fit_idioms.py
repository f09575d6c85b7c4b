"""fit with the three ways users write a model's call: PyTorch's forward, Keras' call(inputs,
training=None) and a tf.Module-style __call__ override (with or without a training argument)."""
import numpy as np
import pytest

import irflow as irf


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    return x, y


class Forward(irf.nn.Module):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.dense = irf.nn.Dense(4, 2)

    def forward(self, x):
        return self.dense(x)


class KerasCall(irf.nn.Module):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.dense = irf.nn.Dense(4, 2)
        self.modes = []

    def call(self, inputs, training=None):
        self.modes.append(training)
        return self.dense(inputs)


class DunderCall(irf.nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = irf.nn.Dense(4, 2)

    def __call__(self, x):
        return self.dense(x)


class DunderCallWithMode(irf.nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = irf.nn.Dense(4, 2)
        self.modes = []

    def __call__(self, x, training=False):
        self.modes.append(training)
        return self.dense(x)


@pytest.mark.parametrize("cls", [Forward, KerasCall, DunderCall, DunderCallWithMode])
def test_fit_trains_every_call_style(cls):
    x, y = _data()
    model = cls()
    before = [v.numpy().copy() for v in model.trainable_variables]
    model.compile(irf.optim.SGD(0.1), "sparse_categorical_crossentropy", ["accuracy"])
    hist = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert len(hist.history["loss"]) == 2
    after = [v.numpy() for v in model.trainable_variables]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    if hasattr(model, "modes"):
        assert True in model.modes  # the train step ran the model in training mode
        model.evaluate(x, y, verbose=0)
        assert False in model.modes


def test_keras_call_is_the_forward():
    m = KerasCall()
    x, _ = _data()
    np.testing.assert_allclose(m(x).numpy(), x @ m.dense.weight.numpy() + m.dense.bias.numpy(), rtol=1e-6)
