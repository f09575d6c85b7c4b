"""Checkpoints: model + optimizer state round-trips so training continues exactly; files are
plain safetensors + JSON (read back here with safetensors itself); strict restore errors;
CheckpointManager bookkeeping; the optimizers' PyTorch-style state_dict."""
import json
import re

import numpy as np
import pytest

import irflow as irf
from irflow import nn

st = pytest.importorskip("safetensors.numpy", reason="checkpoints are safetensors files")
RNG = np.random.default_rng(3)
X = RNG.standard_normal((16, 4)).astype("float32")
Y = RNG.integers(0, 3, 16)


def make(seed=0, sizes=(4, 8, 3)):
    nn.init.seed(seed)
    return nn.MLP(list(sizes))


def step_fn(model, opt):
    @irf.function
    def step(x, y):
        with irf.GradientTape() as tape:
            loss = nn.losses.softmax_cross_entropy(model(x), y)
        vs = model.trainable_variables
        opt.apply_gradients(zip(tape.gradient(loss, vs), vs))
        return loss
    return step


def weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("make_opt", [lambda: irf.optim.Adam(0.05), lambda: irf.optim.SGD(0.1, momentum=0.9)])
def test_restore_into_fresh_objects_continues_training_exactly(tmp_path, make_opt):
    model, opt = make(0), make_opt()
    step = step_fn(model, opt)
    for _ in range(3):
        step(X, Y)
    ckpt = irf.train.Checkpoint(model=model, optimizer=opt, step=irf.Variable(np.int64(3)))
    path = ckpt.save(tmp_path / "new_dir" / "ckpt")  # the directory is created, as in TF
    assert path == str(tmp_path / "new_dir" / "ckpt-1")
    step(X, Y)
    step(X, Y)
    expected = weights(model)

    model2, opt2 = make(1), make_opt()  # other initial weights; slots do not exist yet
    counter = irf.Variable(np.int64(0))
    irf.train.Checkpoint(model=model2, optimizer=opt2, step=counter).restore(path)
    assert int(counter.numpy()) == 3 and int(opt2.iterations.numpy()) == 3
    step2 = step_fn(model2, opt2)
    step2(X, Y)
    step2(X, Y)
    got = weights(model2)
    assert got.keys() == expected.keys()
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k], err_msg=k)


def test_files_are_safetensors_and_a_json_index(tmp_path):
    model, opt = make(), irf.optim.Adam(0.01)
    step_fn(model, opt)(X, Y)
    path = irf.train.Checkpoint(model=model, optimizer=opt).write(tmp_path / "w")
    raw = (tmp_path / "w.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    json.loads(raw[8:8 + header_len])  # a safetensors header is JSON: no pickle anywhere
    tensors = st.load(raw)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(tensors[f"model/{k}"], v)
    m_slot = opt.slots_of(model.layers[0].weight)["m"].numpy()
    np.testing.assert_array_equal(tensors["optimizer/slots/model/layers.0.weight/m"], m_slot)
    assert tensors["optimizer/iterations"] == 1
    index = json.loads((tmp_path / "w.index.json").read_text())
    assert index["objects"] == {"model": "MLP", "optimizer": "Adam"}
    assert index["tensors"]["model/layers.0.weight"] == {"dtype": "float32", "shape": [4, 8],
                                                         "variable": model.layers[0].weight.name}
    assert re.fullmatch(r"mlp(_\d+)?/linear/weight", model.layers[0].weight.name)  # the module path (IR, ONNX)
    assert path == str(tmp_path / "w")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.index.json", "w.safetensors"]  # no temp files left


def test_restore_into_another_structure_lists_missing_unexpected_and_misshaped(tmp_path):
    model = make(0, (4, 8, 3))
    path = irf.train.Checkpoint(model=model).write(tmp_path / "a")

    class Other(nn.Module):
        def __init__(self):
            self.layers = [nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)]
            self.extra = irf.Variable(np.zeros(2, "float32"))

    other = Other()
    before = weights(other)
    with pytest.raises(irf.IrflowError) as info:
        irf.train.Checkpoint(model=other).restore(path)
    msg = str(info.value)
    # MLP keeps its Linear layers as layers.0 and layers.1; Other has layers.0 and layers.2.
    assert "missing from the checkpoint: ['model/extra', 'model/layers.2.bias', 'model/layers.2.weight']" in msg
    assert "unexpected (not in these objects): ['model/layers.1.bias', 'model/layers.1.weight']" in msg
    assert "model/layers.0.weight: expected float32[4, 5], the checkpoint holds float32[4, 8]" in msg
    for k, v in weights(other).items():
        np.testing.assert_array_equal(v, before[k])  # nothing assigned
    smaller = nn.Sequential([nn.Linear(4, 8)])
    with pytest.raises(irf.IrflowError, match=r"unexpected \(not in these objects\): \['model/layers.1.bias', 'model/layers.1.weight'\]"):
        irf.train.Checkpoint(model=smaller).restore(path)


