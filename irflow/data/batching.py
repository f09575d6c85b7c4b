"""batch, padded_batch and ragged_batch."""
from __future__ import annotations

import itertools
from typing import Any, Iterator

import numpy as np

from irflow.errors import IrflowError, ShapeError
from irflow.data import structure as st
from irflow.data.dataset import INFINITE_CARDINALITY, Dataset, builds, _check_count


def _components(chunk: list, what: str) -> tuple[Any, list[list]]:
    """The first element (the structure) and, per component, its values across the chunk."""
    first = chunk[0]
    if not st.is_structure(first):
        return first, [chunk]
    columns = [[] for _ in st.flatten(first)]
    for element in chunk:
        leaves = st.flatten(element)
        if len(leaves) != len(columns) or not st.same_structure(first, element):
            raise IrflowError(f"{what}: elements differ in structure: {st.describe(first)} vs {st.describe(element)}")
        for col, leaf in zip(columns, leaves):
            col.append(leaf)
    return first, columns


def _check_no_ragged(column: list, what: str, i: int) -> None:
    if st._is_ragged(column[0]):
        raise IrflowError(f"{what}: component {i} is a RaggedTensor; batch its rows before making them ragged")


def stack_elements(chunk: list, what: str = "batch") -> Any:
    """Stack a list of elements component by component (ShapeError on differing shapes)."""
    first, columns = _components(chunk, what)
    out = []
    for i, col in enumerate(columns):
        _check_no_ragged(col, what, i)
        shapes = {c.shape for c in col}
        if len(shapes) > 1:
            raise ShapeError(f"{what}: component {i} has shapes {sorted(shapes)} in one batch; "
                             "use padded_batch or ragged_batch for elements of different shapes")
        out.append(np.stack(col))
    return out[0] if not st.is_structure(first) else st.unflatten_like(first, out)


class _Batching(Dataset):
    def __init__(self, input: Dataset, batch_size: int, drop_remainder: bool, what: str):
        self._input = input
        self._n = _check_count(batch_size, f"{what}: batch_size")
        self._drop = bool(drop_remainder)
        self._what = what

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if n < 0:
            return n
        return n // self._n if self._drop else -(-n // self._n)

    def _chunks(self) -> Iterator[list]:
        it = self._input._iterator()
        while True:
            chunk = list(itertools.islice(it, self._n))
            if not chunk or (self._drop and len(chunk) < self._n):
                return
            yield chunk


@builds
class Batch(_Batching):
    def __init__(self, input: Dataset, batch_size: int, drop_remainder: bool):
        super().__init__(input, batch_size, drop_remainder, "batch")

    def _iterator(self) -> Iterator[Any]:
        source = self._input._index_source()
        if source is None:
            for chunk in self._chunks():
                yield stack_elements(chunk)
            return
        # The chain below is from_tensor_slices + shuffle/take/skip/repeat: one gather per batch.
        it = self._input._index_iterator()
        while True:
            idx = np.fromiter(itertools.islice(it, self._n), dtype=np.int64)
            if idx.size == 0 or (self._drop and idx.size < self._n):
                return
            yield source.gather(idx)


@builds
class PaddedBatch(_Batching):
    def __init__(self, input: Dataset, batch_size: int, padded_shapes: Any, padding_values: Any, drop_remainder: bool):
        super().__init__(input, batch_size, drop_remainder, "padded_batch")
        self._padded_shapes, self._padding_values = padded_shapes, padding_values

    def _per_component(self, spec: Any, first: Any, n: int, what: str) -> list:
        if spec is None:
            return [None] * n
        if not st.is_structure(first):
            return [spec]
        if what == "padding_values" and not isinstance(spec, (tuple, dict)):
            return [spec] * n  # one padding value for every component
        leaves = st.flatten(spec) if what == "padding_values" else _shape_leaves(spec)
        if not isinstance(spec, (tuple, dict)) or len(leaves) != n:
            raise IrflowError(f"padded_batch: {what} {spec!r} does not match the element structure {st.describe(first)}")
        return leaves

    def _iterator(self) -> Iterator[Any]:
        for chunk in self._chunks():
            first, columns = _components(chunk, "padded_batch")
            shapes = self._per_component(self._padded_shapes, first, len(columns), "padded_shapes")
            values = self._per_component(self._padding_values, first, len(columns), "padding_values")
            out = [self._pad(col, shape, value, i) for i, (col, shape, value) in enumerate(zip(columns, shapes, values))]
            yield out[0] if not st.is_structure(first) else st.unflatten_like(first, out)

    def _pad(self, col: list, shape: Any, value: Any, i: int) -> np.ndarray:
        _check_no_ragged(col, "padded_batch", i)
        rank = col[0].ndim
        if any(c.ndim != rank for c in col):
            raise ShapeError(f"padded_batch: component {i} has ranks {sorted({c.ndim for c in col})} in one batch")
        longest = [max(c.shape[a] for c in col) for a in range(rank)]
        if shape is None:
            target = longest
        else:
            shape = tuple(shape)
            if len(shape) != rank:
                raise ShapeError(f"padded_batch: padded shape {shape} of component {i} has rank {len(shape)}, elements have rank {rank}")
            target = [m if d is None or d == -1 else int(d) for d, m in zip(shape, longest)]
            for a, (t, m) in enumerate(zip(target, longest)):
                if m > t:
                    raise ShapeError(f"padded_batch: component {i} has size {m} on axis {a}, larger than the padded shape {shape}")
        fill = 0 if value is None else (value._value if hasattr(value, "_value") else value)
        out = np.full((len(col), *target), fill, dtype=col[0].dtype)
        for j, c in enumerate(col):
            if c.dtype != out.dtype:
                raise IrflowError(f"padded_batch: component {i} has dtypes {c.dtype} and {out.dtype} in one batch")
            out[(j, *[slice(0, d) for d in c.shape])] = c
        return out


def _shape_leaves(spec: Any) -> list:
    """Flatten a padded_shapes structure whose leaves are shapes (tuples / lists of dims)."""
    if isinstance(spec, dict):
        return [s for v in spec.values() for s in _shape_leaves(v)]
    if isinstance(spec, tuple) and spec and all(isinstance(v, (tuple, list, dict)) for v in spec):
        return [s for v in spec for s in _shape_leaves(v)]
    return [spec]


@builds
class RaggedBatch(_Batching):
    def __init__(self, input: Dataset, batch_size: int, drop_remainder: bool):
        super().__init__(input, batch_size, drop_remainder, "ragged_batch")

    def _iterator(self) -> Iterator[Any]:
        from irflow.ragged import RaggedTensor

        for chunk in self._chunks():
            first, columns = _components(chunk, "ragged_batch")
            out = []
            for i, col in enumerate(columns):
                _check_no_ragged(col, "ragged_batch", i)
                if col[0].ndim == 0:
                    out.append(np.stack(col))
                    continue
                inner = {c.shape[1:] for c in col}
                if len(inner) > 1:
                    raise ShapeError(f"ragged_batch: component {i} differs in its inner dims {sorted(inner)}; "
                                     "only the first axis may vary")
                lengths = np.array([c.shape[0] for c in col], dtype=np.int64)
                splits = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
                out.append(RaggedTensor.from_row_splits(np.concatenate(col), splits))
            yield out[0] if not st.is_structure(first) else st.unflatten_like(first, out)


__all__ = ["Batch", "PaddedBatch", "RaggedBatch", "stack_elements", "INFINITE_CARDINALITY"]
