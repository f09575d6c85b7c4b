"""irf.data.DataLoader: order, shuffling properties, collate, workers; torch as the reference
for the unshuffled batches (shuffled orders of two RNGs are not comparable)."""
from collections import namedtuple

import numpy as np
import pytest

import irflow as irf
from irflow.data import DataLoader, MapStyleDataset, TensorDataset


class Rows(MapStyleDataset):
    """The same items as TensorDataset, through the generic __getitem__ + collate path."""

    def __init__(self, *arrays):
        self.arrays = arrays

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, i):
        return tuple(a[i] for a in self.arrays)


def data(n=23):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 4)).astype("float32"), rng.integers(0, 10, n)


def batches(loader):
    return [tuple(t.numpy() for t in b) for b in loader]


def test_unshuffled_batches_match_torch_dataloader():
    torch = pytest.importorskip("torch", reason="torch.utils.data is the reference loader")
    x, y = data()
    ref = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                      batch_size=5, drop_last=False)
    got = batches(DataLoader(TensorDataset(x, y), batch_size=5))
    want = [(a.numpy(), b.numpy()) for a, b in ref]
    assert len(got) == len(want) == 5
    for (gx, gy), (wx, wy) in zip(got, want):
        np.testing.assert_array_equal(gx, wx)
        np.testing.assert_array_equal(gy, wy)
    ref_drop = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x)), batch_size=5, drop_last=True)
    assert len(DataLoader(TensorDataset(x), batch_size=5, drop_last=True)) == len(ref_drop) == 4


def test_shuffle_permutes_reproducibly_and_reshuffles_each_epoch():
    x, y = data()
    loader = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, seed=3)
    epochs = [np.concatenate([b[1] for b in batches(loader)]) for _ in range(3)]
    rows = [np.concatenate([b[0] for b in batches(DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, seed=3))])]
    for e in epochs:
        assert sorted(e.tolist()) == sorted(y.tolist())
    assert len({e.tobytes() for e in epochs}) == 3
    # rows stay together: each x row sits beside its own label
    again = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, seed=3)
    for bx, by in batches(again):
        for r, lab in zip(bx, by):
            i = int(np.flatnonzero((x == r).all(axis=1))[0])
            assert y[i] == lab
    assert rows[0].shape == x.shape
    fresh = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, seed=3)
    assert [np.concatenate([b[1] for b in batches(fresh)]).tolist() for _ in range(3)] == [e.tolist() for e in epochs]
    fresh.set_epoch(1)
    assert np.concatenate([b[1] for b in batches(fresh)]).tolist() == epochs[1].tolist()


def test_a_numpy_generator_is_advanced_by_each_pass():
    x, y = data()
    a = DataLoader(TensorDataset(x, y), batch_size=50, shuffle=True, generator=np.random.default_rng(9))
    b = DataLoader(TensorDataset(x, y), batch_size=50, shuffle=True, generator=np.random.default_rng(9))
    pa = [batches(a)[0][1].tolist() for _ in range(2)]
    assert pa == [batches(b)[0][1].tolist() for _ in range(2)] and pa[0] != pa[1]


def test_fast_path_and_generic_path_and_threads_agree():
    x, y = data(37)
    ref = batches(DataLoader(Rows(x, y), batch_size=6, shuffle=True, seed=1))
    for loader in (DataLoader(TensorDataset(x, y), batch_size=6, shuffle=True, seed=1),
                   DataLoader(Rows(x, y), batch_size=6, shuffle=True, seed=1, num_workers=3)):
        got = batches(loader)
        assert len(got) == len(ref) == 7
        for g, r in zip(got, ref):
            np.testing.assert_array_equal(g[0], r[0])
            np.testing.assert_array_equal(g[1], r[1])


def test_collate_fn_and_structures():
    P = namedtuple("P", "a b")

    class Dicts(MapStyleDataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return {"p": P(float(i), i), "v": np.full(2, i, "float32")}

    b = next(iter(DataLoader(Dicts(), batch_size=3)))
    assert isinstance(b["p"], P) and b["p"].a.dtype == irf.float32 and b["p"].b.numpy().tolist() == [0, 1, 2]
    np.testing.assert_array_equal(b["v"].numpy(), [[0, 0], [1, 1], [2, 2]])
    lengths = [bl for bl in DataLoader(Dicts(), batch_size=2, collate_fn=len)]
    assert lengths == [2, 2, 1]


def test_worker_exceptions_reach_the_consumer():
    class Broken(MapStyleDataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            if i == 7:
                raise KeyError("item 7 is broken")
            return np.float32(i)

    for workers in (0, 2):
        got = []
        with pytest.raises(KeyError, match="item 7"):
            for b in DataLoader(Broken(), batch_size=3, num_workers=workers):
                got.append(b.numpy().tolist())
        assert got == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_iterable_dataset_and_errors():
    assert [b.numpy().tolist() for b in DataLoader(range(5), batch_size=2)] == [[0, 1], [2, 3], [4]]
    with pytest.raises(irf.IrflowError, match="map-style"):
        DataLoader(range(5).__iter__(), shuffle=True)
    with pytest.raises(irf.ShapeError, match="first dim"):
        TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(irf.IrflowError, match="batch_size"):
        DataLoader(TensorDataset(np.zeros(3)), batch_size=0)