def test_slots_of_another_optimizer_kind_are_rejected(tmp_path):
    model, opt = make(), irf.optim.SGD(0.1, momentum=0.9)
    step_fn(model, opt)(X, Y)
    path = irf.train.Checkpoint(model=model, optimizer=opt).write(tmp_path / "c")
    with pytest.raises(irf.IrflowError, match="optimizer/slots/model/layers.0.weight/momentum"):
        irf.train.Checkpoint(model=make(), optimizer=irf.optim.Adam(0.1)).restore(path)


def test_restore_none_is_a_fresh_start_and_a_bad_path_is_an_error(tmp_path):
    model = make()
    before = weights(model)
    irf.train.Checkpoint(model=model).restore(None)
    for k, v in weights(model).items():
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(irf.IrflowError, match="no checkpoint"):
        irf.train.Checkpoint(model=model).restore(tmp_path / "nope")
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(irf.IrflowError, match="not a safetensors file"):
        irf.train.Checkpoint(model=model).restore(tmp_path / "bad")
    with pytest.raises(irf.IrflowError, match="not a Module"):
        irf.train.Checkpoint(model=42)


def test_manager_keeps_the_newest_and_a_new_manager_continues(tmp_path):
    model = make()
    ckpt = irf.train.Checkpoint(model=model)
    manager = irf.train.CheckpointManager(ckpt, tmp_path / "ck", max_to_keep=2)
    assert manager.latest_checkpoint is None and irf.train.latest_checkpoint(tmp_path / "ck") is None
    saved = []
    for i in range(4):
        model.layers[0].bias.assign(np.full(8, float(i), "float32"))
        saved.append(manager.save())
    assert saved[-1] == str(tmp_path / "ck" / "ckpt-4")
    assert manager.checkpoints == saved[2:]
    assert irf.train.latest_checkpoint(tmp_path / "ck") == saved[-1]
    names = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert names == ["checkpoint.json", "ckpt-3.index.json", "ckpt-3.safetensors", "ckpt-4.index.json", "ckpt-4.safetensors"]

    model2 = make(5)
    ckpt2 = irf.train.Checkpoint(model=model2)
    manager2 = irf.train.CheckpointManager(ckpt2, tmp_path / "ck", max_to_keep=2)
    assert manager2.restore_or_initialize() == saved[-1]
    np.testing.assert_array_equal(model2.layers[0].bias.numpy(), np.full(8, 3.0, "float32"))
    assert manager2.save() == str(tmp_path / "ck" / "ckpt-5")  # the save counter was restored
    assert manager2.checkpoints == [saved[3], str(tmp_path / "ck" / "ckpt-5")]  # ckpt-3 deleted
    assert not (tmp_path / "ck" / "ckpt-3.safetensors").exists()
    model2.layers[0].bias.assign(np.zeros(8, "float32"))
    ckpt2.restore(saved[3])
    np.testing.assert_array_equal(model2.layers[0].bias.numpy(), np.full(8, 3.0, "float32"))


