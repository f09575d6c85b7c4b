"""Ops that create tensors: shape_of, range, full, zeros, ones, full_like and constant.

None of them carries a gradient (``differentiable=False``): their outputs depend on their
inputs' shapes or on attributes only (``range`` with tensor bounds is treated as integer-like
index arithmetic, as in every framework). ``zeros_like`` / ``ones_like`` are declared with the
elementwise ops.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from irflow.errors import DTypeError, ShapeError
from irflow.ir.dtypes import DType, as_dtype, dtype_of_array
from irflow.ir.types import TensorType
from irflow.ops.common import bind
from irflow.ops.batching import LOOP, elementwise_rule
from irflow.ops.registry import Attr, defbatch, defop
from irflow.ops.shape import check_fill_value, as_int_tuple

# -- shape_of -------------------------------------------------------------------------------------

defop("shape_of", lambda x: TensorType(dtype=DType.int64, shape=(x.rank,)), differentiable=False, family="shape", storage=True)


@defbatch("shape_of")
def _shape_of_batch(inputs, dims, size):
    # every example has the same shape: the batched shape without the batch entry, unbatched
    x, d = inputs[0], dims[0]
    full = bind("shape_of", x)
    parts = [bind("slice", full, starts=(a,), ends=(b,), axes=(0,), steps=None)
             for a, b in ((0, d), (d + 1, x.type.rank)) if b > a]
    if not parts:  # a batch of scalars
        return bind("slice", full, starts=(0,), ends=(0,), axes=(0,), steps=None), None
    return (parts[0] if len(parts) == 1 else bind("concat", *parts, axis=0)), None


def shape_of(x):
    """The run-time shape of ``x`` as a 1-D int64 tensor.

    >>> irf.shape_of(irf.tensor(np.zeros((2, 3)))).numpy()
    array([2, 3])
    """
    return bind("shape_of", x)


# -- range --------------------------------------------------------------------------------------------

RANGE_INPUT_DTYPES = (DType.int16, DType.int32, DType.int64, DType.float16, DType.bfloat16, DType.float32, DType.float64)


def range_length(start: float, limit: float, delta: float) -> int:
    """ONNX Range's (and np.arange's) element count: max(ceil((limit - start) / delta), 0)."""
    return max(math.ceil((limit - start) / delta), 0)


def _range_rule(*inputs: TensorType | None, start, limit, delta, dtype) -> TensorType:
    if inputs:  # bounds are scalar tensors read at run time
        if len(inputs) != 3 or any(t is None for t in inputs):
            raise ShapeError(f"range: give all three of start, limit, delta as tensors, or none (got {len(inputs)})")
        if any(v is not None for v in (start, limit, delta)):
            raise ShapeError("range: bounds given both as tensors and as attributes")
        for t in inputs:
            if t.rank != 0:
                raise ShapeError(f"range: start, limit and delta must be scalars, got shapes {[t.shape for t in inputs]}")
        if len({t.dtype for t in inputs}) != 1:
            raise DTypeError(f"range: start, limit and delta differ in dtype ({', '.join(t.dtype.value for t in inputs)})")
        d = inputs[0].dtype
        if d not in RANGE_INPUT_DTYPES:
            raise DTypeError(f"range: tensor bounds must be one of {', '.join(t.value for t in RANGE_INPUT_DTYPES)}, got {d.value}")
        if dtype is not None and dtype != d:
            raise DTypeError(f"range: dtype {dtype.value} differs from the bounds' dtype {d.value}; cast the bounds")
        return TensorType(dtype=d, shape=(None,))
    if start is None or limit is None or delta is None or dtype is None:
        raise ShapeError("range: needs start, limit, delta and dtype attributes when it has no inputs")
    if delta == 0:
        raise ShapeError("range: delta must not be 0")
    if dtype is DType.bool:
        raise DTypeError("range: dtype bool is not a number type")
    if dtype.is_int and any(v != int(v) for v in (start, limit, delta)):
        raise DTypeError(f"range: bounds ({start}, {limit}, {delta}) are not integers, but dtype is {dtype.value}")
    return TensorType(dtype=dtype, shape=(range_length(start, limit, delta),))


defop("range", _range_rule, inputs=(0, 3), differentiable=False, family="shape", attrs={
    "start": Attr("float", default=None, optional=True),
    "limit": Attr("float", default=None, optional=True),
    "delta": Attr("float", default=None, optional=True),
    "dtype": Attr("dtype", default=None, optional=True),
})
# Batched tensor bounds give each example its own length: a data-dependent shape, so the
# batch runs in a loop (whose stacking then needs equal lengths, as a Python loop would).
defbatch("range", LOOP)


def range(start, limit=None, delta=1, dtype: Any = None):
    """``start, start + delta, ...`` up to ``limit`` (excluded), as ``np.arange``.

    With Python numbers the length is known statically (and ``dtype`` defaults to int64 for
    ints, float32 otherwise); with scalar tensors it is read at run time.

    >>> irf.range(5).numpy()
    array([0, 1, 2, 3, 4])
    >>> irf.range(0.0, 1.0, 0.25).numpy()
    array([0.  , 0.25, 0.5 , 0.75], dtype=float32)
    """
    if limit is None:
        start, limit = 0, start
    bounds = (start, limit, delta)
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in bounds):
        if dtype is None:
            dtype = "int64" if all(isinstance(v, (int, np.integer)) for v in bounds) else "float32"
        vals = [int(v) if isinstance(v, (int, np.integer)) else float(v) for v in bounds]
        return bind("range", start=vals[0], limit=vals[1], delta=vals[2], dtype=as_dtype(dtype))
    return bind("range", *bounds, dtype=None if dtype is None else as_dtype(dtype))


# -- full / zeros / ones / full_like ------------------------------------------------------------------

def _check_shape(op: str, shape: Sequence[int]) -> None:
    if any(d < 0 for d in shape):
        raise ShapeError(f"{op}: negative size in shape {shape}")


def _full_type(shape, value, dtype: DType) -> TensorType:
    _check_shape("full", shape)
    check_fill_value("full", value, dtype)
    return TensorType(dtype=dtype, shape=shape)


def _zeros_type(shape, dtype: DType) -> TensorType:
    _check_shape("zeros", shape)
    return TensorType(dtype=dtype, shape=shape)


def _ones_type(shape, dtype: DType) -> TensorType:
    _check_shape("ones", shape)
    return TensorType(dtype=dtype, shape=shape)


def _full_like_type(x: TensorType, value, dtype) -> TensorType:
    dtype = dtype or x.dtype
    check_fill_value("full_like", value, dtype)
    return TensorType(dtype=dtype, shape=x.shape)


_SHAPE_DTYPE = {"shape": Attr("ints"), "dtype": Attr("dtype", default=DType.float32)}
defop("full", _full_type, inputs=0, differentiable=False, family="shape",
      attrs={"shape": Attr("ints"), "value": Attr("float"), "dtype": Attr("dtype")})
defop("zeros", _zeros_type, inputs=0, differentiable=False, family="shape", attrs=dict(_SHAPE_DTYPE))
defop("ones", _ones_type, inputs=0, differentiable=False, family="shape", attrs=dict(_SHAPE_DTYPE))
defop("full_like", _full_like_type, inputs=1, differentiable=False, family="shape",
      attrs={"value": Attr("float"), "dtype": Attr("dtype", default=None, optional=True)})
defbatch("full_like", elementwise_rule("full_like"))  # the batched x's shape: the same fill per example
# full, zeros, ones and constant have no inputs, so they are never batched (vmap copies them).


def _scalar_dtype(value: Any) -> DType:
    if isinstance(value, (bool, np.bool_)):
        return DType.bool
    if isinstance(value, (int, np.integer)):
        return DType.int64
    return DType.float32


def _fill_value(value: Any) -> int | float:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    return int(value) if isinstance(value, (int, np.integer)) else float(value)


def full(shape: Sequence[int], value: Any, dtype: Any = None):
    """A tensor of ``shape`` filled with ``value`` (dtype: float32 for floats, int64 for ints,
    bool for bools, unless given).

    >>> irf.full((2,), 7).numpy()
    array([7, 7])
    """
    dtype = _scalar_dtype(value) if dtype is None else as_dtype(dtype)
    return bind("full", shape=as_int_tuple(shape, "full: shape"), value=_fill_value(value), dtype=dtype)


def zeros(shape: Sequence[int], dtype: Any = "float32"):
    """Zeros of a static ``shape``.

    >>> irf.zeros((2, 3)).shape
    (2, 3)
    """
    return bind("zeros", shape=as_int_tuple(shape, "zeros: shape"), dtype=as_dtype(dtype))


def ones(shape: Sequence[int], dtype: Any = "float32"):
    """Ones of a static ``shape``.

    >>> irf.ones((2,), "int32").numpy()
    array([1, 1], dtype=int32)
    """
    return bind("ones", shape=as_int_tuple(shape, "ones: shape"), dtype=as_dtype(dtype))


def full_like(x, value: Any, dtype: Any = None):
    """A tensor of ``x``'s run-time shape filled with ``value`` (dtype: ``x``'s unless given).

    >>> irf.full_like(irf.tensor([1.0, 2.0]), 0.5).numpy()
    array([0.5, 0.5], dtype=float32)
    """
    return bind("full_like", x, value=_fill_value(value), dtype=None if dtype is None else as_dtype(dtype))


# -- constant ----------------------------------------------------------------------------------------

def _constant_type(value: np.ndarray) -> TensorType:
    return TensorType(dtype=dtype_of_array(value), shape=value.shape)


defop("constant", _constant_type, inputs=0, attrs={"value": Attr("array")}, differentiable=False, family="shape", storage=True)


def constant(value: Any, dtype: Any = None):
    """A node producing the array ``value`` (NumPy rules for lists; Python floats give float32).

    >>> irf.constant([1, 2]).numpy()
    array([1, 2])
    """
    # a copy: the node must not change when the caller later writes into their array
    arr = np.array(value, dtype=None if dtype is None else as_dtype(dtype).numpy, copy=True)
    if dtype is None and arr.dtype == np.float64 and not isinstance(value, np.ndarray):
        arr = arr.astype(np.float32)  # as irf.tensor: Python floats default to float32
    return bind("constant", value=arr)


__all__ = ["shape_of", "range", "full", "zeros", "ones", "full_like", "constant"]
