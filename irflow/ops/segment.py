"""Segment reductions: ``segment_sum``, ``segment_max``, ``segment_min``.

``segment_sum(data, segment_ids, num_segments)[s] = sum of data[i] over the i with
segment_ids[i] == s`` (``tf.math.unsorted_segment_sum``): ids need not be sorted, and must lie
in [0, num_segments). Empty segments give 0 for the sum and, as TensorFlow, the lowest value
of the dtype for the max (the highest for the min). They are what ragged reductions lower to
(``irf.ragged.reduce_sum(rt, axis=1)`` is a ``segment_sum`` of the flat values by row id).

``num_segments`` is an int (an attribute: the output's first dim is static) or a scalar int
tensor (a third input, read at run time: the dim is unknown, ``None``), which is how a traced
function over ragged input sizes the result by its row_splits.

ONNX: one ScatterND (reduction add / max / min) into a ConstantOfShape of the output shape.
Gradients: the sum's is a gather of the output cotangent by segment id; the max's (min's) is
that gather masked to the entries equal to their segment's max and shared evenly among ties
(as TensorFlow's unsorted_segment_max gradient).

Batching (vmap, ``_segment_batch``): batched data with unbatched ids keeps the batch where it
is (behind the segment axis; a leading batch axis is moved to axis 1); batched ids (JAX's
segment_sum batching) offset each example's ids by ``b * num_segments`` so ONE segment op over
the flattened (B * N) rows fills B * num_segments segments, reshaped to (B, num_segments, ...).
A batched ``num_segments`` input (a per-example output length) loops.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from irflow.errors import DTypeError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import TensorType
from irflow.ops.batching import LOOP_THIS, batch_index_column, const_ints, materialize, merge_axes, move_axis, \
    reshape_to, shape_part, to_front
from irflow.ops.common import bind
from irflow.ops.registry import Attr, defbatch, defop, defvjp
from irflow.ops.shape import same_dim

_INDEX = (DType.int32, DType.int64)


def _segment_rule(op: str):
    def rule(data: TensorType, segment_ids: TensorType, n: TensorType | None = None, *, num_segments) -> TensorType:
        if data.rank == 0:
            raise ShapeError(f"{op}: data must have rank >= 1 (one row per segment id), got a scalar")
        if data.dtype is DType.bool:
            raise DTypeError(f"{op}: data must be numeric, got bool (cast it first)")
        if segment_ids.dtype not in _INDEX:
            raise DTypeError(f"{op}: segment_ids must be int32 or int64, got {segment_ids.dtype.value}")
        if segment_ids.rank != 1:
            raise ShapeError(f"{op}: segment_ids must be 1-D, got shape {segment_ids.shape}")
        same_dim(segment_ids.shape[0], data.shape[0], op, f"segment_ids {segment_ids.shape} vs data {data.shape}")
        if n is not None:
            if num_segments is not None:
                raise ShapeError(f"{op}: num_segments given both as an attribute and as an input")
            if n.rank != 0 or n.dtype not in _INDEX:
                raise ShapeError(f"{op}: a num_segments input must be a scalar int32/int64, got {n.dtype.value}{n.shape}")
            first = None
        else:
            if num_segments is None:
                raise ShapeError(f"{op}: needs num_segments (an int attribute or a scalar int input)")
            if num_segments < 0:
                raise ShapeError(f"{op}: num_segments must be >= 0, got {num_segments}")
            first = num_segments
        return TensorType(dtype=data.dtype, shape=(first,) + data.shape[1:])

    return rule


_ATTRS = {"num_segments": Attr("int", default=None, optional=True)}
for _op in ("segment_sum", "segment_max", "segment_min"):
    defop(_op, _segment_rule(_op), inputs=(2, 3), attrs=_ATTRS, family="segment")


def _n_args(n) -> tuple:
    return () if n is None else (n,)


def _n_grads(n) -> tuple:
    """No gradient for the num_segments input, when there is one."""
    return () if n is None else (None,)


@defvjp("segment_sum")
def _segment_sum_vjp(g, data, segment_ids, n=None, *, out, num_segments):
    return (bind("gather", g, segment_ids, axis=0), None) + _n_grads(n)


def _segment_extreme_vjp(op: str):
    def rule(g, data, segment_ids, n=None, *, out, num_segments):
        picked = bind("cast", bind("equal", data, bind("gather", out, segment_ids, axis=0)), dtype=data.type.dtype)
        ties = bind("segment_sum", picked, segment_ids, *_n_args(n), num_segments=num_segments)
        # empty segments have ties == 0 but no entry gathers their row, so the 1/0 never reaches data
        share = bind("gather", bind("div", g, ties), segment_ids, axis=0)
        return (bind("mul", share, picked), None) + _n_grads(n)

    rule.__name__ = f"_{op}_vjp"
    return rule


defvjp("segment_max", _segment_extreme_vjp("segment_max"))
defvjp("segment_min", _segment_extreme_vjp("segment_min"))


def _segment_batch(op: str):
    def rule(inputs, dims, size, *, num_segments):
        data, ids, n = (list(inputs) + [None])[:3]
        dd, di = dims[0], dims[1]
        if len(dims) > 2 and dims[2] is not None:
            return LOOP_THIS  # a per-example num_segments: per-example output lengths
        if di is None:
            # shared ids: segment along the example's axis 0, the batch rides along behind it
            x = move_axis(data, 0, 1) if dd == 0 else data
            return bind(op, x, ids, *_n_args(n), num_segments=num_segments), (1 if dd == 0 else dd)
        ids_b = to_front(ids, di)                                        # (B, N)
        x = materialize(data, dd, size, (ids_b, 0))                      # (B, N, *rest)
        idt = ids_b.type.dtype
        if n is None:
            count = bind("constant", value=np.array(num_segments, idt.numpy))
        else:
            count = n if n.type.dtype is idt else bind("cast", n, dtype=idt)
        # example b's ids shifted by b * num_segments: B disjoint ranges of segments
        shifted = bind("add", ids_b, bind("mul", batch_index_column(ids_b), count))   # (B, 1) holds b
        flat_ids, flat_x = merge_axes(shifted, 0), merge_axes(x, 0)
        if n is None and isinstance(size, int):
            out = bind(op, flat_x, flat_ids, num_segments=size * num_segments)
        else:
            batch = bind("cast", bind("reshape", shape_part(ids_b, 0, 1), shape=()), dtype=idt)
            out = bind(op, flat_x, flat_ids, bind("mul", batch, count), num_segments=None)
        rest = tuple(x.type.shape[2:])
        seg_part = (const_ints([num_segments]) if n is None
                    else bind("reshape", bind("cast", n, dtype=DType.int64), shape=(1,)))
        out = reshape_to(out, (size, num_segments) + rest,
                         lambda: bind("concat", shape_part(ids_b, 0, 1), seg_part, shape_part(out, 1), axis=0))
        return out, 0

    rule.__name__ = f"_{op}_batch"
    return rule


for _op in ("segment_sum", "segment_max", "segment_min"):
    defbatch(_op, _segment_batch(_op))


def _segment_call(op: str, data: Any, segment_ids: Any, num_segments: Any) -> Any:
    if isinstance(segment_ids, (list, tuple)):
        segment_ids = np.asarray(segment_ids, dtype=np.int64)
    if isinstance(num_segments, (int, np.integer)) and not isinstance(num_segments, bool):
        return bind(op, data, segment_ids, num_segments=int(num_segments))
    return bind(op, data, segment_ids, num_segments)


def segment_sum(data: Any, segment_ids: Any, num_segments: Any) -> Any:
    """Sum the rows of ``data`` that share a segment id (``tf.math.unsorted_segment_sum``);
    ``num_segments`` is an int or a scalar int tensor; empty segments are 0.

    >>> irf.segment_sum(irf.tensor([1.0, 2.0, 3.0]), np.array([1, 0, 1]), 3).numpy()
    array([2., 4., 0.], dtype=float32)
    """
    return _segment_call("segment_sum", data, segment_ids, num_segments)


def segment_max(data: Any, segment_ids: Any, num_segments: Any) -> Any:
    """Maximum of the rows of ``data`` that share a segment id; an empty segment is the lowest
    value of the dtype (as ``tf.math.unsorted_segment_max``).

    >>> irf.segment_max(irf.tensor([1.0, 5.0, 3.0]), np.array([0, 0, 1]), 2).numpy()
    array([5., 3.], dtype=float32)
    """
    return _segment_call("segment_max", data, segment_ids, num_segments)


def segment_min(data: Any, segment_ids: Any, num_segments: Any) -> Any:
    """Minimum of the rows of ``data`` that share a segment id; an empty segment is the highest
    value of the dtype.

    >>> irf.segment_min(irf.tensor([1.0, 5.0, 3.0]), np.array([0, 0, 1]), 2).numpy()
    array([1., 3.], dtype=float32)
    """
    return _segment_call("segment_min", data, segment_ids, num_segments)


__all__ = ["segment_sum", "segment_max", "segment_min"]
