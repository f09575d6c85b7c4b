"""Model.fit / Trainer: weights and History against hand-written NumPy SGD for softmax
regression; one trace per batch shape; irf.data pipelines; summaries read back with
TensorBoard's reader; checkpoints per epoch; callbacks; progress output."""
import numpy as np
import pytest

import irflow as irf
from irflow import nn

RNG = np.random.default_rng(11)
X = RNG.standard_normal((40, 4)).astype("float32")
Y = RNG.integers(0, 3, 40).astype("int64")


def batches(bs=16, x=X, y=Y):
    return [(x[i:i + bs], y[i:i + bs]) for i in range(0, len(x), bs)]


def numpy_softmax_regression(w, b, data, epochs, lr):
    """SGD on mean softmax cross entropy, in float64 NumPy; returns weights and per-epoch mean loss."""
    w, b = w.astype(np.float64), b.astype(np.float64)
    losses = []
    for _ in range(epochs):
        per_batch = []
        for x, y in data:
            z = x.astype(np.float64) @ w + b
            z = z - z.max(1, keepdims=True)
            p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
            per_batch.append(-np.log(p[np.arange(len(y)), y]).mean())
            g = (p - np.eye(3)[y]) / len(y)
            w, b = w - lr * x.T @ g, b - lr * g.sum(0)
        losses.append(np.mean(per_batch))
    return w, b, losses


