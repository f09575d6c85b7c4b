"""Eager tensors: NumPy-backed, define-by-run.

The eager handler below is what ``bind`` calls when no graph is being built: it unwraps the
inputs, runs the op's NumPy kernel and wraps the result, building no IR objects. When a tape
records (``RECORDERS`` non-empty) each call is also appended to the tape as a light record.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from irflow.errors import DTypeError, IrflowError, ShapeError, UnsupportedOpError
from irflow.executors.numpy.kernels import KERNELS
from irflow.ir.dtypes import DType, as_dtype, dtype_of_array, is_float_numpy
from irflow.ir.types import TensorType
from irflow.ops.dispatch import set_eager_handler
from irflow.ops.operators import TensorOperators
from irflow.ops.registry import REGISTRY, get_op

# Active recorders (gradient tapes). Each has record(op, inputs, outputs, attrs).
RECORDERS: list = []


class ArrayBacked(TensorOperators):
    """What Tensor and Variable share: a NumPy array in ``_value``, read through these."""

    __slots__ = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def dtype(self) -> DType:
        return dtype_of_array(self._value)

    @property
    def ndim(self) -> int:
        return self._value.ndim

    def numpy(self) -> np.ndarray:
        """The value as a NumPy array (shared, not copied)."""
        return self._value

    def __array__(self, dtype=None, copy=None):
        return self._value if dtype is None else self._value.astype(dtype)


class Tensor(ArrayBacked):
    """An eager tensor wrapping a NumPy array.

    >>> t = irf.tensor(np.ones((2, 3), "float32")); (t * 2).numpy().sum()   # doctest: +SKIP
    12.0
    """

    __slots__ = ("_value", "__weakref__")

    def __init__(self, value: Any, dtype: Any = None):
        arr = np.asarray(value, dtype=as_dtype(dtype).numpy if dtype is not None else None)
        if arr.dtype == np.float64 and dtype is None and not isinstance(value, (np.ndarray, np.generic)):
            arr = arr.astype(np.float32)  # Python floats and lists default to float32, as PyTorch
        dtype_of_array(arr)
        self._value = arr


    def __repr__(self) -> str:
        body = np.array2string(self._value, separator=", ", prefix="irf.Tensor(")
        return f"irf.Tensor({body}, dtype={self.dtype.value}, shape={self.shape})"

    def __bool__(self) -> bool:
        return bool(scalar_value(self._value, "bool", "a tensor"))

    def __float__(self) -> float:
        return float(scalar_value(self._value, "float", "a tensor"))

    def __int__(self) -> int:
        return int(scalar_value(self._value, "int", "a tensor"))

    def __index__(self) -> int:
        if self._value.dtype.kind not in "iu":
            raise IrflowError(f"only integer tensors can be used as an index, not {self._value.dtype}")
        return int(scalar_value(self._value, "int", "a tensor"))

    def __len__(self) -> int:
        if self._value.ndim == 0:
            raise IrflowError("len() of a 0-d tensor")
        return len(self._value)

    def __iter__(self):
        """Rows along the first axis, as NumPy (a scalar cannot be iterated)."""
        if self._value.ndim == 0:
            raise IrflowError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self._value)))

    def __irflow_symbolic__(self, builder):
        """An eager tensor used while building a graph becomes a constant of that graph."""
        return builder.constant(self._value)


def scalar_value(arr: np.ndarray, what: str, owner: str) -> Any:
    """The one element of ``arr`` for bool()/float()/int(); IrflowError if it has several."""
    if arr.size != 1:
        raise IrflowError(
            f"{what}() of {owner} of shape {arr.shape} ({arr.size} elements) is ambiguous; "
            "reduce it first (irf.reduce_sum, irf.reduce_max, ...)"
        )
    return arr.reshape(()).item()


def _wrap(arr: np.ndarray) -> Tensor:
    t = object.__new__(Tensor)
    t._value = arr
    return t


def tensor(value: Any, dtype: Any = None) -> Tensor:
    """Make an eager Tensor from an array, a list or a scalar (Python floats become float32).

    >>> irf.tensor([1.0, 2.0]).dtype
    <DType.float32: 'float32'>
    """
    return Tensor(value, dtype)


def _scalar_array(x: Any, like: np.dtype | None) -> np.ndarray:
    if like is None:
        return np.asarray(x, dtype=np.float32 if isinstance(x, float) else (np.bool_ if isinstance(x, bool) else np.int64))
    if isinstance(x, float) and not is_float_numpy(like):
        raise DTypeError(f"Python float {x!r} cannot take the dtype {like} of the other operand; cast explicitly")
    return np.asarray(x, dtype=like)


def _unwrap(x: Any) -> Any:
    t = type(x)
    if t is Tensor:
        return x._value
    if t is np.ndarray:
        return x
    value = getattr(x, "_eager_value", None)  # Variables
    if value is not None:
        return value()
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x)
    if x is None:
        return None
    if hasattr(x, "builder"):
        raise IrflowError(f"symbolic tensor %{x.name} used outside the graph it belongs to")
    raise IrflowError(f"cannot use a {type(x).__name__} as a tensor")


def eager_bind(op: str, inputs: tuple, attrs: dict) -> Any:
    """Run ``op`` now on NumPy values; record on the active tapes.

    This is the hot path of eager code: plain type checks, no IR or pydantic objects.
    """
    kernel = KERNELS.get(op)
    if kernel is None:
        get_op(op)  # unknown op: UnsupportedOpError listing the known ones
        raise UnsupportedOpError(f"op '{op}' has no NumPy kernel")
    args = []
    scalars = False
    for x in inputs:
        t = type(x)
        if t is Tensor:
            args.append(x._value)
        elif t is float or t is int or t is bool:
            scalars = True
            args.append(x)
        else:
            args.append(_unwrap(x))
    if scalars:
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        like = _weak_dtype(arrays)
        args = [_scalar_array(a, like) if type(a) in (float, int, bool) else a for a in args]
    # The op's type rule judges each combination of input dtypes once (int inputs to exp,
    # bool + bool, int mixed with float, ...), so eager code raises what graph code raises;
    # later calls with the same dtypes cost one set lookup.
    n = len(args)
    if n == 1:
        a = args[0]
        key = (op, a.dtype if a is not None else None)
    elif n == 2:
        a, b = args
        key = (op, a.dtype if a is not None else None, b.dtype if b is not None else None)
    else:
        key = (op,) + tuple(a.dtype if a is not None else None for a in args)
    if attrs and "dtype" in attrs:  # the output dtype an attr asks for is judged too (zeros of int4)
        key = key + (attrs["dtype"],)
    if key not in _DTYPES_CHECKED:
        _check_types(op, args, attrs)
        _DTYPES_CHECKED.add(key)
    try:
        out = kernel(*args, **attrs)
    except IrflowError:
        raise
    except Exception as e:
        _check_types(op, args, attrs)  # a shape or dtype bug gets the type rule's message
        if type(e) is ZeroDivisionError and op in ("div", "mod"):  # what every executor raises
            from irflow.errors import integer_division_by_zero

            raise integer_division_by_zero("(eager)", op) from None
        shapes = ", ".join(f"{a.dtype}{list(a.shape)}" for a in args if a is not None)
        raise IrflowError(f"{op} failed on inputs ({shapes}): {type(e).__name__}: {e}") from None
    if type(out) is np.ndarray:
        result = object.__new__(Tensor)
        result._value = out
    elif type(out) is tuple:
        result = tuple(_wrap(np.asarray(o)) for o in out)
    else:
        result = _wrap(np.asarray(out))
    if CHECK_NUMERICS:
        _check_numerics(op, result)
    if RECORDERS:
        for r in RECORDERS:
            r.record(op, inputs, result, attrs)
    return result


# Set by irflow.debugging.enable_check_numerics(): every eager op checks its outputs.
CHECK_NUMERICS = False


def _check_numerics(op: str, result: Any) -> None:
    from irflow.errors import NumericsError

    for i, t in enumerate(result if type(result) is tuple else (result,)):
        a = t._value
        if (a.dtype.kind == "f" or a.dtype.name == "bfloat16") and not np.isfinite(a).all():
            kind = "NaN" if np.isnan(a).any() else "Inf"
            raise NumericsError(f"check_numerics: eager op {op} produced {kind} in output {i} {a.dtype}{list(a.shape)}")


# (op, *input dtypes) combinations whose dtypes the type rule has accepted.
_DTYPES_CHECKED: set[tuple] = set()


def _weak_dtype(arrays: list) -> np.dtype | None:
    non_bool = [a.dtype for a in arrays if a.dtype != np.bool_]
    if non_bool:
        return non_bool[0] if len(set(non_bool)) == 1 else np.result_type(*non_bool)
    return arrays[0].dtype if arrays else None


def _check_types(op: str, args: list, attrs: dict) -> None:
    opdef = REGISTRY[op]
    types = tuple(
        None if a is None else TensorType(dtype=dtype_of_array(a), shape=a.shape) for a in args
    )
    full = opdef.fill_attrs(attrs, op)
    try:
        opdef.infer_type(types, full)
    except (ShapeError, DTypeError) as e:
        shown = ", ".join(str(t) for t in types)
        raise type(e)(f"{op} with inputs ({shown}): {e}") from None


set_eager_handler(eager_bind)

from irflow.frontends import indexing  # noqa: E402,F401  (adds x[...] to Tensor, Variable and SymbolicTensor)
