"""TensorType: an element type and a shape whose dims are ints, symbols or unknown."""
from __future__ import annotations

from typing import Union

from pydantic import BaseModel, ConfigDict, field_validator

from irflow.ir.dtypes import DType

# A dim is a known size, a symbol (equal symbols mean equal sizes) or None (unknown).
Dim = Union[int, str, None]


class TensorType(BaseModel):
    """The type of a Value.

    >>> TensorType(dtype="float32", shape=("batch", 4))
    TensorType(float32['batch', 4])
    """

    model_config = ConfigDict(frozen=True)

    dtype: DType
    shape: tuple[Dim, ...]

    @field_validator("shape", mode="before")
    @classmethod
    def _dims_are_valid(cls, shape):
        # pydantic turns only ValueError into a ValidationError naming the field; a TypeError
        # (an int where a list belongs, in a hand-edited file) would escape as a bare TypeError.
        if isinstance(shape, (str, bytes, dict)) or not hasattr(shape, "__iter__"):
            raise ValueError(f"a shape must be a list of dims, got {type(shape).__name__} {shape!r}")
        shape = tuple(shape)
        for d in shape:
            if isinstance(d, bool) or not (d is None or isinstance(d, (int, str))):
                raise ValueError(f"a dim must be an int, a symbol (str) or None, got {d!r}")
            if isinstance(d, int) and d < 0:
                raise ValueError(f"a dim must not be negative, got {d}")
        return shape

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        """True when every dim is a known int."""
        return all(type(d) is int for d in self.shape)

    def __repr__(self) -> str:
        return f"TensorType({self})"

    def __str__(self) -> str:
        return f"{self.dtype.value}[{', '.join(repr(d) if isinstance(d, str) else str(d) for d in self.shape)}]"
