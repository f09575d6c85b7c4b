"""``RaggedTensor``: rows of different lengths as flat ``values`` plus ``row_splits``.

Row i is ``values[row_splits[i]:row_splits[i + 1]]`` (``tf.RaggedTensor`` with one ragged
dimension, the second: shape ``(nrows, None, *values.shape[1:])``). Both parts are ordinary
tensors: eager ``irf.Tensor``s, or symbolic tensors inside a trace, where a RaggedTensor
argument of an ``irf.function`` becomes two graph inputs (values, then row_splits). Every
operation on it is built from ops (``gather``, ``segment_sum`` / ``segment_max``, ``cumsum``,
``scatter_nd``), so it traces, differentiates and exports to ONNX like dense code.

String values (tokens before a vocabulary lookup) are kept as a NumPy array of str: irflow
tensors have no string dtype, so they live on the host until ``map_flat_values`` turns them
into ids.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from irflow.errors import DTypeError, IrflowError, ShapeError
from irflow.frontends.eager import Tensor, _wrap
from irflow.ops.builder import SymbolicTensor
from irflow.ops.dispatch import bind


def _is_symbolic(x: Any) -> bool:
    return isinstance(x, SymbolicTensor)


def _as_part(x: Any) -> Any:
    """An eager Tensor, a symbolic tensor, or (strings) a NumPy str array."""
    if isinstance(x, (Tensor, SymbolicTensor)):
        return x
    if hasattr(x, "_value"):  # a Variable: read its value
        return _wrap(x._value)
    arr = np.asarray(x)
    if arr.dtype.kind in "US":
        return arr
    if arr.dtype.kind == "O":
        raise IrflowError("RaggedTensor: values must be a tensor, an array or a list of numbers or strings")
    return x if isinstance(x, Tensor) else Tensor(x)


def _array(x: Any) -> np.ndarray:
    return x if isinstance(x, np.ndarray) else x._value


class RaggedTensor:
    """Rows of different lengths: ``values`` (all rows, one after another) and ``row_splits``.

    Make one with ``irf.ragged.constant``, ``from_row_splits`` or ``from_row_lengths``.

    >>> rt = irf.ragged.constant([[1.0, 2.0], [], [3.0]])
    >>> rt.row_splits.numpy().tolist(), rt.to_list()
    ([0, 2, 2, 3], [[1.0, 2.0], [], [3.0]])
    """

    _irflow_ragged = True
    __slots__ = ("_values", "_row_splits", "_rowids")

    def __init__(self, values: Any, row_splits: Any, *, _rowids: Any = None):
        self._values = values
        self._row_splits = row_splits
        self._rowids = _rowids

    @classmethod
    def from_row_splits(cls, values: Any, row_splits: Any, validate: bool = True) -> "RaggedTensor":
        """``irf.ragged.from_row_splits`` (TensorFlow spells it as a class method too).

        >>> irf.ragged.RaggedTensor.from_row_splits([1, 2, 3], [0, 1, 3]).to_list()
        [[1], [2, 3]]
        """
        return from_row_splits(values, row_splits, validate)

    @classmethod
    def from_row_lengths(cls, values: Any, row_lengths: Any, validate: bool = True) -> "RaggedTensor":
        """``irf.ragged.from_row_lengths``.

        >>> irf.ragged.RaggedTensor.from_row_lengths([1, 2, 3], [2, 1]).to_list()
        [[1, 2], [3]]
        """
        return from_row_lengths(values, row_lengths, validate)

    # -- parts ------------------------------------------------------------------------------------
    @property
    def values(self) -> Any:
        """The rows' elements, concatenated: shape ``(nvals, *inner)``."""
        return self._values

    @property
    def flat_values(self) -> Any:
        """The same as ``values`` (irflow's ragged tensors have one ragged dimension)."""
        return self._values

    @property
    def row_splits(self) -> Any:
        """int64 offsets, one more than the rows: row i is ``values[row_splits[i]:row_splits[i+1]]``."""
        return self._row_splits

    @property
    def ragged_rank(self) -> int:
        return 1

    @property
    def is_symbolic(self) -> bool:
        return _is_symbolic(self._values) or _is_symbolic(self._row_splits)

    @property
    def dtype(self) -> Any:
        return self._values.dtype

    @property
    def shape(self) -> tuple:
        """``(nrows, None, *inner)``; nrows is None when only known at run time."""
        n = self._row_splits.shape[0]
        return ((n - 1) if isinstance(n, int) else None, None) + tuple(self._values.shape[1:])

    def nrows(self) -> Any:
        """The number of rows: an int when known, else a scalar int64 tensor."""
        n = self._row_splits.shape[0]
        if isinstance(n, int):
            return n - 1
        return bind("gather", bind("shape_of", self._row_splits), np.asarray(0), axis=0) - 1

    def _nvals(self) -> Any:
        n = self._values.shape[0]
        if isinstance(n, int):
            return n
        return bind("gather", bind("shape_of", self._values), np.asarray(0), axis=0)

    def row_lengths(self) -> Any:
        """int64 length of every row: ``row_splits[1:] - row_splits[:-1]``.

        >>> irf.ragged.constant([[1, 2], [], [3]]).row_lengths().numpy().tolist()
        [2, 0, 1]
        """
        s = self._row_splits
        if not _is_symbolic(s):
            return _wrap(np.diff(_array(s)))
        return bind("slice", s, starts=(1,), ends=(2**62,)) - bind("slice", s, starts=(0,), ends=(-1,))

    def value_rowids(self) -> Any:
        """The row of every value (int64): what segment reductions group by.

        >>> irf.ragged.constant([[1, 2], [], [3]]).value_rowids().numpy().tolist()
        [0, 0, 2]
        """
        if self._rowids is None:
            self._rowids = _rowids(self)
        return self._rowids

    def with_flat_values(self, new_values: Any) -> "RaggedTensor":
        """The same rows around new values (with the same first dim).

        >>> irf.ragged.constant([[1.0], [2.0, 3.0]]).with_flat_values(irf.tensor([4.0, 5.0, 6.0])).to_list()
        [[4.0], [5.0, 6.0]]
        """
        new_values = _as_part(new_values)
        if len(new_values.shape) == 0:
            raise ShapeError("RaggedTensor: new values must have a first axis (one entry per value)")
        old, new = self._values.shape[0], new_values.shape[0]
        if isinstance(old, int) and isinstance(new, int) and old != new:
            raise ShapeError(f"RaggedTensor: new values have {new} rows, the row_splits describe {old} values")
        return RaggedTensor(new_values, self._row_splits, _rowids=self._rowids)

    # -- conversions (eager) ----------------------------------------------------------------------
    def _eager(self, what: str) -> None:
        if self.is_symbolic:
            raise IrflowError(f"RaggedTensor.{what} needs concrete values; inside irf.function use to_tensor()")

    def to_list(self) -> list:
        """The rows as nested Python lists.

        >>> irf.ragged.constant([["a", "b"], ["c"]]).to_list()
        [['a', 'b'], ['c']]
        """
        self._eager("to_list()")
        v, s = _array(self._values), _array(self._row_splits)
        return [v[s[i]:s[i + 1]].tolist() for i in range(len(s) - 1)]

    def numpy(self) -> np.ndarray:
        """The rows as a 1-D object array of NumPy arrays (as ``tf.RaggedTensor.numpy``)."""
        self._eager("numpy()")
        v, s = _array(self._values), _array(self._row_splits)
        out = np.empty(len(s) - 1, dtype=object)
        for i in range(len(s) - 1):
            out[i] = v[s[i]:s[i + 1]]
        return out

    def __len__(self) -> int:
        n = self.shape[0]
        if n is None:
            raise IrflowError("len() of a RaggedTensor whose number of rows is known only at run time; use nrows()")
        return n

    def __getitem__(self, i: int) -> Any:
        """Row ``i`` (an int, negatives from the end) as a tensor."""
        self._eager("[i]")
        n = len(self)
        if not isinstance(i, (int, np.integer)) or not -n <= i < n:
            raise IrflowError(f"RaggedTensor: index {i!r} is not a row index for {n} rows (slices are not supported)")
        i = int(i) % n
        s = _array(self._row_splits)
        v = self._values
        return v[s[i]:s[i + 1]] if isinstance(v, np.ndarray) else v[int(s[i]):int(s[i + 1])]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def to_tensor(self, default_value: Any = 0) -> Any:
        """A dense ``(nrows, longest row, *inner)`` tensor, short rows filled with ``default_value``.

        >>> irf.ragged.constant([[1, 2], [], [3]]).to_tensor(-1).numpy().tolist()
        [[1, 2], [-1, -1], [3, -1]]
        """
        return to_tensor(self, default_value)

    def __repr__(self) -> str:
        if self.is_symbolic:
            return f"<irf.RaggedTensor symbolic shape={self.shape} values={self._values!r}>"
        return f"<irf.RaggedTensor {self.to_list()}>"

    # -- arithmetic on the values (same rows) -----------------------------------------------------
    def _binary(self, other: Any, fn: Callable[[Any, Any], Any], name: str) -> "RaggedTensor":
        if isinstance(other, RaggedTensor):
            _check_same_rows(self, other, name)
            other = other._values
        elif len(getattr(other, "shape", ())) > 0:
            raise ShapeError(f"RaggedTensor {name}: the other operand must be a scalar or a RaggedTensor with the same rows, "
                             f"got shape {other.shape}")
        return self.with_flat_values(fn(self._values, other))

    def __add__(self, o): return self._binary(o, lambda a, b: a + b, "+")
    def __radd__(self, o): return self._binary(o, lambda a, b: b + a, "+")
    def __sub__(self, o): return self._binary(o, lambda a, b: a - b, "-")
    def __rsub__(self, o): return self._binary(o, lambda a, b: b - a, "-")
    def __mul__(self, o): return self._binary(o, lambda a, b: a * b, "*")
    def __rmul__(self, o): return self._binary(o, lambda a, b: b * a, "*")
    def __truediv__(self, o): return self._binary(o, lambda a, b: a / b, "/")
    def __neg__(self): return self.with_flat_values(-self._values)


