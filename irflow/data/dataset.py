"""``irf.data.Dataset``: the ``tf.data`` chain.

A Dataset is a recipe: every transformation returns a new Dataset that reads its input's
elements lazily. Iterating (``for x, y in ds``) starts one pass (one *epoch*): a shuffle in
the chain draws a new order for each pass, deterministically from its seed and the pass
number, as ``shuffle(..., reshuffle_each_iteration=True)`` does in TensorFlow.

Elements are nested tuples / dicts of components; the pipeline keeps components as NumPy
arrays and the iterator yields them as ``irf.Tensor`` (``as_numpy_iterator`` yields NumPy).

Fast path: when the chain under a ``batch`` is ``from_tensor_slices`` followed only by
``shuffle``, ``take``, ``skip`` and ``repeat``, the chain runs on element *indices* and each
batch is one fancy-indexing gather of the source arrays instead of stacking elements one by
one. The order is the same as the element-by-element path (tests compare the two).
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Iterator

import numpy as np

from irflow.errors import IrflowError, ShapeError
from irflow.data import structure as st

INFINITE_CARDINALITY = -1
UNKNOWN_CARDINALITY = -2
AUTOTUNE = -1  # tf.data.AUTOTUNE: let the pipeline choose (a prefetch depth of 8 here)
# prefetch(AUTOTUNE)'s depth: the producer refills from 4 to 8, so it is woken once per 4
# elements (each wake-up costs a context switch and a GIL hand-off; docs/data.md, prefetch).
_AUTOTUNE_PREFETCH = 8


# The Dataset subclasses the chain methods build (Map, Batch, Prefetch, ...) live in the modules
# beside this one and subclass Dataset, so they import this module; to keep the imports one way,
# each registers itself here with ``@builds`` and the methods look it up by name.
# ``irflow/data/__init__.py`` imports every such module, and importing this module runs that
# package ``__init__`` first, so the table is full before any method can run.
_BUILT: dict[str, type] = {}


def builds(cls: type) -> type:
    """Class decorator: register a Dataset subclass that a chain method of Dataset builds."""
    _BUILT[cls.__name__] = cls
    return cls


def _built(name: str) -> type:
    try:
        return _BUILT[name]
    except KeyError:
        raise IrflowError(f"irf.data: the dataset class {name!r} is not registered "
                          "(import irflow.data, which imports every transformation module)") from None


class DatasetLengthError(IrflowError, TypeError):
    """``len(ds)`` of a dataset whose length is unknown or infinite (a TypeError, as in TF)."""


class Dataset:
    """A lazily evaluated sequence of elements, built by chaining transformations.

    >>> ds = irf.data.Dataset.from_tensor_slices((np.arange(6.0), np.arange(6))).shuffle(6, seed=0).batch(4)
    >>> [x.shape for x, y in ds]                                     # doctest: +SKIP
    [(4,), (2,)]
    """

    _input: "Dataset | None" = None

    # -- what every dataset provides ---------------------------------------------------------------
    def _iterator(self) -> Iterator[Any]:
        """One pass over the elements, as NumPy structures."""
        raise NotImplementedError

    def _index_source(self) -> "_TensorSlices | None":
        """The random-access source if this chain can run on element indices (no side effects)."""
        return None

    def _index_iterator(self) -> Iterator[int]:
        """One pass as indices into ``_index_source()`` (only called when that is not None)."""
        raise NotImplementedError

    def cardinality(self) -> int:
        """The number of elements: an int, ``INFINITE_CARDINALITY`` (-1) or ``UNKNOWN_CARDINALITY`` (-2).

        >>> irf.data.Dataset.range(10).batch(3).cardinality()
        4
        """
        return UNKNOWN_CARDINALITY

    def __len__(self) -> int:
        n = self.cardinality()
        if n == INFINITE_CARDINALITY:
            raise DatasetLengthError("len() of an infinite dataset (it has repeat() without a count)")
        if n < 0:
            raise DatasetLengthError("len() of a dataset whose length is unknown (after filter() or from_generator()); "
                                     "use cardinality(), which returns -2 for unknown")
        return n

    def __iter__(self) -> Iterator[Any]:
        for element in self._iterator():
            yield st.wrap_element(element)

    def as_numpy_iterator(self) -> Iterator[Any]:
        """The elements with NumPy arrays as components.

        >>> [int(x) for x in irf.data.Dataset.range(3).as_numpy_iterator()]
        [0, 1, 2]
        """
        return self._iterator()

    def set_epoch(self, epoch: int) -> "Dataset":
        """Make the next pass the ``epoch``-th one for every shuffle in the chain (to resume a
        run in a fresh process with the same data order, as ``DistributedSampler.set_epoch``).

        >>> ds = irf.data.Dataset.range(5).shuffle(5, seed=1)
        >>> a = list(ds.as_numpy_iterator()); _ = ds.set_epoch(0); a == list(ds.as_numpy_iterator())
        True
        """
        node: Dataset | None = self
        while node is not None:
            if isinstance(node, _Shuffle):
                node._epochs = itertools.count(int(epoch))
            node = node._input
        return self

    # -- sources -----------------------------------------------------------------------------------
    @staticmethod
    def from_tensor_slices(tensors: Any) -> "Dataset":
        """Slices of ``tensors`` (an array, or a tuple / dict of arrays of one length) along axis 0.

        >>> [int(x) for x, y in irf.data.Dataset.from_tensor_slices((np.arange(3), np.zeros(3)))]
        [0, 1, 2]
        """
        return _TensorSlices(tensors)

    @staticmethod
    def from_generator(generator: Callable[[], Any], output_signature: Any = None) -> "Dataset":
        """Elements yielded by ``generator()`` (a callable, called once per pass). With
        ``output_signature`` (TensorSpecs in the element's structure) every element is checked
        against it; Python numbers take the spec's dtype.

        >>> def gen():
        ...     yield np.array([1, 2]); yield np.array([3])
        >>> [x.numpy().tolist() for x in irf.data.Dataset.from_generator(gen)]
        [[1, 2], [3]]
        """
        return _built("GeneratorSource")(generator, output_signature)

    @staticmethod
    def range(*args: int) -> "Dataset":
        """int64 scalars ``range(start, stop, step)`` as Python's.

        >>> [int(x) for x in irf.data.Dataset.range(1, 7, 2)]
        [1, 3, 5]
        """
        return _Range(range(*[int(a) for a in args]))

    @staticmethod
    def zip(datasets: Any) -> "Dataset":
        """Elements of several datasets side by side (a tuple or dict of datasets), to the shortest.

        >>> [tuple(map(int, e)) for e in irf.data.Dataset.zip((irf.data.Dataset.range(2), irf.data.Dataset.range(5, 9)))]
        [(0, 5), (1, 6)]
        """
        return _built("Zip")(datasets)

    # -- transformations ---------------------------------------------------------------------------
    def map(self, fn: Callable, num_parallel_calls: int | None = None, deterministic: bool | None = None) -> "Dataset":
        """Apply ``fn`` to every element (a tuple element is unpacked into arguments).

        ``fn`` is either a plain Python function, run eagerly on irf.Tensors (irf ops and NumPy
        both work), or an ``irf.function``, traced once per element signature and run as a
        graph on its executor (``irf.function(fn, executor="ort")``). ``num_parallel_calls`` and
        ``deterministic`` are accepted for TensorFlow code and change nothing: elements are
        mapped in order in the pipeline's thread (``prefetch`` overlaps it with training).

        >>> [int(x) for x in irf.data.Dataset.range(3).map(lambda x: x * 10)]
        [0, 10, 20]
        """
        return _built("Map")(self, fn)

    def filter(self, predicate: Callable) -> "Dataset":
        """Keep the elements for which ``predicate`` gives a scalar True.

        >>> [int(x) for x in irf.data.Dataset.range(6).filter(lambda x: x % 2 == 0)]
        [0, 2, 4]
        """
        return _built("Filter")(self, predicate)

    def shuffle(self, buffer_size: int, seed: int | None = None, reshuffle_each_iteration: bool = True) -> "Dataset":
        """Shuffle with a buffer of ``buffer_size`` elements, as ``tf.data``: the buffer is
        filled first, then each output is drawn uniformly from the buffer and replaced by the
        next input (what is left at the end comes out in random order), so output k comes from
        the first k + buffer_size inputs (a buffer at least as large as the dataset gives a
        uniform permutation). The order of pass e is fixed by
        (seed, e); ``reshuffle_each_iteration=False`` repeats pass 0's order. ``seed=None``
        draws a seed once, from the operating system.

        >>> sorted(int(x) for x in irf.data.Dataset.range(5).shuffle(2, seed=0))
        [0, 1, 2, 3, 4]
        """
        return _Shuffle(self, buffer_size, seed, reshuffle_each_iteration)

    def batch(self, batch_size: int, drop_remainder: bool = False) -> "Dataset":
        """Stack ``batch_size`` consecutive elements component by component; the last batch
        is smaller unless ``drop_remainder``. Components must agree in shape (else ShapeError:
        use ``padded_batch`` or ``ragged_batch``).

        >>> [x.shape for x in irf.data.Dataset.range(5).batch(2)]
        [(2,), (2,), (1,)]
        """
        return _built("Batch")(self, batch_size, drop_remainder)

    def padded_batch(self, batch_size: int, padded_shapes: Any = None, padding_values: Any = None,
                     drop_remainder: bool = False) -> "Dataset":
        """Batch elements of different shapes by padding each component at the end of every
        axis: to ``padded_shapes`` (None dims: the longest in the batch; default all None),
        with ``padding_values`` (default 0).

        >>> ds = irf.data.Dataset.from_generator(lambda: iter([np.array([1, 2]), np.array([3])]))
        >>> next(iter(ds.padded_batch(2))).numpy().tolist()
        [[1, 2], [3, 0]]
        """
        return _built("PaddedBatch")(self, batch_size, padded_shapes, padding_values, drop_remainder)

    def ragged_batch(self, batch_size: int, drop_remainder: bool = False) -> "Dataset":
        """Batch elements of different lengths: each component of rank >= 1 becomes an
        ``irf.ragged.RaggedTensor`` (its first axis ragged); scalars are stacked.

        >>> ds = irf.data.Dataset.from_generator(lambda: iter([np.array([1, 2]), np.array([3])]))
        >>> next(iter(ds.ragged_batch(2))).to_list()
        [[1, 2], [3]]
        """
        return _built("RaggedBatch")(self, batch_size, drop_remainder)

    def unbatch(self) -> "Dataset":
        """Split every element along its first axis (the inverse of ``batch``).

        >>> [int(x) for x in irf.data.Dataset.range(4).batch(3).unbatch()]
        [0, 1, 2, 3]
        """
        return _built("Unbatch")(self)

    def repeat(self, count: int | None = None) -> "Dataset":
        """Repeat the dataset ``count`` times (None or -1: forever); each repetition is a new pass.

        >>> [int(x) for x in irf.data.Dataset.range(2).repeat(2)]
        [0, 1, 0, 1]
        """
        return _Repeat(self, -1 if count is None else int(count))

    def take(self, count: int) -> "Dataset":
        """The first ``count`` elements (-1: all).

        >>> [int(x) for x in irf.data.Dataset.range(5).take(2)]
        [0, 1]
        """
        return _Take(self, int(count))

    def skip(self, count: int) -> "Dataset":
        """All but the first ``count`` elements (-1: skip all).

        >>> [int(x) for x in irf.data.Dataset.range(5).skip(3)]
        [3, 4]
        """
        return _Skip(self, int(count))

    def enumerate(self, start: int = 0) -> "Dataset":
        """Pairs (int64 index, element).

        >>> [(int(i), int(x)) for i, x in irf.data.Dataset.range(5, 7).enumerate()]
        [(0, 5), (1, 6)]
        """
        return Dataset.zip((Dataset.range(start, 2**62), self))

    def prefetch(self, buffer_size: int = AUTOTUNE) -> "Dataset":
        """Produce up to ``buffer_size`` elements ahead in a background thread, so loading
        overlaps the training step (AUTOTUNE: 8, refilled 4 at a time). Leaving a loop early stops the thread; an
        exception in the pipeline is raised in the consumer, at the element where it happened.

        >>> [int(x) for x in irf.data.Dataset.range(3).prefetch(2)]
        [0, 1, 2]
        """
        return _built("Prefetch")(self, _AUTOTUNE_PREFETCH if buffer_size == AUTOTUNE else int(buffer_size))

    def apply(self, transformation: Callable[["Dataset"], "Dataset"]) -> "Dataset":
        """``transformation(self)``, for chaining a function of datasets.

        >>> len(irf.data.Dataset.range(4).apply(lambda d: d.batch(2)))
        2
        """
        return transformation(self)

    def __repr__(self) -> str:
        n = self.cardinality()
        size = {INFINITE_CARDINALITY: "infinite", UNKNOWN_CARDINALITY: "unknown"}.get(n, str(n))
        return f"<irf.data.{type(self).__name__.lstrip('_')} cardinality={size}>"


def _check_count(value: int, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise IrflowError(f"{what} must be an int >= {minimum}, got {value!r}")
    return int(value)


# -- from_tensor_slices (the random-access source) --------------------------------------------------
class _TensorSlices(Dataset):
    def __init__(self, tensors: Any):
        if isinstance(tensors, Dataset):
            raise IrflowError("from_tensor_slices: got a Dataset; pass arrays (or a tuple / dict of arrays)")
        self._structure = st.to_numpy_element(tensors, "from_tensor_slices")
        self._leaves = st.flatten(self._structure)
        if not self._leaves:
            raise IrflowError("from_tensor_slices: got an empty structure")
        lengths = set()
        for i, leaf in enumerate(self._leaves):
            if st._is_ragged(leaf):
                raise IrflowError("from_tensor_slices: RaggedTensor components are not supported; "
                                  "slice its rows with from_generator or batch them with ragged_batch")
            if leaf.ndim == 0:
                raise ShapeError(f"from_tensor_slices: component {i} is a scalar; it needs an axis 0 to slice")
            lengths.add(leaf.shape[0])
        if len(lengths) != 1:
            raise ShapeError(f"from_tensor_slices: components differ in length along axis 0: {st.describe(self._structure)}")
        self._n = lengths.pop()
        self._single = type(self._structure) is np.ndarray

    def cardinality(self) -> int:
        return self._n

    def gather(self, index: Any) -> Any:
        """The element at an int, or the batch at an index array (one gather per component)."""
        if self._single:
            return self._structure[index]
        return st.unflatten_like(self._structure, [leaf[index] for leaf in self._leaves])

    def _iterator(self) -> Iterator[Any]:
        if self._single:
            yield from self._structure
            return
        for i in range(self._n):
            yield st.unflatten_like(self._structure, [leaf[i] for leaf in self._leaves])

    def _index_source(self):
        return self

    def _index_iterator(self):
        return iter(range(self._n))


class _Range(Dataset):
    """``Dataset.range``: lazy (``range(2**62)`` costs nothing) and random-access like slices."""

    def __init__(self, r: range):
        self._range = r

    def cardinality(self) -> int:
        return len(self._range)

    def gather(self, index: Any) -> Any:
        r = self._range
        return np.int64(r.start) + np.asarray(index, dtype=np.int64) * np.int64(r.step)

    def _iterator(self) -> Iterator[Any]:
        return map(np.int64, self._range)

    def _index_source(self):
        return self

    def _index_iterator(self):
        return iter(range(len(self._range)))


# -- shuffle -------------------------------------------------------------------------------------------
_DRAWS = 1024  # uniform draws made at once (one NumPy call) instead of one call per element


def shuffle_buffer(items: Iterator[Any], buffer_size: int, rng: np.random.Generator) -> Iterator[Any]:
    """tf.data's shuffle buffer over any iterator: fill the buffer, then each output is drawn
    uniformly from it and replaced by the next input; when the input ends, what is left
    comes out in a uniform random order (one permutation: the same law as drawing one by one)."""
    replace_rng, drain_rng = rng.spawn(2)
    buf = list(itertools.islice(items, buffer_size))
    draws, k = None, _DRAWS
    for item in items:
        if k == _DRAWS:
            draws, k = replace_rng.random(_DRAWS), 0
        i = int(draws[k] * len(buf))
        k += 1
        yield buf[i]
        buf[i] = item
    for j in drain_rng.permutation(len(buf)).tolist():
        yield buf[j]


def shuffle_order(items: list, buffer_size: int, rng: np.random.Generator) -> list:
    """``list(shuffle_buffer(iter(items), buffer_size, rng))`` for a finite list, in one loop
    without generator steps (the same draws: chunks of one stream concatenate to the stream)."""
    replace_rng, drain_rng = rng.spawn(2)
    replacements = max(0, len(items) - buffer_size)
    buf, out = items[:buffer_size], []
    if replacements:
        draws = replace_rng.random(-(-replacements // _DRAWS) * _DRAWS).tolist()
        append = out.append
        for k, item in enumerate(items[buffer_size:]):
            i = int(draws[k] * buffer_size)
            append(buf[i])
            buf[i] = item
    perm = drain_rng.permutation(len(buf))
    if type(buf) is list and buf == list(range(len(buf))) and not out:  # a full buffer of indices
        return perm.tolist()
    out.extend(buf[j] for j in perm.tolist())
    return out


class _Shuffle(Dataset):
    def __init__(self, input: Dataset, buffer_size: int, seed: int | None, reshuffle: bool):
        self._input = input
        self._buffer_size = _check_count(buffer_size, "shuffle: buffer_size")
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise IrflowError(f"shuffle: seed must be an int >= 0 or None, got {seed!r}")
        self._seed = int(seed)
        self._reshuffle = reshuffle
        self._epochs = itertools.count()

    def cardinality(self) -> int:
        return self._input.cardinality()

    def _rng(self) -> np.random.Generator:
        epoch = next(self._epochs) if self._reshuffle else 0
        return np.random.default_rng([self._seed, epoch])

    def _iterator(self):
        return shuffle_buffer(self._input._iterator(), self._buffer_size, self._rng())

    def _index_source(self):
        return self._input._index_source()

    def _index_iterator(self):
        if self._input.cardinality() >= 0:  # a finite pass: the whole order in one tight loop
            return iter(shuffle_order(list(self._input._index_iterator()), self._buffer_size, self._rng()))
        return shuffle_buffer(self._input._index_iterator(), self._buffer_size, self._rng())


# -- repeat / take / skip -----------------------------------------------------------------------------
class _Repeat(Dataset):
    def __init__(self, input: Dataset, count: int):
        if count < -1:
            raise IrflowError(f"repeat: count must be >= 0, or -1 / None for forever, got {count}")
        self._input, self._count = input, count

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if self._count == 0 or n == 0:
            return 0
        if self._count == -1:
            return INFINITE_CARDINALITY if n != UNKNOWN_CARDINALITY else UNKNOWN_CARDINALITY
        return n * self._count if n >= 0 else n

    def _passes(self, one_pass: Callable[[], Iterator[Any]]) -> Iterator[Any]:
        done = 0
        while self._count == -1 or done < self._count:
            empty = True
            for element in one_pass():
                empty = False
                yield element
            done += 1
            if empty:  # an empty input repeated forever is empty, not a hang (as tf.data)
                return

    def _iterator(self):
        return self._passes(self._input._iterator)

    def _index_source(self):
        return self._input._index_source()

    def _index_iterator(self):
        return self._passes(self._input._index_iterator)


class _Take(Dataset):
    def __init__(self, input: Dataset, count: int):
        self._input, self._count = input, count

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if self._count < 0:
            return n
        return min(n, self._count) if n >= 0 else (self._count if n == INFINITE_CARDINALITY else n)

    def _iterator(self):
        it = self._input._iterator()
        return it if self._count < 0 else itertools.islice(it, self._count)

    def _index_source(self):
        return self._input._index_source()

    def _index_iterator(self):
        it = self._input._index_iterator()
        return it if self._count < 0 else itertools.islice(it, self._count)


class _Skip(Dataset):
    def __init__(self, input: Dataset, count: int):
        self._input, self._count = input, count

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if self._count < 0:
            return 0 if n != INFINITE_CARDINALITY else n
        return max(n - self._count, 0) if n >= 0 else n

    def _iterator(self):
        if self._count < 0:
            return iter(())
        return itertools.islice(self._input._iterator(), self._count, None)

    def _index_source(self):
        return self._input._index_source()

    def _index_iterator(self):
        if self._count < 0:
            return iter(())
        return itertools.islice(self._input._index_iterator(), self._count, None)
