"""End to end: the digits MLP trained with a traced step reaches >= 95% test accuracy and its
ONNX export predicts the same classes on onnxruntime; transfer learning freezes a trunk."""
from pathlib import Path

import numpy as np
import pytest

import irflow as irf
from irflow import nn

sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="the digits data set ships with scikit-learn")


def digits_split(seed=0):
    d = sklearn_datasets.load_digits()
    x, y = (d.data / 16.0).astype("float32"), d.target.astype("int64")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    n = int(0.8 * len(x))
    return x[:n], y[:n], x[n:], y[n:]


def make_step(model, opt):
    @irf.function
    def step(x, y):
        with irf.GradientTape() as tape:
            loss = nn.losses.softmax_cross_entropy(model(x), y)
        vs = model.trainable_variables
        opt.apply_gradients(zip(tape.gradient(loss, vs), vs))
        return loss

    return step


def test_digits_mlp_reaches_95_percent_and_onnx_export_agrees(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="the exported model runs on onnxruntime")
    xtr, ytr, xte, yte = digits_split()
    model = nn.MLP([64, 64, 10], rng=0)
    step = make_step(model, irf.optim.Adam(0.01))
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(8):  # epochs
        order = rng.permutation(len(xtr))
        for i in range(0, len(xtr) - 63, 64):  # full batches only: one trace
            idx = order[i:i + 64]
            losses.append(float(step(xtr[idx], ytr[idx])))
    assert step.trace_count == 1  # every batch reused the one traced graph
    acc = nn.metrics.Accuracy()
    logits = model(xte).numpy()
    acc.update_state(yte, logits)
    assert float(acc.result()) >= 0.95, f"test accuracy {float(acc.result()):.3f}, losses {losses[::20]}"
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10])

    path = tmp_path / "digits.onnx"
    exported = irf.onnx.export(model, path, irf.TensorSpec(("batch", 64), "float32"))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_logits,) = sess.run(None, {exported.graph.input[0].name: xte})
    np.testing.assert_allclose(onnx_logits, logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(onnx_logits.argmax(1), logits.argmax(1))


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(64, 32, rng=0), nn.ReLU())
        self.head1 = nn.Linear(32, 10, rng=1)
        self.head2 = nn.Linear(32, 2, rng=2)

    def forward(self, x, head: int = 1):
        h = self.trunk(x)
        return self.head1(h) if head == 1 else self.head2(h)


def test_transfer_learning_fine_tuning_head2_leaves_trunk_unchanged():
    xtr, ytr, _, _ = digits_split()
    model = TwoHeads()
    opt = irf.optim.SGD(0.1, momentum=0.9)

    @irf.function
    def train_head1(x, y):
        with irf.GradientTape() as tape:
            loss = nn.losses.softmax_cross_entropy(model(x, head=1), y)
        vs = model.trunk.trainable_variables + model.head1.trainable_variables
        opt.apply_gradients(zip(tape.gradient(loss, vs), vs))
        return loss

    for i in range(0, 640, 64):
        train_head1(xtr[i:i + 64], ytr[i:i + 64])
    trunk_before = {k: v.copy() for k, v in model.trunk.state_dict().items()}
    head1_before = model.head1.state_dict()
    head2_before = model.head2.state_dict()

    fine = irf.optim.Adam(0.01)

    @irf.function
    def train_head2(x, y):  # a new task (even digit?) on the frozen trunk
        with irf.GradientTape() as tape:
            loss = nn.losses.softmax_cross_entropy(model(x, head=2), y)
        vs = model.head2.trainable_variables
        fine.apply_gradients(zip(tape.gradient(loss, vs), vs))
        return loss

    losses = [float(train_head2(xtr[i:i + 64], ytr[i:i + 64] % 2)) for i in range(0, 1280, 64)]
    for k, v in model.trunk.state_dict().items():
        assert v.tobytes() == trunk_before[k].tobytes(), k
    for k, v in model.head1.state_dict().items():
        assert v.tobytes() == head1_before[k].tobytes(), k
    assert any(not np.array_equal(v, head2_before[k]) for k, v in model.head2.state_dict().items())
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    graph = train_head2.get_concrete_function(irf.TensorSpec((64, 64), "float32"), irf.TensorSpec((64,), "int64"))
    assert len(graph.variable_outputs) == 2 + 2 * 2 + 1  # head2's weight and bias, their Adam slots, the counter


def _load_example():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "train_digits.py"
    spec = importlib.util.spec_from_file_location("train_digits", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def test_train_digits_example_reaches_95_percent_logs_checkpoints_and_resumes(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    example = _load_example()
    common = ["--model", "mlp", "--logdir", str(tmp_path / "logs"), "--ckpt-dir", str(tmp_path / "ckpt"),
              "--out", str(tmp_path / "m.onnx")]
    first = example.run([*common, "--epochs", "3"])
    resumed = example.run([*common, "--epochs", "5", "--resume"])  # epochs 4 and 5 only
    assert len(first["history"]["loss"]) == 3 and len(resumed["history"]["loss"]) == 2
    assert resumed["test_accuracy"] >= 0.95 and resumed["onnx_agrees"]
    assert [Path(p).name for p in resumed["checkpoints"]] == ["ckpt-4", "ckpt-5"]
    acc = event_accumulator.EventAccumulator(str(tmp_path / "logs"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("epoch/val_accuracy")] == [0, 1, 2, 3, 4]
    assert acc.Scalars("epoch/val_accuracy")[-1].value == pytest.approx(resumed["test_accuracy"])
    assert "train_examples/image/0" in acc.Tags()["images"]


def test_train_digits_example_cnn_on_onnxruntime_runs_and_onnx_agrees(tmp_path):
    example = _load_example()
    # exit status 0 means every test prediction of the ONNX export equals irflow's
    assert example.main(["--model", "cnn", "--executor", "ort", "--epochs", "1", "--out", str(tmp_path / "m.onnx"),
                         "--logdir", str(tmp_path / "logs"), "--ckpt-dir", str(tmp_path / "ckpt")]) == 0
    assert (tmp_path / "m.onnx").is_file()


def test_onnx_export_of_a_module_uses_inference_mode_and_restores_it(tmp_path):
    model = nn.Sequential(nn.Linear(6, 4, rng=0), nn.BatchNorm(4), nn.Dropout(0.5, seed=0), nn.Linear(4, 3, rng=1))
    x = np.random.default_rng(1).standard_normal((5, 6)).astype("float32")
    model(x)  # one training call: running statistics move away from (0, 1)
    assert model.training
    exported = irf.onnx.export(model, tmp_path / "m.onnx", irf.TensorSpec(("batch", 6), "float32"))
    assert model.training and all(m.training for m in model.submodules)  # modes restored
    got = irf.onnx.run(tmp_path / "m.onnx", {exported.graph.input[0].name: x}, device="cpu")
    want = model(x, training=False).numpy()
    np.testing.assert_allclose(next(iter(got.values())), want, rtol=1e-5, atol=1e-5)
