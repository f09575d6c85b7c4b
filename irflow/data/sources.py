"""Dataset sources besides ``from_tensor_slices``: ``from_generator`` and ``zip``."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from irflow.errors import DTypeError, IrflowError, ShapeError
from irflow.frontends.spec import TensorSpec
from irflow.ir.dtypes import dtype_of_array
from irflow.data import structure as st
from irflow.data.dataset import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Dataset, builds


@builds
class GeneratorSource(Dataset):
    """``Dataset.from_generator``: a callable giving a fresh iterator for every pass."""

    def __init__(self, generator: Callable[[], Any], output_signature: Any):
        if not callable(generator):
            raise IrflowError(
                f"from_generator: generator must be a callable returning an iterator (it is called once per pass), "
                f"got a {type(generator).__name__}; wrap it: from_generator(lambda: my_iterable)")
        self._generator = generator
        self._signature = output_signature
        self._specs = None if output_signature is None else st.flatten(output_signature)
        if self._specs is not None and not all(isinstance(s, TensorSpec) for s in self._specs):
            raise IrflowError(f"from_generator: output_signature must hold irf.TensorSpec components, got {output_signature!r}")

    def _iterator(self) -> Iterator[Any]:
        for i, element in enumerate(self._generator()):
            if self._signature is None:
                yield st.to_numpy_element(element, f"from_generator: element {i}")
            else:
                yield self._conform(element, i)

    def _conform(self, element: Any, i: int) -> Any:
        where = f"from_generator: element {i}"
        if not st.same_structure(self._signature, element):
            raise IrflowError(f"{where} has structure {st.describe(element)}, output_signature says {self._signature!r}")
        out = []
        for c, spec in zip(st.flatten(element), self._specs):
            if type(c) is np.ndarray or isinstance(c, np.generic) or hasattr(c, "_value"):
                arr = st.to_array(c, where)
                if dtype_of_array(arr) != spec.dtype:
                    raise DTypeError(f"{where}: component of dtype {arr.dtype} where output_signature says {spec}")
            else:  # Python data takes the spec's dtype, as TensorFlow converts it
                arr = np.asarray(c, dtype=spec.dtype.numpy)
            why = spec.accepts(spec.dtype, arr.shape, {})
            if why is not None:
                raise ShapeError(f"{where}: {why} (output_signature {spec})")
            out.append(arr)
        return st.unflatten_like(self._signature, out)


@builds
class Zip(Dataset):
    """``Dataset.zip``: a tuple or dict of datasets read side by side, to the shortest."""

    def __init__(self, datasets: Any):
        parts = st.flatten(datasets)
        if not parts or not all(isinstance(d, Dataset) for d in parts):
            raise IrflowError(f"zip: expected a tuple or dict of Datasets, got {datasets!r}")
        self._datasets, self._parts = datasets, parts

    def cardinality(self) -> int:
        ns = [d.cardinality() for d in self._parts]
        known = [n for n in ns if n >= 0]
        if known:
            return min(known)
        return UNKNOWN_CARDINALITY if UNKNOWN_CARDINALITY in ns else INFINITE_CARDINALITY

    def _iterator(self) -> Iterator[Any]:
        for elements in zip(*[d._iterator() for d in self._parts]):
            yield st.unflatten_like(self._datasets, list(elements))
