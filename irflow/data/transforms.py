"""Element-wise transformations: map, filter, unbatch."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from irflow.errors import IrflowError
from irflow.data import structure as st
from irflow.data.dataset import UNKNOWN_CARDINALITY, Dataset, builds


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", None) or getattr(fn, "name", None) or type(fn).__name__


@builds
class Map(Dataset):
    """``Dataset.map``: a plain Python function runs eagerly; an ``irf.function`` runs its graph
    (traced once per element signature) on its executor. Both get irf.Tensors."""

    def __init__(self, input: Dataset, fn: Callable):
        if not callable(fn):
            raise IrflowError(f"map: expected a function, got {type(fn).__name__}")
        self._input, self._fn = input, fn

    def cardinality(self) -> int:
        return self._input.cardinality()

    def _iterator(self) -> Iterator[Any]:
        fn, where = self._fn, f"map({_name(self._fn)})"
        for element in self._input._iterator():
            out = st.call_with_element(fn, element)
            if out is None:
                raise IrflowError(f"{where} returned None; a map function must return the new element")
            yield st.to_numpy_element(out, where)


@builds
class Filter(Dataset):
    """``Dataset.filter``: keep elements whose predicate is a scalar True."""

    def __init__(self, input: Dataset, predicate: Callable):
        if not callable(predicate):
            raise IrflowError(f"filter: expected a function, got {type(predicate).__name__}")
        self._input, self._predicate = input, predicate

    def cardinality(self) -> int:
        n = self._input.cardinality()
        return 0 if n == 0 else UNKNOWN_CARDINALITY

    def _iterator(self) -> Iterator[Any]:
        pred, where = self._predicate, f"filter({_name(self._predicate)})"
        for element in self._input._iterator():
            keep = st.call_with_element(pred, element)
            arr = np.asarray(keep._value if hasattr(keep, "_value") else keep)
            if arr.shape != () or arr.dtype != np.bool_:
                raise IrflowError(f"{where} must return a scalar bool, got {arr.dtype}{arr.shape}")
            if arr:
                yield element


@builds
class Unbatch(Dataset):
    """``Dataset.unbatch``: every element split along its first axis."""

    def __init__(self, input: Dataset):
        self._input = input

    def _iterator(self) -> Iterator[Any]:
        for element in self._input._iterator():
            leaves = st.flatten(element)
            if any(st._is_ragged(c) or c.ndim == 0 for c in leaves):
                raise IrflowError(f"unbatch: every component needs a first axis, got {st.describe(element)}")
            n = {c.shape[0] for c in leaves}
            if len(n) != 1:
                raise IrflowError(f"unbatch: components differ in length along axis 0: {st.describe(element)}")
            for i in range(n.pop()):
                yield st.unflatten_like(element, [c[i] for c in leaves]) if st.is_structure(element) else element[i]