def test_metric_state_is_checkpointed(tmp_path):
    acc = nn.metrics.SparseCategoricalAccuracy()
    acc.update_state(np.array([0, 1]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    path = irf.train.Checkpoint(acc=acc).write(tmp_path / "m")
    acc2 = nn.metrics.SparseCategoricalAccuracy()
    irf.train.Checkpoint(acc=acc2).restore(path)
    assert float(acc2.result()) == 0.5


def test_optimizer_state_dict_round_trip_before_and_after_slots_exist():
    model, opt = make(0), irf.optim.Adam(0.05)
    step = step_fn(model, opt)
    step(X, Y)
    step(X, Y)
    state = opt.state_dict()
    assert sorted(state) == sorted(["iterations"] + [f"{i}.{s}" for i in range(4) for s in ("m", "v")])
    np.testing.assert_array_equal(state["0.m"], opt.slots_of(model.layers[0].weight)["m"].numpy())

    model2, opt2 = make(1), irf.optim.Adam(0.05)
    model2.load_state_dict(model.state_dict())
    opt2.load_state_dict(state)  # no slots yet: they are filled when created, inside the trace
    step(X, Y)
    step_fn(model2, opt2)(X, Y)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(model2.state_dict()[k], v, err_msg=k)

    with pytest.raises(irf.IrflowError, match="missing slot 0.v"):
        opt2.load_state_dict({"iterations": np.int64(1), "0.m": state["0.m"]})
    with pytest.raises(irf.IrflowError, match="unexpected key 'lr'"):
        opt2.load_state_dict({**state, "lr": np.float32(0.1)})
    with pytest.raises(irf.IrflowError, match="slot 1.m"):
        opt2.load_state_dict({**state, "1.m": np.zeros((2, 2), "float32")})


def test_dropout_call_counter_is_checkpointed_so_masks_continue(tmp_path):
    def build():
        nn.init.seed(0)
        return nn.Sequential([nn.Linear(4, 8), nn.Dropout(0.5, seed=3), nn.Linear(8, 3)])

    a = build()
    for _ in range(3):
        a(X, training=True)
    path = irf.train.Checkpoint(model=a).write(tmp_path / "d")
    b = build()
    irf.train.Checkpoint(model=b).restore(path)
    assert "model/layers.1._module_calls" in st.load((tmp_path / "d.safetensors").read_bytes())
    np.testing.assert_array_equal(a(X, training=True).numpy(), b(X, training=True).numpy())
    fresh = build()  # without the counter the next mask would be the first one again
    assert not np.array_equal(fresh(X, training=True).numpy(), b(X, training=True).numpy())


@pytest.mark.parametrize("fail_at", [0, 1])
def test_a_failed_rewrite_of_the_same_prefix_leaves_the_old_pair(tmp_path, monkeypatch, fail_at):
    # tensors + index are one staged pair: a failure while writing either leaves both old files
    import errno

    import irflow.atomic

    model = make(0)
    ckpt = irf.train.Checkpoint(model=model)
    path = ckpt.write(tmp_path / "ck")
    old = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    saved = [v.numpy().copy() for v in model.trainable_variables]
    for v in model.trainable_variables:
        v.assign(v.numpy() + 1.0)
    real_open = irflow.atomic._open_temp
    count = [0]

    class Full:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._f, name)

    def open_one_failing(fd, mode, encoding):
        f = real_open(fd, mode, encoding)
        count[0] += 1
        return Full(f) if count[0] - 1 == fail_at else f

    monkeypatch.setattr(irflow.atomic, "_open_temp", open_one_failing)
    with pytest.raises(irf.IrflowError, match="No space left"):
        ckpt.write(tmp_path / "ck")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == old  # byte for byte, no temporaries
    fresh = make(1)
    irf.train.Checkpoint(model=fresh).read(path)
    for a, b in zip(fresh.trainable_variables, saved):
        np.testing.assert_array_equal(a.numpy(), b)