def _check_same_rows(a: RaggedTensor, b: RaggedTensor, what: str) -> None:
    if a._row_splits is b._row_splits:
        return
    if not a.is_symbolic and not b.is_symbolic:
        if not np.array_equal(_array(a._row_splits), _array(b._row_splits)):
            raise ShapeError(f"RaggedTensor {what}: the operands have different rows "
                             f"(row_splits {_array(a._row_splits).tolist()} vs {_array(b._row_splits).tolist()})")
        return
    raise ShapeError(f"RaggedTensor {what}: symbolic operands must share one row_splits tensor")


def _rowids(rt: RaggedTensor) -> Any:
    """The row of every value, from row_splits."""
    s = rt._row_splits
    if not _is_symbolic(s):
        splits = _array(s)
        return _wrap(np.repeat(np.arange(len(splits) - 1, dtype=np.int64), np.diff(splits)))
    # In a graph: count the interior splits at or below each position (a histogram of the
    # splits by segment_sum, then a running sum). An empty row repeats a split and so skips
    # its id; the histogram has one extra bin for splits equal to nvals (empty trailing rows).
    s64 = s if s.dtype.value == "int64" else bind("cast", s, dtype="int64")
    interior = bind("slice", s64, starts=(1,), ends=(-1,))
    nvals = rt._nvals()
    bins = nvals + 1 if isinstance(nvals, int) else nvals + np.int64(1)
    marks = bind("segment_sum", bind("ones_like", interior), interior,
                 *(() if isinstance(bins, int) else (bins,)), num_segments=bins if isinstance(bins, int) else None)
    counts = bind("cumsum", marks, axis=0)
    return bind("slice", counts, starts=(0,), ends=(-1,))


