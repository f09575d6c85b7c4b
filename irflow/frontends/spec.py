"""TensorSpec: the shape and dtype a traced function (or an exported model) is specialized to.

A dim is an int (that size only), a symbol such as ``"batch"`` (any size; equal symbols mean
equal sizes) or ``None`` (any size).

>>> TensorSpec((None, 4), "float32")
TensorSpec(shape=(None, 4), dtype=float32)
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from irflow.errors import ShapeError
from irflow.ir.dtypes import DType, as_dtype, dtype_of_array
from irflow.ir.types import TensorType


class TensorSpec:
    """The type of a tensor argument: ``TensorSpec(shape, dtype="float32", name=None)``.

    >>> f.get_graph(irf.TensorSpec(("batch", 784), "float32"))   # doctest: +SKIP
    """

    __slots__ = ("shape", "dtype", "name")

    def __init__(self, shape: Sequence[int | str | None], dtype: Any = "float32", name: str | None = None):
        shape = tuple(shape)
        for d in shape:
            if isinstance(d, bool) or not (d is None or isinstance(d, (int, str))) or (isinstance(d, int) and d < 0):
                raise ShapeError(f"TensorSpec: a dim must be an int >= 0, a symbol (str) or None, got {d!r} in {shape}")
        self.shape: tuple = shape
        self.dtype: DType = as_dtype(dtype)
        self.name = name

    @classmethod
    def from_value(cls, x: Any) -> "TensorSpec":
        """The exact spec of an array-like value (a Tensor, a Variable, an ndarray)."""
        arr = x if isinstance(x, np.ndarray) else np.asarray(x)
        return cls(arr.shape, dtype_of_array(arr))

    @property
    def type(self) -> TensorType:
        return TensorType(dtype=self.dtype, shape=self.shape)

    def key(self) -> tuple:
        """What the tracing cache compares: dtype and shape (symbols and None kept)."""
        return (self.dtype, self.shape)

    def accepts(self, dtype: DType, shape: tuple, bound: dict | None = None) -> str | None:
        """None if a value of ``dtype`` and ``shape`` fits this spec, else the reason it does not.

        ``bound`` collects sizes of symbols across several arguments (equal symbols, equal sizes).
        """
        if dtype is not self.dtype:
            return f"dtype {dtype.value} does not match {self.dtype.value}"
        if len(shape) != len(self.shape):
            return f"shape {tuple(shape)} does not match {self.shape} (rank {len(self.shape)})"
        for want, got in zip(self.shape, shape):
            if isinstance(want, int) and want != got:
                return f"shape {tuple(shape)} does not match {self.shape}"
            if isinstance(want, str) and bound is not None:
                seen = bound.setdefault(want, got)
                if seen != got and isinstance(seen, int) and isinstance(got, int):
                    return f"dim {want!r} is {seen} elsewhere but {got} here"
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TensorSpec) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        named = f", name={self.name!r}" if self.name else ""
        return f"TensorSpec(shape={self.shape}, dtype={self.dtype.value}{named})"

