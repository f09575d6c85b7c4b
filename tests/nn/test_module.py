"""Module tracking (attributes, lists, tuples, dicts, sharing), name scopes, state_dict,
save/load, training mode, variable_creator_scope."""
import numpy as np
import pytest

import irflow as irf
from irflow import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.in_list = [nn.Linear(2, 3, rng=0), nn.ReLU()]
        self.in_tuple = (nn.Linear(3, 3, rng=1),)
        self.in_dict = {"head": nn.Linear(3, 1, rng=2)}
        self.scale = irf.Variable(np.float32(2.0), name="scale")
        self.counter = irf.Variable(np.int64(0), name="counter", trainable=False)
        self.not_tracked = np.ones(3)

    def forward(self, x):
        for layer in self.in_list + list(self.in_tuple):
            x = layer(x)
        return self.in_dict["head"](x) * self.scale


def test_tracking_in_lists_tuples_dicts_with_scoped_names():
    b = Block()
    names = [v.name for v in b.variables]
    p = b.path
    assert names == [f"{p}/linear/weight", f"{p}/linear/bias", f"{p}/linear_1/weight", f"{p}/linear_1/bias",
                     f"{p}/linear_2/weight", f"{p}/linear_2/bias", f"{p}/scale", f"{p}/counter"]
    assert list(b.state_dict()) == ["in_list.0.weight", "in_list.0.bias", "in_tuple.0.weight", "in_tuple.0.bias",
                                    "in_dict.head.weight", "in_dict.head.bias", "scale", "counter"]
    assert len(b.trainable_variables) == 7 and [v.name for v in b.non_trainable_variables] == [f"{p}/counter"]
    assert [type(m).__name__ for m in b.submodules] == ["Linear", "ReLU", "Linear", "Linear"]


def test_mlp_names_nest_and_later_appends_are_seen():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = nn.MLP([4, 5, 2], rng=0)

    net = Net()
    assert [v.name for v in net.variables] == [f"{net.path}/mlp/linear/weight", f"{net.path}/mlp/linear/bias",
                                               f"{net.path}/mlp/linear_1/weight", f"{net.path}/mlp/linear_1/bias"]
    explicit = nn.MLP([2, 2], name="encoder")
    assert explicit.variables[0].name.startswith("encoder") and explicit.variables[0].name.endswith("/linear/weight")
    net.mlp.layers.append(nn.Linear(2, 2))  # tracking walks attributes each time
    assert len(net.variables) == 6


def test_shared_layer_counted_once():
    shared = nn.Linear(3, 3, rng=0)

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = shared
            self.b = [shared]

    t = Two()
    assert len(t.variables) == 2 and len(t.submodules) == 1


def test_sequential_both_forms_and_matches_numpy():
    l1, l2 = nn.Linear(4, 3, rng=0), nn.Linear(3, 2, rng=1)
    seq_a = nn.Sequential([l1, nn.ReLU(), l2])
    seq_b = nn.Sequential(l1, nn.ReLU(), l2)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype("float32")
    want = np.maximum(x @ l1.weight.numpy() + l1.bias.numpy(), 0) @ l2.weight.numpy() + l2.bias.numpy()
    np.testing.assert_allclose(seq_a(x).numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(seq_b(x).numpy(), want, rtol=1e-6)
    assert len(seq_a) == 3 and seq_a[2] is l2


def test_state_dict_round_trip_between_instances_and_clear_errors():
    a, b = nn.MLP([3, 4, 2], rng=0), nn.MLP([3, 4, 2], rng=1)
    assert not np.array_equal(a.variables[0].numpy(), b.variables[0].numpy())
    b.load_state_dict(a.state_dict())
    for va, vb in zip(a.variables, b.variables):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    state = a.state_dict()
    state.pop("layers.1.bias")
    state["layers.9.weight"] = np.zeros(1, "float32")
    with pytest.raises(irf.IrflowError, match=r"missing keys \['layers.1.bias'\].*unexpected keys \['layers.9.weight'\]"):
        b.load_state_dict(state)
    wrong = a.state_dict()
    wrong["layers.0.weight"] = np.zeros((4, 3), "float32")
    with pytest.raises(irf.ShapeError, match=r"layers.0.weight.*\(3, 4\).*\(4, 3\)"):
        b.load_state_dict(wrong)
    wrong = a.state_dict()
    wrong["layers.0.bias"] = wrong["layers.0.bias"].astype("float64")
    with pytest.raises(irf.DTypeError, match="layers.0.bias.*float32.*float64"):
        b.load_state_dict(wrong)
    before = b.variables[0].numpy().copy()
    partial = {"layers.0.weight": np.ones((3, 4), "float32")}
    b.load_state_dict(partial, strict=False)
    np.testing.assert_array_equal(b.variables[0].numpy(), 1.0)
    assert not np.array_equal(before, 1.0)


def test_save_load_bit_exact(tmp_path):
    a = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.BatchNorm(2), nn.Flatten(), nn.Linear(8, 3, rng=1))
    a.layers[1].running_mean.assign(np.array([0.1, -0.3], "float32"))  # non-trainable state too
    written = a.save(tmp_path / "model")
    assert written.suffix == ".npz"
    b = nn.Sequential(nn.Conv2d(1, 2, 3, rng=5), nn.BatchNorm(2), nn.Flatten(), nn.Linear(8, 3, rng=6))
    b.load(written)
    for va, vb in zip(a.variables, b.variables):
        assert va.numpy().tobytes() == vb.numpy().tobytes() and va.numpy().dtype == vb.numpy().dtype
    with pytest.raises(irf.IrflowError, match="no such file"):
        b.load(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(irf.IrflowError, match="bad.npz"):
        b.load(tmp_path / "bad.npz")


def test_load_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"layers.0.weight": np.array([object()], dtype=object)})
    with pytest.raises(irf.IrflowError):
        nn.MLP([3, 2]).load(path)


