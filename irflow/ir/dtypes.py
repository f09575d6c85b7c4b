"""Element types of the IR and their NumPy counterparts.

bfloat16 and the storage-only dtypes (below) have no NumPy builtin; ml_dtypes provides them (it
is also what onnx uses). ml_dtypes costs 0.6-1 s to import, so it is imported on the first use
of one of them (``DType.bfloat16.numpy``, or an array of such a dtype, which means ml_dtypes is
already loaded).

Storage-only dtypes (``STORAGE_DTYPES``: float8 in five flavours, float4_e2m1fn, int4, uint4,
int2, uint2) are what quantized ONNX models keep weights and activations in. irflow holds them
(graph inputs, outputs, initializers, JSON, ONNX), moves them (identity, reshape-like ops,
transpose), converts them (cast, bit_cast, and so quantize/dequantize) and computes nothing
else on them: every other op raises a DTypeError naming itself (``OpDef.storage``).
"""
from __future__ import annotations

import enum
import sys

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
    uint16 = "uint16"
    uint32 = "uint32"
    uint64 = "uint64"
    bool = "bool"
    # storage-only (ml_dtypes names): no arithmetic, see the module docstring
    float8_e4m3fn = "float8_e4m3fn"
    float8_e4m3fnuz = "float8_e4m3fnuz"
    float8_e5m2 = "float8_e5m2"
    float8_e5m2fnuz = "float8_e5m2fnuz"
    float8_e8m0fnu = "float8_e8m0fnu"
    float4_e2m1fn = "float4_e2m1fn"
    int4 = "int4"
    uint4 = "uint4"
    int2 = "int2"
    uint2 = "uint2"

    def __str__(self) -> str:  # print as "float32", not "DType.float32"
        return self.value

    @property
    def numpy(self) -> np.dtype:
        try:
            return _TO_NUMPY[self]
        except KeyError:  # an ml_dtypes dtype before ml_dtypes was loaded
            _load_ml_dtypes()
            return _TO_NUMPY[self]

    @property
    def is_float(self) -> bool:
        return self in FLOAT_DTYPES

    @property
    def is_int(self) -> bool:
        return self in INT_DTYPES

    @property
    def is_unsigned(self) -> bool:
        return self in UNSIGNED_DTYPES

    @property
    def is_storage(self) -> bool:
        """A storage-only dtype: held, moved and cast, never computed on."""
        return self in STORAGE_DTYPES

    @property
    def bits(self) -> int:
        """The width of one element in bits (bool counts 8, as ONNX and NumPy store it)."""
        return _BITS[self]


FLOAT_DTYPES = frozenset({DType.float16, DType.bfloat16, DType.float32, DType.float64})
UNSIGNED_DTYPES = frozenset({DType.uint8, DType.uint16, DType.uint32, DType.uint64})
INT_DTYPES = frozenset({DType.int8, DType.int16, DType.int32, DType.int64}) | UNSIGNED_DTYPES
# float8 flavours whose Cast ``saturate`` attribute matters (e8m0 has its own rounding rule)
FLOAT8_DTYPES = frozenset({DType.float8_e4m3fn, DType.float8_e4m3fnuz, DType.float8_e5m2, DType.float8_e5m2fnuz})
STORAGE_DTYPES = FLOAT8_DTYPES | frozenset({DType.float8_e8m0fnu, DType.float4_e2m1fn, DType.int4, DType.uint4,
                                            DType.int2, DType.uint2})
_ML_DTYPES = STORAGE_DTYPES | {DType.bfloat16}  # the ones ml_dtypes provides

_BITS = {DType.float16: 16, DType.bfloat16: 16, DType.float32: 32, DType.float64: 64, DType.int8: 8,
         DType.int16: 16, DType.int32: 32, DType.int64: 64, DType.uint8: 8, DType.uint16: 16, DType.uint32: 32,
         DType.uint64: 64, DType.bool: 8, DType.float4_e2m1fn: 4, DType.int4: 4, DType.uint4: 4, DType.int2: 2,
         DType.uint2: 2}
_BITS.update({d: 8 for d in FLOAT8_DTYPES | {DType.float8_e8m0fnu}})

_TO_NUMPY: dict[DType, np.dtype] = {d: np.dtype(d.value) for d in DType if d not in _ML_DTYPES}
_FROM_NUMPY: dict[np.dtype, DType] = {v: k for k, v in _TO_NUMPY.items()}


def _load_ml_dtypes() -> None:
    import ml_dtypes

    for d in _ML_DTYPES:
        dt = np.dtype(getattr(ml_dtypes, d.value))
        _TO_NUMPY[d] = dt
        _FROM_NUMPY[dt] = d


def is_bfloat16(dt: np.dtype) -> bool:
    """True for ml_dtypes' bfloat16, without importing ml_dtypes (an array of it means it is loaded)."""
    return dt.kind == "V" and dt.itemsize == 2 and dt.name == "bfloat16"


def is_float16_or_bfloat16(dt: np.dtype) -> bool:
    """The 16-bit floats, which kernels widen to float32 for accuracy (and speed)."""
    return dt.itemsize == 2 and (dt.kind == "f" or is_bfloat16(dt))


def is_float_numpy(dt: np.dtype) -> bool:
    """A NumPy float dtype, bfloat16 included (not ml_dtypes' float8_e5m2, whose kind is "f"
    too: NumPy's own floats are 2 bytes or more)."""
    return (dt.kind == "f" and dt.itemsize >= 2) or is_bfloat16(dt)


def _from_numpy(dt: np.dtype) -> DType:
    """_FROM_NUMPY[dt]; an unknown dtype while ml_dtypes is loaded may be one of its dtypes."""
    try:
        return _FROM_NUMPY[dt]
    except KeyError:
        if DType.bfloat16 in _TO_NUMPY or "ml_dtypes" not in sys.modules:
            raise
        _load_ml_dtypes()
        return _FROM_NUMPY[dt]


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
        return _from_numpy(np.dtype(x))
    except (KeyError, TypeError):
        raise DTypeError(f"dtype {x!r} is not an irflow dtype; known: {', '.join(d.value for d in DType)}") from None


def dtype_of_array(a: np.ndarray) -> DType:
    """The DType of a NumPy array, with a clear error for dtypes irflow does not have."""
    try:
        return _from_numpy(a.dtype)
    except KeyError:
        raise DTypeError(f"arrays of dtype {a.dtype} are not supported by irflow") from None
