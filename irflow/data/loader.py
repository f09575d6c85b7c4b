"""PyTorch's shape of a pipeline: a map-style dataset and a ``DataLoader``.

A map-style dataset is any object with ``__getitem__(i)`` and ``__len__()`` (the protocol
``torch.utils.data.Dataset`` stands for); ``MapStyleDataset`` is an optional base class and
``TensorDataset`` the ready-made one over arrays. An iterable without ``__getitem__`` is
read in order (``IterableDataset``).

Workers are threads, not processes (``num_workers=k``: k threads build whole batches ahead,
batch i by worker i % k, and batches come out in order, as PyTorch hands them out): no pickling
of the dataset or the batches and no fork, and NumPy, file reads and decoders release the
GIL. A ``__getitem__`` that is pure Python gains nothing from more workers.
"""
from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import numpy as np

from irflow.errors import IrflowError, ShapeError
from irflow.data import structure as st
from irflow.data.batching import stack_elements
from irflow.data.dataset import _check_count


class MapStyleDataset:
    """Base class for map-style datasets (PyTorch's ``Dataset``): define ``__getitem__`` and ``__len__``.

    >>> class Squares(irf.data.MapStyleDataset):
    ...     def __len__(self): return 4
    ...     def __getitem__(self, i): return np.float32(i * i)
    >>> [b.numpy().tolist() for b in irf.data.DataLoader(Squares(), batch_size=2)]
    [[0.0, 1.0], [4.0, 9.0]]
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class TensorDataset(MapStyleDataset):
    """Rows of arrays of one length: item i is ``(a[i], b[i], ...)`` (``torch.utils.data.TensorDataset``).

    >>> ds = irf.data.TensorDataset(np.arange(3.0), np.arange(3)); len(ds), ds[1]
    (3, (np.float64(1.0), np.int64(1)))
    """

    def __init__(self, *tensors: Any):
        if not tensors:
            raise IrflowError("TensorDataset: needs at least one array")
        self.tensors = tuple(st.to_array(t, f"TensorDataset: array {i}") for i, t in enumerate(tensors))
        lengths = {t.shape[0] if t.ndim else None for t in self.tensors}
        if None in lengths or len(lengths) != 1:
            raise ShapeError(f"TensorDataset: arrays must share their first dim, got shapes {[t.shape for t in self.tensors]}")
        self._n = lengths.pop()

    def __getitem__(self, index: Any) -> tuple:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self._n


def default_collate(batch: list) -> Any:
    """Stack a list of samples component by component (tuples, dicts, namedtuples nest);
    Python floats become float32, ints int64 (irflow's rule; PyTorch makes floats float64).

    >>> irf.data.default_collate([(1.0, 2), (3.0, 4)])
    (array([1., 3.], dtype=float32), array([2, 4]))
    """
    samples = [st.to_numpy_element(s, "DataLoader: sample") if not isinstance(s, list) else
               st.to_numpy_element(tuple(s), "DataLoader: sample") for s in batch]
    return stack_elements(samples, "DataLoader")


class DataLoader:
    """Batches of a map-style dataset (``torch.utils.data.DataLoader``).

    ``shuffle=True`` draws a permutation per pass: from ``generator`` (a
    ``np.random.Generator``, advanced by each pass) or from ``seed`` (pass e uses
    ``default_rng([seed, e])``, so ``set_epoch`` resumes an order in a fresh process).
    ``collate_fn`` turns a list of samples into a batch (default: ``default_collate``);
    batches are yielded with irf.Tensor components. ``num_workers``: threads, see the module doc.

    >>> x, y = np.arange(10.0, dtype="float32"), np.arange(10)
    >>> [len(b[0]) for b in irf.data.DataLoader(irf.data.TensorDataset(x, y), batch_size=4, shuffle=True, seed=0)]
    [4, 4, 2]
    """

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool = False, *,
                 generator: np.random.Generator | None = None, seed: int | None = None,
                 collate_fn: Callable[[list], Any] | None = None, drop_last: bool = False,
                 num_workers: int = 0, prefetch_factor: int = 2):
        self.dataset = dataset
        self._map_style = hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")
        if not self._map_style and not hasattr(dataset, "__iter__"):
            raise IrflowError(f"DataLoader: dataset must have __getitem__ and __len__ (map-style) or __iter__, "
                              f"got {type(dataset).__name__}")
        if shuffle and not self._map_style:
            raise IrflowError("DataLoader: shuffle=True needs a map-style dataset (__getitem__ and __len__)")
        if generator is not None and seed is not None:
            raise IrflowError("DataLoader: give generator or seed, not both")
        self.batch_size = None if batch_size is None else _check_count(batch_size, "DataLoader: batch_size")
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.collate_fn = collate_fn
        self.num_workers = _check_count(num_workers, "DataLoader: num_workers", minimum=0)
        self.prefetch_factor = _check_count(prefetch_factor, "DataLoader: prefetch_factor")
        self.generator = generator
        self.seed = int(np.random.SeedSequence().entropy % (2**63)) if (shuffle and generator is None and seed is None) else seed
        self._epochs = itertools.count()

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass the ``epoch``-th one (its order is fixed by (seed, epoch))."""
        self._epochs = itertools.count(int(epoch))

    def __len__(self) -> int:
        if not self._map_style:
            raise IrflowError("DataLoader: len() of a loader over an iterable dataset is unknown")
        n = len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        epoch = next(self._epochs)
        if not self.shuffle:
            return np.arange(n)
        rng = self.generator if self.generator is not None else np.random.default_rng([self.seed, epoch])
        return rng.permutation(n)

    def _index_batches(self) -> Iterator[np.ndarray]:
        order = self._order()
        step = self.batch_size or 1
        for start in range(0, len(order), step):
            idx = order[start:start + step]
            if self.drop_last and len(idx) < step:
                return
            yield idx

    def _load(self, idx: np.ndarray) -> Any:
        ds = self.dataset
        if self.collate_fn is None and type(ds) is TensorDataset:
            # the fast path: one gather per array (the same batch default_collate would stack)
            return tuple(t[idx] for t in ds.tensors) if self.batch_size is not None else ds[int(idx[0])]
        samples = [ds[int(i)] for i in idx]
        if self.batch_size is None:
            return samples[0] if self.collate_fn is None else self.collate_fn(samples[0])
        return (self.collate_fn or default_collate)(samples)

    def _iterable_batches(self) -> Iterator[Any]:
        it = iter(self.dataset)
        while True:
            chunk = list(itertools.islice(it, self.batch_size or 1))
            if not chunk or (self.drop_last and len(chunk) < (self.batch_size or 1)):
                return
            if self.batch_size is None:
                yield chunk[0]
            else:
                yield (self.collate_fn or default_collate)(chunk)

    def _batches(self) -> Iterator[Any]:
        if not self._map_style:
            yield from self._iterable_batches()
            return
        if self.num_workers == 0:
            for idx in self._index_batches():
                yield self._load(idx)
            return
        # k threads, up to k * prefetch_factor batches in flight, handed out in order
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="irflow-dataloader") as pool:
            pending = []
            index_batches = self._index_batches()
            try:
                for idx in itertools.islice(index_batches, self.num_workers * self.prefetch_factor):
                    pending.append(pool.submit(self._load, idx))
                while pending:
                    batch = pending.pop(0).result()
                    for idx in itertools.islice(index_batches, 1):
                        pending.append(pool.submit(self._load, idx))
                    yield batch
            finally:
                for f in pending:
                    f.cancel()

    def __iter__(self) -> Iterator[Any]:
        for batch in self._batches():
            yield st.wrap_element(batch) if isinstance(batch, (tuple, dict, np.ndarray)) else batch
