"""Element types of the IR and their NumPy counterparts.

bfloat16 has no NumPy builtin; ml_dtypes provides one (it is also what onnx uses).
"""
from __future__ import annotations

import enum

import ml_dtypes
import numpy as np

from irflow.errors import DTypeError


class DType(str, enum.Enum):
    """An IR element type. ``DType("float32")`` and ``DType.float32`` are the same member.

    >>> DType("float32").numpy
    dtype('float32')
    """

    float16 = "float16"
    bfloat16 = "bfloat16"
    float32 = "float32"
    float64 = "float64"
    int8 = "int8"
    int16 = "int16"
    int32 = "int32"
    int64 = "int64"
    uint8 = "uint8"
    bool = "bool"

    def __str__(self) -> str:  # print as "float32", not "DType.float32"
        return self.value

    @property
    def numpy(self) -> np.dtype:
        return _TO_NUMPY[self]

    @property
    def is_float(self) -> bool:
        return self in FLOAT_DTYPES

    @property
    def is_int(self) -> bool:
        return self in INT_DTYPES


FLOAT_DTYPES = frozenset({DType.float16, DType.bfloat16, DType.float32, DType.float64})
INT_DTYPES = frozenset({DType.int8, DType.int16, DType.int32, DType.int64, DType.uint8})

_TO_NUMPY: dict[DType, np.dtype] = {
    d: np.dtype(ml_dtypes.bfloat16) if d is DType.bfloat16 else np.dtype(d.value) for d in DType
}
_FROM_NUMPY: dict[np.dtype, DType] = {v: k for k, v in _TO_NUMPY.items()}


def as_dtype(x: object) -> DType:
    """Turn a DType, its name, a NumPy dtype or a NumPy scalar type into a DType.

    >>> as_dtype(np.float32), as_dtype("int64")
    (<DType.float32: 'float32'>, <DType.int64: 'int64'>)
    """
    if isinstance(x, DType):
        return x
    if isinstance(x, str):
        try:
            return DType(x)
        except ValueError:
            raise DTypeError(f"unknown dtype {x!r}; known: {', '.join(d.value for d in DType)}") from None
    try:
        return _FROM_NUMPY[np.dtype(x)]
    except (KeyError, TypeError):
        raise DTypeError(f"dtype {x!r} is not an irflow dtype; known: {', '.join(d.value for d in DType)}") from None


def dtype_of_array(a: np.ndarray) -> DType:
    """The DType of a NumPy array, with a clear error for dtypes irflow does not have."""
    try:
        return _FROM_NUMPY[a.dtype]
    except KeyError:
        raise DTypeError(f"arrays of dtype {a.dtype} are not supported by irflow") from None
