"""Ops whose shape arguments are tensors read at run time (issue 17; see docs/frontends.md).

The static ops (``slice``, ``pad``, ``split``, ``tile``, ``topk``, ``one_hot``) take their
shape arguments as attributes; ONNX import emits these run-time forms only when an argument
is computed while the model runs. Each takes the argument as an INPUT, with ONNX's semantics:

- ``slice_dynamic(x, starts, ends[, axes[, steps]])``: ONNX Slice (negative bounds count from
  the end, bounds clamped, negative steps walk backwards).
- ``pad_dynamic(x, pads[, value[, axes]], mode)``: ONNX Pad with modes constant, reflect, edge
  and wrap; negative pads crop (constant mode only).
- ``split_dynamic(x, split, axis, num)``: ONNX Split by run-time sizes.
- ``tile_dynamic(x, repeats)``: ONNX Tile.
- ``topk_dynamic(x, k, axis, largest, sorted)``: ONNX TopK with a run-time K.
- ``one_hot_dynamic(indices, depth, axis, dtype)``: 0/1 one-hot with a run-time depth (ONNX
  OneHot's off/on values are applied by the importer with ordinary ops).

Result dims that depend on the run-time values are None; every other dim is kept. Gradients
with respect to the data input are written with IR ops (so they export too): the ops that copy
elements of ``x`` (slice, tile, pad in reflect/edge/wrap mode) send the cotangent back with
``scatter_add`` at the source positions (``common.scatter_back``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from irflow.errors import DTypeError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import TensorType
from irflow.ops.batching import LOOP_THIS, insert_axes, shift_axis
from irflow.ops.common import norm_axes, rank_of, scatter_back, to_front
from irflow.ops.dispatch import bind
from irflow.ops.registry import Attr, defbatch, defop, defvjp

_INDEX = (DType.int32, DType.int64)
PAD_MODES = ("constant", "reflect", "edge", "wrap")


def _check_1d(op: str, what: str, t: TensorType | None, dtypes=_INDEX) -> int | None:
    """A 1-D integer shape argument; returns its static length (None when symbolic)."""
    if t is None:
        return None
    if t.dtype not in dtypes or t.rank != 1:
        raise DTypeError(f"{op}: {what} must be a 1-D {' or '.join(d.value for d in dtypes)} tensor, got {t}")
    return t.shape[0] if isinstance(t.shape[0], int) else None


def _check_scalar(op: str, what: str, t: TensorType, dtypes=_INDEX) -> None:
    """A one-element argument (a scalar or a 1-D tensor of one element, as ONNX allows)."""
    if dtypes is not None and t.dtype not in dtypes:
        raise DTypeError(f"{op}: {what} must be {' or '.join(d.value for d in dtypes)}, got {t.dtype.value}")
    if t.rank > 1 or (t.rank == 1 and isinstance(t.shape[0], int) and t.shape[0] != 1):
        raise ShapeError(f"{op}: {what} must hold one value (a scalar or shape (1,)), got shape {t.shape}")


def _shift_run_time_axes(axes):
    """Run-time axes of one example -> the same axes with the batch in front (negative axes
    count from the end and stay; non-negative ones move up by one)."""
    one = np.ones((), dtype=axes.type.dtype.numpy)
    zero = np.zeros((), dtype=axes.type.dtype.numpy)
    return bind("where", bind("less", axes, zero), axes, bind("add", axes, one))


# -- slice_dynamic ------------------------------------------------------------------------------------

def _slice_dynamic_type(x: TensorType, starts: TensorType, ends: TensorType, axes: TensorType | None = None,
                        steps: TensorType | None = None) -> TensorType:
    count = _check_1d("slice_dynamic", "starts", starts)
    n_ends = _check_1d("slice_dynamic", "ends", ends)
    lengths = {v for v in (count, n_ends, _check_1d("slice_dynamic", "axes", axes), _check_1d("slice_dynamic", "steps", steps))
               if v is not None}
    if len(lengths) > 1:
        raise ShapeError(f"slice_dynamic: starts {starts}, ends {ends}, axes {axes} and steps {steps} differ in length")
    if count is not None and count > x.rank:
        raise ShapeError(f"slice_dynamic: {count} starts for an input of rank {x.rank} ({x.shape})")
    if axes is None and count is not None:  # the first `count` axes are sliced, the rest keep their dims
        return TensorType(dtype=x.dtype, shape=(None,) * count + tuple(x.shape[count:]))
    return TensorType(dtype=x.dtype, shape=(None,) * x.rank)


defop("slice_dynamic", _slice_dynamic_type, inputs=(3, 5), family="dynamic_shape",
      doc="ONNX Slice with starts, ends, axes and steps read at run time (clamped as ONNX says).")
@defvjp("slice_dynamic")
def _slice_dynamic_vjp(g, x, *args, out):
    return (scatter_back(g, x, lambda t: bind("slice_dynamic", t, *args)),) + (None,) * len(args)


@defbatch("slice_dynamic")
def _slice_dynamic_batch(inputs, dims, size):
    x, starts, ends, axes, steps = (list(inputs) + [None, None])[:5]
    if any(d is not None for d in dims[1:]):  # per-example bounds: a per-example shape
        return LOOP_THIS
    if axes is None:  # the default axes 0..len(starts)-1, one up past the batch
        count = bind("gather", bind("shape_of", starts), np.zeros((), np.int64), axis=0)
        axes = bind("range", np.ones((), np.int64), bind("add", count, np.ones((), np.int64)), np.ones((), np.int64))
    else:
        axes = _shift_run_time_axes(axes)
    return bind("slice_dynamic", to_front(x, dims[0]), starts, ends, axes, steps), 0


def slice_dynamic(x, starts, ends, axes=None, steps=None):
    """``x`` sliced as ONNX Slice by int tensors read at run time: ``starts``, ``ends`` and the
    optional ``axes`` (default: the first len(starts) axes) and ``steps`` (default 1).

    >>> irf.slice_dynamic(irf.tensor(np.arange(5.0)), np.array([-1]), np.array([-6]), None, np.array([-2])).numpy()
    array([4., 2., 0.])
    """
    return bind("slice_dynamic", x, starts, ends, axes, steps)


# -- pad_dynamic --------------------------------------------------------------------------------------

def _pad_dynamic_type(x: TensorType, pads: TensorType, value: TensorType | None = None, axes: TensorType | None = None,
                      *, mode: str) -> TensorType:
    if mode not in PAD_MODES:
        raise ShapeError(f"pad_dynamic: mode must be one of {PAD_MODES}, got {mode!r}")
    n = _check_1d("pad_dynamic", "pads", pads, (DType.int64,))
    k = _check_1d("pad_dynamic", "axes", axes)
    if value is not None:
        _check_scalar("pad_dynamic", "value", value, None)
        if value.dtype != x.dtype:
            raise DTypeError(f"pad_dynamic: value is {value.dtype.value} but x is {x.dtype.value}")
    if n is not None and (n % 2 or n != 2 * (x.rank if axes is None else (k if k is not None else n // 2))):
        raise ShapeError(f"pad_dynamic: pads of length {n} must hold a begin and an end for each of the "
                         f"{x.rank if axes is None else k} padded axes of {x.shape}")
    return TensorType(dtype=x.dtype, shape=(None,) * x.rank)


def _pad_dynamic_vjp(g, x, pads, *rest, out, mode):
    value, axes = (list(rest) + [None, None])[:2]
    if mode != "constant":  # every output cell copies a cell of x
        gx = scatter_back(g, x, lambda t: bind("pad_dynamic", t, pads, None, axes, mode=mode))
        return (gx, None) + (None,) * len(rest)
    # Constant mode: x's cells sit in the middle; padding by -pads cuts them out of g (and puts
    # zeros where a negative pad had cropped x). The value fills the other cells.
    gx = bind("reshape_like", bind("pad_dynamic", g, bind("neg", pads), None, axes, mode="constant"), x)
    gv = None
    if value is not None:
        gv = bind("sub", bind("reduce_sum", g, axes=None, keepdims=False), bind("reduce_sum", gx, axes=None, keepdims=False))
        gv = bind("reshape_like", gv, value)
    return (gx, None) + ((gv,) + (None,) * (len(rest) - 1) if rest else ())


defop("pad_dynamic", _pad_dynamic_type, inputs=(2, 4), family="dynamic_shape",
      attrs={"mode": Attr("str", default="constant")},
      doc="ONNX Pad with pads, constant value and axes read at run time; modes constant, reflect, edge, wrap.")
defvjp("pad_dynamic", _pad_dynamic_vjp)


@defbatch("pad_dynamic")
def _pad_dynamic_batch(inputs, dims, size, *, mode):
    x, pads, value, axes = (list(inputs) + [None, None])[:4]
    if any(d is not None for d in dims[1:]):  # per-example pads or fill value
        return LOOP_THIS
    r = rank_of(x, dims[0])
    # Name the padded axes explicitly (all of them by default), each moved past the batch.
    axes = np.arange(1, r + 1, dtype=np.int64) if axes is None else _shift_run_time_axes(axes)
    return bind("pad_dynamic", to_front(x, dims[0]), pads, value, axes, mode=mode), 0


def pad_dynamic(x, pads, value=None, axes=None, mode: str = "constant"):
    """Pad ``x`` as ONNX Pad by the int64 tensor ``pads`` read at run time (all begins, then all
    ends, for ``axes`` or every axis); ``value`` (a scalar tensor of x's dtype) fills in
    constant mode. Modes: "constant", "reflect", "edge", "wrap".

    >>> irf.pad_dynamic(irf.tensor([1.0, 2.0, 3.0]), np.array([2, 1]), mode="wrap").numpy()
    array([2., 3., 1., 2., 3., 1.], dtype=float32)
    """
    return bind("pad_dynamic", x, pads, value, axes, mode=mode)


# -- split_dynamic ------------------------------------------------------------------------------------

def _split_dynamic_type(x: TensorType, split: TensorType, *, axis: int, num: int) -> tuple[TensorType, ...]:
    if x.rank == 0:
        raise ShapeError("split_dynamic: cannot split a scalar")
    a = norm_axes(axis, x.rank, "split_dynamic")[0]
    n = _check_1d("split_dynamic", "split", split, (DType.int64,))
    if num < 1 or (n is not None and n != num):
        raise ShapeError(f"split_dynamic: num={num} outputs need a split tensor of {num} sizes, got {split}")
    part = TensorType(dtype=x.dtype, shape=x.shape[:a] + (None,) + x.shape[a + 1:])
    return (part,) * num


defop("split_dynamic", _split_dynamic_type, inputs=2, family="dynamic_shape",
      attrs={"axis": Attr("int", default=0), "num": Attr("int")},
      doc="ONNX Split by sizes read at run time; `num` outputs, each of unknown size along the axis.")
defvjp("split_dynamic", lambda g, x, split, *, out, axis, num: (
    bind("concat", *(g if isinstance(g, tuple) else (g,)), axis=axis), None))


@defbatch("split_dynamic")
def _split_dynamic_batch(inputs, dims, size, *, axis, num):
    (x, split), (d, ds) = inputs, dims
    if ds is not None:  # per-example sizes
        return LOOP_THIS
    outs = bind("split_dynamic", x, split, axis=shift_axis(axis, rank_of(x, d), d, "split_dynamic"), num=num)
    outs = outs if isinstance(outs, tuple) else (outs,)
    return outs, (d,) * len(outs)


def split_dynamic(x, split, axis: int = 0):
    """Split ``x`` along ``axis`` into parts of the sizes in the int64 tensor ``split`` (read at
    run time; its length must be static: it is the number of parts). Returns a tuple.

    >>> [p.numpy() for p in irf.split_dynamic(irf.tensor([1.0, 2.0, 3.0]), np.array([1, 2]))]
    [array([1.], dtype=float32), array([2., 3.], dtype=float32)]
    """
    n = split.shape[0] if hasattr(split, "shape") and len(split.shape) == 1 else None
    if not isinstance(n, int):
        raise ShapeError(f"split_dynamic: split must be a 1-D tensor of static length, got shape {getattr(split, 'shape', None)}")
    out = bind("split_dynamic", x, split, axis=int(axis), num=n)
    return out if isinstance(out, tuple) else (out,)


# -- tile_dynamic -------------------------------------------------------------------------------------

def _tile_dynamic_type(x: TensorType, repeats: TensorType) -> TensorType:
    n = _check_1d("tile_dynamic", "repeats", repeats, (DType.int64,))
    if n is not None and n != x.rank:
        raise ShapeError(f"tile_dynamic: repeats must hold {x.rank} counts (one per axis of {x.shape}), it holds {n}")
    return TensorType(dtype=x.dtype, shape=tuple(0 if d == 0 else None for d in x.shape))


defop("tile_dynamic", _tile_dynamic_type, inputs=2, family="dynamic_shape",
      doc="ONNX Tile with the repeats read at run time.")
defvjp("tile_dynamic", lambda g, x, repeats, *, out: (
    scatter_back(g, x, lambda t: bind("tile_dynamic", t, repeats)), None))


@defbatch("tile_dynamic")
def _tile_dynamic_batch(inputs, dims, size):
    (x, repeats), (d, dr) = inputs, dims
    if dr is not None:  # per-example repeats
        return LOOP_THIS
    reps = bind("concat", np.ones(1, np.int64), repeats, axis=0)  # the batch axis is not repeated
    return bind("tile_dynamic", to_front(x, d), reps), 0


def tile_dynamic(x, repeats):
    """Repeat ``x`` ``repeats[i]`` times along axis i, ``repeats`` an int64 tensor read at run time.

    >>> irf.tile_dynamic(irf.tensor([1.0, 2.0]), np.array([2])).numpy()
    array([1., 2., 1., 2.], dtype=float32)
    """
    return bind("tile_dynamic", x, repeats)


# -- topk_dynamic -------------------------------------------------------------------------------------

def _topk_dynamic_type(x: TensorType, k: TensorType, *, axis: int, largest: bool, sorted: bool):
    a = norm_axes(axis, x.rank, "topk_dynamic")[0]
    _check_scalar("topk_dynamic", "k", k, (DType.int64,))
    shape = x.shape[:a] + (None,) + x.shape[a + 1:]
    return TensorType(dtype=x.dtype, shape=shape), TensorType(dtype=DType.int64, shape=shape)


defop("topk_dynamic", _topk_dynamic_type, inputs=2, family="dynamic_shape",
      attrs={"axis": Attr("int", default=-1), "largest": Attr("bool", default=True), "sorted": Attr("bool", default=True)},
      doc="ONNX TopK with K read at run time: the k largest (or smallest) entries along axis and their indices.")
defvjp("topk_dynamic", lambda g, x, k, *, out, axis, largest, sorted: (
    bind("scatter_elements", bind("zeros_like", x), out[1], g[0], axis=axis, reduction="add"), None))


@defbatch("topk_dynamic")
def _topk_dynamic_batch(inputs, dims, size, *, axis, largest, sorted):
    (x, k), (d, dk) = inputs, dims
    if dk is not None:  # a k per example
        return LOOP_THIS
    outs = bind("topk_dynamic", x, k, axis=shift_axis(axis, rank_of(x, d), d, "topk_dynamic"), largest=largest, sorted=sorted)
    return outs, (d, d)


def topk_dynamic(x, k, axis: int = -1, largest: bool = True, sorted: bool = True):
    """The ``k`` largest (or smallest) entries of ``x`` along ``axis`` and their int64 indices,
    ``k`` an int64 tensor of one element read at run time (ties keep the lower index first).

    >>> values, indices = irf.topk_dynamic(irf.tensor([1.0, 3.0, 2.0]), np.array([2]))  # doctest: +SKIP
    """
    return bind("topk_dynamic", x, k, axis=int(axis), largest=bool(largest), sorted=bool(sorted))


# -- one_hot_dynamic ----------------------------------------------------------------------------------

_DEPTH_DTYPES = tuple(d for d in DType if d is not DType.bool)  # ONNX OneHot's depth: any numeric type


def _one_hot_dynamic_type(indices: TensorType, depth: TensorType, *, axis: int, dtype: DType) -> TensorType:
    if indices.dtype not in _INDEX:
        raise DTypeError(f"one_hot_dynamic: indices must be int32 or int64, got {indices.dtype.value}")
    _check_scalar("one_hot_dynamic", "depth", depth, _DEPTH_DTYPES)
    a = norm_axes(axis, indices.rank + 1, "one_hot_dynamic")[0]
    return TensorType(dtype=dtype, shape=indices.shape[:a] + (None,) + indices.shape[a:])


defop("one_hot_dynamic", _one_hot_dynamic_type, inputs=2, differentiable=False, family="dynamic_shape",
      attrs={"axis": Attr("int", default=-1), "dtype": Attr("dtype", default=DType.float32)},
      doc="ONNX OneHot's 0/1 pattern with the depth read at run time (a non-integer depth is "
          "truncated); negative indices count from the end, out-of-range ones give all zeros. Its "
          "only data input holds integer indices, so it is not differentiable.")


@defbatch("one_hot_dynamic")
def _one_hot_dynamic_batch(inputs, dims, size, *, axis, dtype):
    (indices, depth), (d, dd) = inputs, dims
    if dd is not None:  # a depth per example
        return LOOP_THIS
    (a,), b = insert_axes((axis,), rank_of(indices, d) + 1, d, "one_hot_dynamic")
    return bind("one_hot_dynamic", indices, depth, axis=a, dtype=dtype), b


def one_hot_dynamic(indices, depth, axis: int = -1, dtype: Any = "float32"):
    """One-hot rows of length ``depth`` (a one-element tensor read at run time) for int
    ``indices``, inserted at ``axis``.

    >>> irf.one_hot_dynamic(np.array([0, 2]), np.array(3)).numpy()
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    from irflow.ir.dtypes import as_dtype

    return bind("one_hot_dynamic", indices, depth, axis=int(axis), dtype=as_dtype(dtype))


__all__ = ["slice_dynamic", "pad_dynamic", "split_dynamic", "tile_dynamic", "topk_dynamic", "one_hot_dynamic"]