def test_train_eval_modes_reach_sublayers():
    seq = nn.Sequential(nn.Linear(4, 4, rng=0), nn.Dropout(0.5, seed=1))
    x = np.ones((2, 4), "float32")
    assert seq.training and seq.layers[1].training
    seq.eval()
    assert not seq.layers[1].training
    np.testing.assert_array_equal(seq(x).numpy(), seq.layers[0](x).numpy())
    dropped = seq(x, training=True).numpy()  # the call's keyword wins over the mode
    assert (dropped == 0).any()


def test_variable_creator_scope_sees_module_variables():
    seen = []

    def creator(next_creator, **kw):
        seen.append(kw["name"])
        kw["trainable"] = False
        return next_creator(**kw)

    with irf.variable_creator_scope(creator):
        layer = nn.Linear(2, 2, name="frozen")
    assert seen == ["frozen/weight", "frozen/bias"] or all(s.endswith(("/weight", "/bias")) for s in seen)
    assert layer.trainable_variables == [] and len(layer.variables) == 2


def test_forward_missing_raises():
    class Empty(nn.Module):
        pass

    with pytest.raises(irf.IrflowError, match="Empty.*defines no forward"):
        Empty()(1.0)


def test_bare_variables_in_containers_and_cycles():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.ws = [irf.Variable(np.zeros(2, "float32"), name=f"w{i}") for i in range(2)]
            self.table = {"a": (irf.Variable(np.ones(1, "float32"), name="a"),)}
            self.child = nn.Dense(2, 2, rng=0)
            self.child.parent = self  # a cycle must not loop forever

    h = Holder()
    assert list(h.state_dict()) == ["ws.0", "ws.1", "table.a.0", "child.weight", "child.bias"]
    assert [v.name for v in h.variables][:3] == [f"{h.path}/w0", f"{h.path}/w1", f"{h.path}/a"]
    assert nn.Dense is nn.Linear and h.submodules == [h.child]


def test_a_module_whose_init_takes_name_receives_it_and_is_scoped_by_it():
    class Tagged(nn.Module):
        def __init__(self, size, name=None):
            super().__init__()
            self.tag = name
            self.w = irf.Variable(np.zeros(size, "float32"), name="w")

    t = Tagged(3, name="encoder")
    # The scope is named after it ("encoder", or "encoder_1" if another test made one first).
    assert t.tag == "encoder" and t.name.startswith("encoder") and t.w.name == f"{t.path}/w"
    assert Tagged(2).tag is None  # not given: the default, as for any keyword


# -- super().__init__(name=name), the Keras idiom (issue 14) ------------------------------------
class _KerasStyle(irf.nn.Module):
    def __init__(self, units, name=None):
        super().__init__(name=name)
        self.dense = irf.nn.Linear(2, units)

    def forward(self, x):
        return self.dense(x)


class _TorchStyle(irf.nn.Module):
    def __init__(self, units):
        super().__init__()
        self.dense = irf.nn.Linear(2, units)

    def forward(self, x):
        return self.dense(x)


class _RenamesItself(irf.nn.Module):
    def __init__(self):
        super().__init__(name="encoder")
        self.w = irf.Variable(np.zeros((2,), "float32"), name="w")


def test_super_init_with_name_keyword_names_the_scope():
    m = _KerasStyle(3, name="head")
    assert m.name.startswith("head")
    assert [v.name for v in m.variables] == [f"{m.name}/linear/weight", f"{m.name}/linear/bias"]
    unnamed = _KerasStyle(3)
    assert unnamed.name.startswith("_keras_style")
    assert unnamed.variables[0].name == f"{unnamed.name}/linear/weight"


def test_plain_super_init_still_works():
    m = _TorchStyle(4)
    assert m.name.startswith("_torch_style")
    assert m(np.ones((1, 2), "float32")).shape == (1, 4)


def test_super_init_with_a_new_name_renames_before_variables_exist():
    a, b = _RenamesItself(), _RenamesItself()
    assert a.name.startswith("encoder") and b.name.startswith("encoder_") and a.name != b.name
    assert (a.variables[0].name, b.variables[0].name) == (f"{a.name}/w", f"{b.name}/w")


def test_renaming_after_creating_variables_is_an_error():
    class Late(irf.nn.Module):
        def __init__(self):
            self.w = irf.Variable(np.zeros((2,), "float32"), name="w")
            super().__init__(name="late_name")

    with pytest.raises(irf.IrflowError, match="already created"):
        Late()