def test_fit_matches_numpy_sgd_and_traces_once_per_batch_shape():
    nn.init.seed(0)
    model = nn.Linear(4, 3)
    w0, b0 = model.weight.numpy().copy(), model.bias.numpy().copy()
    model.compile(irf.optim.SGD(0.5), "sparse_categorical_crossentropy", metrics=["accuracy"])
    data = batches(16)  # 16, 16, 8: the last batch is shorter
    history = model.fit(data, epochs=3, verbose=0)
    w, b, losses = numpy_softmax_regression(w0, b0, data, 3, 0.5)
    np.testing.assert_allclose(model.weight.numpy(), w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.bias.numpy(), b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(history.history["loss"], losses, rtol=1e-5)
    assert history.epoch == [0, 1, 2]
    pred = (X @ model.weight.numpy() + model.bias.numpy()).argmax(1)
    assert model.evaluate(data)["accuracy"] == pytest.approx((pred == Y).mean())
    assert model._module_trainer.train_step.trace_count == 2  # one per batch shape, not per batch


def test_fit_on_irf_data_dataset_and_dataloader_with_validation():
    ds = irf.data.Dataset.from_tensor_slices((X, Y)).shuffle(40, seed=3).batch(10)
    nn.init.seed(1)
    model = nn.MLP([4, 16, 3])
    trainer = irf.train.Trainer(model, irf.optim.Adam(0.05), "sparse_categorical_crossentropy",
                                metrics=[nn.metrics.SparseCategoricalAccuracy("acc")])
    history = trainer.fit(ds, epochs=4, validation_data=batches(20), verbose=0)
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert trainer.train_step.trace_count == 1
    logits = model(X).numpy()
    assert history.history["val_acc"][-1] == pytest.approx((logits.argmax(1) == Y).mean())

    loader = irf.data.DataLoader(irf.data.TensorDataset(X, Y), batch_size=8, shuffle=True, seed=0)
    history = trainer.fit(loader, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_summaries_and_checkpoints_from_fit(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    nn.init.seed(2)
    model = nn.MLP([4, 8, 3])
    opt = irf.optim.Adam(0.01)
    model.compile(opt, "sparse_categorical_crossentropy", ["accuracy"])
    epoch = irf.Variable(np.int64(0), name="epoch", trainable=False)
    manager = irf.train.CheckpointManager(irf.train.Checkpoint(model=model, optimizer=opt, epoch=epoch),
                                          tmp_path / "ckpt", max_to_keep=2)
    writer = irf.summary.create_file_writer(tmp_path / "logs")
    history = model.fit(batches(16), epochs=3, validation_data=batches(40), writer=writer,
                        checkpoint_manager=manager, verbose=0, log_every_n_steps=1)
    other = irf.summary.create_file_writer(tmp_path / "sparse")
    sparse_model = nn.MLP([4, 8, 3])
    sparse_model.compile(irf.optim.SGD(0.1), "sparse_categorical_crossentropy")
    sparse_model.fit(batches(16), epochs=3, writer=other, verbose=0, log_every_n_steps=4)
    other.close()
    sparse = event_accumulator.EventAccumulator(str(tmp_path / "sparse"), size_guidance={"scalars": 0})
    sparse.Reload()
    assert [e.step for e in sparse.Scalars("batch/loss")] == [4, 8]
    writer.close()
    acc = event_accumulator.EventAccumulator(str(tmp_path / "logs"), size_guidance={"scalars": 0})
    acc.Reload()
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        got = [(e.step, e.value) for e in acc.Scalars(f"epoch/{key}")]
        assert [s for s, _ in got] == [0, 1, 2]
        np.testing.assert_allclose([v for _, v in got], history.history[key], rtol=1e-6)
    assert [e.step for e in acc.Scalars("batch/loss")] == list(range(1, 10))  # 3 batches x 3 epochs
    assert [p.rsplit("/", 1)[-1] for p in manager.checkpoints] == ["ckpt-2", "ckpt-3"]
    assert int(epoch.numpy()) == 3 and int(opt.iterations.numpy()) == 9


def test_callbacks_stop_training_and_batch_hooks():
    calls = []

    class Stop(irf.train.Callback):
        def on_train_begin(self, logs):
            calls.append("begin")

        def on_train_batch_end(self, batch, logs):
            calls.append(("batch", batch, round(logs["loss"], 3) > 0))

        def on_epoch_end(self, epoch, logs):
            calls.append(("epoch", epoch))
            if epoch == 1:
                self.trainer.stop_training = True

    nn.init.seed(0)
    model = nn.Linear(4, 3)
    model.compile(irf.optim.SGD(0.1), "sparse_categorical_crossentropy")
    history = model.fit(batches(20), epochs=10, callbacks=[Stop()], verbose=0)
    assert history.epoch == [0, 1]
    assert calls == ["begin", ("batch", 0, True), ("batch", 1, True), ("epoch", 0),
                     ("batch", 0, True), ("batch", 1, True), ("epoch", 1)]


def test_progress_output(capsys, monkeypatch):
    nn.init.seed(0)
    model = nn.Linear(4, 3)
    model.compile(irf.optim.SGD(0.1), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(batches(20), epochs=1, verbose=1)  # stdout is not a terminal under pytest: no bar
    assert capsys.readouterr().out == ""
    model.fit(batches(20), epochs=2, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2  loss ") and "accuracy" in lines[0]
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    model.fit(batches(20), epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "2/2" in out and "loss" in out
    model.fit(batches(20), epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


def test_fit_errors():
    model = nn.Linear(4, 3)
    with pytest.raises(irf.IrflowError, match="compile"):
        model.fit(batches(), epochs=1)
    with pytest.raises(irf.IrflowError, match="unknown loss"):
        model.compile(irf.optim.SGD(0.1), "hinge")
    with pytest.raises(irf.IrflowError, match="unknown metric"):
        model.compile(irf.optim.SGD(0.1), "mse", ["f1"])
    model.compile(irf.optim.SGD(0.1), "sparse_categorical_crossentropy")
    with pytest.raises(irf.IrflowError, match=r"\(x, y\)"):
        model.fit([X], epochs=1, verbose=0)
    once = iter(batches())
    with pytest.raises(irf.IrflowError, match="no batches"):
        model.fit(once, epochs=2, verbose=0)


def test_keras_array_form_and_validation_tuple_match_the_numpy_reference():
    nn.init.seed(4)
    model = nn.Linear(4, 3)
    w0, b0 = model.weight.numpy().copy(), model.bias.numpy().copy()
    model.compile(irf.optim.SGD(0.5), "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(X, Y, batch_size=16, epochs=2, shuffle=False, validation_data=(X, Y), verbose=0)
    w, b, losses = numpy_softmax_regression(w0, b0, batches(16), 2, 0.5)
    np.testing.assert_allclose(model.weight.numpy(), w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(history.history["loss"], losses, rtol=1e-5)
    assert len(history.history["val_accuracy"]) == 2

    shuffled = irf.nn.trainer.ArrayBatches(X, Y, batch_size=16, shuffle=True, seed=1)
    first = [yb.tolist() for _, yb in shuffled]
    order = np.random.default_rng([1, 0]).permutation(40)
    assert first == [Y[order[i:i + 16]].tolist() for i in range(0, 40, 16)]
    shuffled.set_epoch(0)
    assert [yb.tolist() for _, yb in shuffled] == first

    history = model.fit(batches(), 2, verbose=0)  # positional epochs for an iterable of batches
    assert history.epoch == [0, 1]
    with pytest.raises(irf.IrflowError, match="needs its labels"):
        model.fit(X, epochs=1)
    with pytest.raises(irf.IrflowError, match="array inputs"):
        model.fit(batches(), Y, verbose=0)


def test_fit_on_onnxruntime_matches_numpy():
    pytest.importorskip("onnxruntime")
    results = {}
    for executor in ("numpy", "ort"):
        nn.init.seed(6)
        model = nn.MLP([4, 8, 3])
        model.compile(irf.optim.Adam(0.05), "sparse_categorical_crossentropy", ["accuracy"], executor=executor)
        history = model.fit(batches(20), epochs=2, verbose=0)
        results[executor] = (history.history["loss"], model.state_dict())
    np.testing.assert_allclose(results["ort"][0], results["numpy"][0], rtol=1e-4)
    for k, v in results["numpy"][1].items():
        np.testing.assert_allclose(results["ort"][1][k], v, rtol=1e-4, atol=1e-5, err_msg=k)


def test_lightning_style_trainer_uses_training_step_and_configure_optimizers():
    class Lit(nn.Module):
        def __init__(self):
            self.net = nn.Linear(4, 3)
            self.val_calls = 0

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch):
            x, y = batch
            logits = self(x)
            return nn.losses.softmax_cross_entropy(logits, y), logits

        def validation_step(self, batch):
            self.val_calls += 1  # counts traces: the validation graph is traced once
            assert not self.training
            x, y = batch
            logits = self(x)
            return nn.losses.softmax_cross_entropy(logits, y), logits

        def configure_optimizers(self):
            return irf.optim.SGD(0.5)

    nn.init.seed(0)
    lit = Lit()
    w0, b0 = lit.net.weight.numpy().copy(), lit.net.bias.numpy().copy()
    trainer = irf.train.Trainer(lit, metrics=["accuracy"])
    history = trainer.fit(batches(20), epochs=2, validation_data=batches(20), verbose=0)
    w, b, losses = numpy_softmax_regression(w0, b0, batches(20), 2, 0.5)
    np.testing.assert_allclose(lit.net.weight.numpy(), w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(history.history["loss"], losses, rtol=1e-5)
    assert lit.val_calls == 1 and lit.training
    assert "val_accuracy" in history.history

    class LossOnly(Lit):
        def training_step(self, batch):
            x, y = batch
            return nn.losses.softmax_cross_entropy(self(x), y)

    irf.train.Trainer(LossOnly()).fit(batches(20), epochs=1, verbose=0)  # no metrics: fine
    with pytest.raises(irf.IrflowError, match=r"\(loss, predictions\)"):
        irf.train.Trainer(LossOnly(), metrics=["accuracy"]).fit(batches(20), epochs=1, verbose=0)
    with pytest.raises(irf.IrflowError, match="configure_optimizers"):
        irf.train.Trainer(nn.Linear(4, 3))