# -- factories and to_tensor (here, beside the class whose methods call them) ------------------
def from_row_splits(values: Any, row_splits: Any, validate: bool = True) -> RaggedTensor:
    """Rows ``values[row_splits[i]:row_splits[i + 1]]``; splits start at 0, never decrease and end
    at len(values) (checked on concrete values when ``validate``).

    >>> irf.ragged.from_row_splits(np.arange(5.0), [0, 2, 2, 5]).to_list()
    [[0.0, 1.0], [], [2.0, 3.0, 4.0]]
    """
    values = _as_part(values)
    if isinstance(row_splits, (list, tuple)):
        row_splits = np.asarray(row_splits, dtype=np.int64)
    splits = row_splits if _is_symbolic(row_splits) else _as_part(row_splits)
    if getattr(splits.dtype, "value", None) not in ("int32", "int64"):
        raise DTypeError(f"ragged: row_splits must be int32 or int64, got {splits.dtype}")
    if len(splits.shape) != 1:
        raise ShapeError(f"ragged: row_splits must be 1-D, got shape {splits.shape}")
    if len(values.shape) == 0:
        raise ShapeError("ragged: values must have a first axis (one entry per value), got a scalar")
    if validate and not _is_symbolic(splits) and not _is_symbolic(values):
        s = _array(splits)
        if s.size == 0 or s[0] != 0 or np.any(np.diff(s) < 0) or s[-1] != values.shape[0]:
            raise ShapeError(f"ragged: row_splits {s.tolist()} must start at 0, never decrease and end at the "
                             f"number of values ({values.shape[0]})")
    return RaggedTensor(values, splits)


