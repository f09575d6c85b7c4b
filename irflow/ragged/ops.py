"""Making ragged tensors and computing with them; each function is built from irflow ops."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from irflow.errors import DTypeError, IrflowError, ShapeError
from irflow.frontends.eager import _wrap
from irflow.frontends.spec import TensorSpec
from irflow.ir.dtypes import as_dtype
from irflow.ops.dispatch import bind
from irflow.ragged.tensor import (RaggedTensor, _array, _as_part, _check_same_rows, _is_symbolic, from_row_lengths,
                                  from_row_splits, to_tensor)


# -- making them -----------------------------------------------------------------------------------
def constant(pylist: Any, dtype: Any = None) -> RaggedTensor:
    """A RaggedTensor from nested Python lists: rows of different lengths, each row a list of
    scalars (or of equal-shape lists: inner dims). Python floats become float32, ints int64,
    strings stay a NumPy str array (``tf.ragged.constant``).

    >>> irf.ragged.constant([[1, 2, 3], [4]]).row_splits.numpy().tolist()
    [0, 3, 4]
    """
    if not isinstance(pylist, (list, tuple)):
        raise IrflowError(f"ragged.constant: expected a list of rows, got {type(pylist).__name__}")
    rows = []
    for i, row in enumerate(pylist):
        try:
            arr = np.asarray(row, dtype=None if dtype is None else as_dtype(dtype).numpy)
        except ValueError:  # NumPy refuses inhomogeneous nesting
            arr = np.empty(0, dtype=object)
        if arr.dtype.kind == "O":
            raise ShapeError(f"ragged.constant: row {i} is ragged inside; irflow supports one ragged dimension "
                             "(rows of equal-shape items)")
        if arr.ndim == 0:
            raise ShapeError(f"ragged.constant: row {i} is a scalar ({row!r}); every row must be a list")
        rows.append(arr)
    inner = {r.shape[1:] for r in rows if r.shape[0] > 0}
    if len(inner) > 1:
        raise ShapeError(f"ragged.constant: rows have items of different shapes {sorted(inner)}; only the row "
                         "lengths may differ")
    inner_shape = inner.pop() if inner else ()
    kinds = {r.dtype for r in rows if r.size}
    if dtype is not None:
        vdtype = as_dtype(dtype).numpy
    elif any(k.kind in "US" for k in kinds):
        vdtype = np.result_type(*[k for k in kinds if k.kind in "US"])
    else:
        vdtype = np.result_type(*kinds) if kinds else np.dtype(np.float32)
        if vdtype == np.float64 and not any(isinstance(r, np.ndarray) for r in pylist):
            vdtype = np.dtype(np.float32)  # Python floats default to float32, as irf.tensor
    values = np.concatenate([r.reshape((r.shape[0],) + inner_shape).astype(vdtype, copy=False) for r in rows]) \
        if rows else np.zeros((0,) + inner_shape, vdtype)
    lengths = np.array([r.shape[0] for r in rows], dtype=np.int64)
    splits = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return RaggedTensor(_as_part(values), _wrap(splits))


# -- computing with them ---------------------------------------------------------------------------
def map_flat_values(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> RaggedTensor:
    """``fn`` applied to the flat values of the RaggedTensor arguments (which must share their
    rows); the result keeps those rows (``tf.ragged.map_flat_values``).

    >>> irf.ragged.map_flat_values(lambda v: v * 2.0, irf.ragged.constant([[1.0], [2.0, 3.0]])).to_list()
    [[2.0], [4.0, 6.0]]
    """
    ragged = [a for a in list(args) + list(kwargs.values()) if isinstance(a, RaggedTensor)]
    if not ragged:
        raise IrflowError("map_flat_values: no RaggedTensor among the arguments")
    for other in ragged[1:]:
        _check_same_rows(ragged[0], other, "map_flat_values")
    unwrap = lambda a: a.values if isinstance(a, RaggedTensor) else a  # noqa: E731
    out = fn(*[unwrap(a) for a in args], **{k: unwrap(v) for k, v in kwargs.items()})
    return ragged[0].with_flat_values(out)


def gather(params: Any, indices: RaggedTensor, axis: int = 0) -> RaggedTensor:
    """``params`` rows picked by ragged ``indices``: a RaggedTensor with the same rows as
    ``indices`` and ``params.shape[1:]`` inner dims (an embedding lookup). ``irf.gather`` does
    the same when given a RaggedTensor.

    >>> table = irf.tensor(np.arange(6.0).reshape(3, 2))
    >>> irf.gather(table, irf.ragged.constant([[2], [0, 1]])).to_list()
    [[[4.0, 5.0]], [[0.0, 1.0], [2.0, 3.0]]]
    """
    if axis != 0:
        raise IrflowError(f"gather with ragged indices supports axis=0 only (a lookup of rows), got axis={axis}")
    if isinstance(indices.values, np.ndarray) and indices.values.dtype.kind in "US":
        raise DTypeError("gather: the ragged indices are strings; map them to ids first (map_flat_values)")
    return indices.with_flat_values(bind("gather", params, indices.values, axis=0))


def _row_axis(rt: RaggedTensor, axis: Any, what: str) -> int | None:
    rank = 2 + len(rt.values.shape) - 1
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        if len(axis) != 1:
            raise IrflowError(f"ragged {what}: reduce over one axis at a time, got axis={axis}")
        axis = axis[0]
    a = int(axis) + rank if int(axis) < 0 else int(axis)
    if not 0 <= a < rank:
        raise ShapeError(f"ragged {what}: axis {axis} is out of range for rank {rank}")
    if a == 0:
        raise IrflowError(f"ragged {what}: axis=0 (across rows) is not supported; reduce axis=1 (within each row)")
    return a


def _lengths_like_values(rt: RaggedTensor, dtype: Any, extra_dims: int) -> Any:
    """Row lengths cast to ``dtype``, with trailing 1-dims to broadcast against (nrows, *inner)."""
    lengths = bind("cast", rt.row_lengths(), dtype=dtype)
    return bind("expand_dims", lengths, axes=tuple(range(1, 1 + extra_dims))) if extra_dims else lengths


def _reduce(kind: str) -> Callable[..., Any]:
    segment = {"reduce_sum": "segment_sum", "reduce_max": "segment_max", "reduce_min": "segment_min",
               "reduce_mean": "segment_sum"}[kind]

    def reduce(rt: RaggedTensor, axis: Any = 1, keepdims: bool = False) -> Any:
        a = _row_axis(rt, axis, kind)
        if a is None:  # everything: the flat values hold every element
            return bind(kind, rt.values, axes=None, keepdims=False)
        if keepdims:
            raise IrflowError(f"ragged {kind}: keepdims=True is not supported")
        if a >= 2:  # an inner (dense) axis: the rows stay ragged
            return rt.with_flat_values(bind(kind, rt.values, axes=(a - 1,), keepdims=False))
        n = rt.nrows()
        args = (rt.values, rt.value_rowids()) + (() if isinstance(n, int) else (n,))
        total = bind(segment, *args, num_segments=n if isinstance(n, int) else None)
        if kind != "reduce_mean":
            return total
        if not rt.values.dtype.is_float:
            raise DTypeError(f"ragged reduce_mean: values must be float, got {rt.values.dtype.value}; cast first")
        # sum / max(length, 1), then NaN for empty rows (as TensorFlow), without a 0/0 warning
        extra = len(rt.values.shape) - 1
        lengths = _lengths_like_values(rt, rt.values.dtype, extra)
        mean = total / bind("maximum", lengths, bind("ones_like", lengths))
        empty = bind("equal", lengths, bind("zeros_like", lengths))
        nan = bind("full_like", mean, value=float("nan"), dtype=None)
        return bind("where", bind("broadcast_like", empty, mean) if extra else empty, nan, mean)

    reduce.__name__ = kind
    reduce.__doc__ = (f"``irf.{kind}`` of a RaggedTensor: axis=1 reduces within each row (a dense "
                      f"(nrows, *inner) result via {segment}); axis >= 2 reduces inner dims (still ragged); "
                      "axis=None reduces everything.\n\n"
                      f">>> irf.ragged.{kind}(irf.ragged.constant([[1.0, 3.0], [2.0]]), axis=1).numpy().tolist()\n"
                      f"{ {'reduce_sum': [4.0, 2.0], 'reduce_max': [3.0, 2.0], 'reduce_min': [1.0, 2.0], 'reduce_mean': [2.0, 2.0]}[kind]}")
    return reduce


reduce_sum = _reduce("reduce_sum")
reduce_mean = _reduce("reduce_mean")
reduce_max = _reduce("reduce_max")
reduce_min = _reduce("reduce_min")


# -- tracing: a RaggedTensor argument is two graph inputs -------------------------------------------
class RaggedTensorSpec:
    """The signature of a RaggedTensor argument of an ``irf.function`` (``tf.RaggedTensorSpec``):
    ``shape`` is ``(nrows, None, *inner)`` (nrows may be None), ``dtype`` the values' dtype.

    >>> spec = irf.ragged.RaggedTensorSpec((None, None, 4), "float32")
    >>> spec.component_specs()
    (TensorSpec(shape=(None, 4), dtype=float32), TensorSpec(shape=(None,), dtype=int64))
    """

    def __init__(self, shape: Any = (None, None), dtype: Any = "float32", row_splits_dtype: Any = "int64"):
        shape = tuple(shape)
        if len(shape) < 2 or shape[1] is not None:
            raise ShapeError(f"RaggedTensorSpec: shape must be (nrows, None, *inner), got {shape}")
        self.shape, self.dtype, self.row_splits_dtype = shape, as_dtype(dtype), as_dtype(row_splits_dtype)

    def component_specs(self) -> tuple[TensorSpec, TensorSpec]:
        n = self.shape[0]
        return (TensorSpec((None,) + self.shape[2:], self.dtype),
                TensorSpec((None if n is None else n + 1,), self.row_splits_dtype))

    def __repr__(self) -> str:
        return f"RaggedTensorSpec(shape={self.shape}, dtype={self.dtype.value})"


def _register_with_tracing() -> None:
    from irflow.frontends.trace import register_structure

    def parts(rt: RaggedTensor) -> tuple:
        if isinstance(rt.values, np.ndarray):
            raise DTypeError("irf.function: a RaggedTensor of strings cannot be a graph input; map it to ids first")
        return rt.values, rt.row_splits

    names = ("values", "row_splits")
    register_structure(RaggedTensor, parts, lambda p: RaggedTensor(*p), names)
    register_structure(RaggedTensorSpec, RaggedTensorSpec.component_specs, lambda p: RaggedTensor(*p), names)


def _register_with_ops() -> None:
    from irflow.ops.extension import register

    for name, fn in (("reduce_sum", reduce_sum), ("reduce_mean", reduce_mean), ("reduce_max", reduce_max),
                     ("reduce_min", reduce_min)):
        register(RaggedTensor, name, fn)
    register(RaggedTensor, "gather", gather)


_register_with_tracing()
_register_with_ops()

__all__ = ["RaggedTensor", "RaggedTensorSpec", "constant", "from_row_splits", "from_row_lengths", "map_flat_values",
           "gather", "reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "to_tensor"]