def from_row_lengths(values: Any, row_lengths: Any, validate: bool = True) -> RaggedTensor:
    """Rows of the given lengths, cut from ``values`` in order.

    >>> irf.ragged.from_row_lengths(np.arange(4), [1, 0, 3]).to_list()
    [[0], [], [1, 2, 3]]
    """
    if _is_symbolic(row_lengths):
        lengths = row_lengths if row_lengths.dtype.value == "int64" else bind("cast", row_lengths, dtype="int64")
        splits = bind("cumsum", bind("pad", lengths, pads=(1, 0), mode="constant", value=0), axis=0)
        return from_row_splits(values, splits, validate=False)
    lengths = np.asarray(_array(_as_part(row_lengths)) if not isinstance(row_lengths, (list, tuple)) else row_lengths,
                         dtype=np.int64)
    if validate and np.any(lengths < 0):
        raise ShapeError(f"ragged: row_lengths {lengths.tolist()} must be >= 0")
    return from_row_splits(values, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), validate)


def to_tensor(rt: RaggedTensor, default_value: Any = 0) -> Any:
    """A dense ``(nrows, longest row, *inner)`` tensor; short rows filled with ``default_value``.

    >>> irf.ragged.to_tensor(irf.ragged.constant([[1.0], [2.0, 3.0]])).numpy().tolist()
    [[1.0, 0.0], [2.0, 3.0]]
    """
    values = rt.values
    if isinstance(values, np.ndarray):  # strings: a host-side NumPy result
        s = _array(rt.row_splits)
        longest = int(np.diff(s).max()) if len(s) > 1 else 0
        out = np.full((len(s) - 1, longest) + values.shape[1:], default_value, dtype=values.dtype)
        for i in range(len(s) - 1):
            out[i, :s[i + 1] - s[i]] = values[s[i]:s[i + 1]]
        return out
    rowids = rt.value_rowids()
    splits = rt.row_splits if rt.row_splits.dtype.value == "int64" else bind("cast", rt.row_splits, dtype="int64")
    starts = bind("gather", splits, rowids, axis=0)
    if _is_symbolic(values) or _is_symbolic(splits):
        positions = bind("cumsum", bind("ones_like", rowids), axis=0, exclusive=True)
    else:
        positions = _wrap(np.arange(values.shape[0], dtype=np.int64))
    cols = positions - starts
    lengths = rt.row_lengths()
    if not _is_symbolic(lengths) and lengths.shape[0] == 0:
        longest = _wrap(np.int64(0).reshape(()))
    else:  # max over an empty tensor: pad one 0 length in front
        longest = bind("reduce_max", bind("pad", lengths, pads=(1, 0), mode="constant", value=0), axes=None, keepdims=False)
    n = rt.nrows()
    n_t = _wrap(np.asarray([n], dtype=np.int64)) if isinstance(n, int) else bind("expand_dims", n, axes=(0,))
    inner = bind("slice", bind("shape_of", values), starts=(1,), ends=(2**62,))
    shape = bind("concat", n_t, bind("expand_dims", longest, axes=(0,)), inner, axis=0)
    fill = np.asarray(default_value, dtype=values.dtype.numpy).reshape(1)
    dims = (n if isinstance(n, int) else None, None) + tuple(values.shape[1:])
    if not _is_symbolic(shape):
        dims = tuple(int(d) for d in shape.numpy())
    base = bind("full_dynamic", shape, value=fill, dims=dims)
    index = bind("stack", rowids, cols, axis=1)
    return bind("scatter_nd", base, index, values, reduction="none")
