"""Ops whose output shape depends on the input values, not only on the input shapes.

- ``nonzero``: ONNX NonZero, the int64 indices of the non-zero entries, shape (rank, N).
- ``unique``: ONNX Unique, (Y, indices, inverse_indices, counts), sorted or in order of first
  occurrence, over the flattened input or along an axis.
- ``compress``: ONNX Compress, the entries (or slices along ``axis``) where a 1-D bool
  condition is True.
- ``non_max_suppression``: ONNX NonMaxSuppression, (selected, 3) rows of
  (batch, class, box) indices; the three limits are run-time inputs.

Their type rules give None (unknown until run time) for every data-dependent dim and keep
every other dim. vmap runs them in a loop (``LOOP``): each example may give a different
output shape, which no batched tensor can hold (compress with an unbatched condition is the
exception: every example keeps the same slices, so it batches).
"""
from __future__ import annotations

import math

import numpy as np

from irflow.errors import DTypeError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import TensorType
from irflow.ops.batching import LOOP, LOOP_THIS, shift_axis
from irflow.ops.common import bind, norm_axes, to_front
from irflow.ops.registry import Attr, defbatch, defop, defvjp

__all__ = ["nonzero", "argwhere", "unique", "compress", "boolean_mask", "non_max_suppression"]


def _axis(op: str, axis, rank: int) -> int | None:
    return None if axis is None else norm_axes(int(axis), rank, op)[0]


def _numel(t: TensorType):
    return math.prod(t.shape) if all(type(d) is int for d in t.shape) else None


def _with_unknown(t: TensorType, axis: int) -> tuple:
    return t.shape[:axis] + (None,) + t.shape[axis + 1:]


def _scatter_back(x, idx, g, axis):
    """The adjoint of picking entries ``idx`` (1-D int64) of ``x`` (flattened when ``axis`` is
    None) or slices of it along ``axis``: ``g`` added into zeros shaped as ``x``."""
    col = bind("expand_dims", idx, axes=(1,))  # (N, 1): one index tuple per picked entry
    if axis is None:
        flat = bind("reshape", x, shape=(-1,))
        return bind("reshape_like", bind("scatter_add", bind("zeros_like", flat), col, g), x)
    r = x.type.rank
    perm = (axis,) + tuple(i for i in range(r) if i != axis)
    back = tuple(perm.index(i) for i in range(r))
    zeros = bind("zeros_like", bind("transpose", x, perm=perm))
    return bind("transpose", bind("scatter_add", zeros, col, bind("transpose", g, perm=perm)), perm=back)


# -- nonzero ------------------------------------------------------------------------------------------

def _nonzero_type(x: TensorType) -> TensorType:
    if x.rank == 0:
        raise ShapeError("nonzero: x must have rank >= 1 (reshape a scalar to shape (1,) first)")
    return TensorType(dtype=DType.int64, shape=(x.rank, None))


defop("nonzero", _nonzero_type, inputs=1, differentiable=False, family="data_dependent",
      doc="ONNX NonZero: the int64 indices of x's non-zero entries, shape (rank, N), in row-major order.")
defbatch("nonzero", LOOP)  # N differs per example: no batched tensor holds the results


def nonzero(x, as_tuple: bool = False):
    """The indices of the non-zero (True) entries of ``x``, in row-major order, as
    ``torch.nonzero``: an int64 tensor of shape (N, rank), one row per entry (N is known only at
    run time). ``as_tuple=True`` gives ``np.nonzero``'s form: one 1-D tensor per axis. (The IR
    op ``nonzero`` is ONNX NonZero, shape (rank, N); this function transposes it.)

    >>> irf.nonzero(irf.tensor([[0, 3], [5, 0]])).numpy()
    array([[0, 1],
           [1, 0]])
    """
    idx = bind("nonzero", x)
    if as_tuple:
        return tuple(bind("gather", idx, np.asarray(i, np.int64), axis=0) for i in range(idx.shape[0]))
    return bind("transpose", idx, perm=(1, 0))


def argwhere(x):
    """The indices of the non-zero entries of ``x`` as rows, shape (N, rank): ``np.argwhere``
    and ``tf.where(x)`` with one argument.

    >>> irf.argwhere(irf.tensor([0.0, 2.0, 3.0])).numpy()
    array([[1],
           [2]])
    """
    return nonzero(x)


# -- unique -------------------------------------------------------------------------------------------

def _unique_type(x: TensorType, axis, sorted) -> tuple[TensorType, ...]:
    a = _axis("unique", axis, x.rank)
    if a is None:
        y, inverse = (None,), (_numel(x),)
    else:
        y, inverse = _with_unknown(x, a), (x.shape[a],)
    i64 = DType.int64
    return (TensorType(dtype=x.dtype, shape=y), TensorType(dtype=i64, shape=(None,)),
            TensorType(dtype=i64, shape=inverse), TensorType(dtype=i64, shape=(None,)))


defop("unique", _unique_type, inputs=1, family="data_dependent",
      attrs={"axis": Attr("int", default=None, optional=True), "sorted": Attr("bool", default=True)},
      doc="ONNX Unique: (Y, indices of first occurrences, inverse_indices, counts); over the flattened "
          "input when axis is None, else of the slices along axis; Y sorted or in order of first occurrence.")


@defvjp("unique")
def _unique_vjp(g, x, *, out, axis, sorted):
    # Y is x's entries (slices) at `indices`: the gradient goes back to those first occurrences.
    # (Equal entries have one Y entry; a perturbation that separates them changes the output's
    # shape, so only the first occurrence is differentiable, as a gather.)
    a = None if axis is None else axis % x.type.rank
    return _scatter_back(x, out[1], g[0], a)


defbatch("unique", LOOP)  # the number of distinct entries differs per example


def unique(x, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, axis=None,
           return_index: bool = False):
    """The distinct entries of ``x`` (flattened, or the distinct slices along ``axis``), sorted
    ascending or, with ``sorted=False``, in order of first occurrence, as ``torch.unique``.
    With ``return_index``, ``return_inverse``, ``return_counts`` also the index of each one's
    first occurrence, the index into the result of every input entry (shaped as ``x`` when
    ``axis`` is None, as torch and NumPy 2 do) and how often each occurs, in ``np.unique``'s
    order: (values, index, inverse, counts). The result's length is known only at run time.

    >>> values, counts = irf.unique(irf.tensor([3, 1, 3, 2]), return_counts=True)
    >>> values.numpy(), counts.numpy()
    (array([1, 2, 3]), array([1, 1, 2]))
    """
    y, index, inverse, counts = bind("unique", x, axis=None if axis is None else int(axis), sorted=bool(sorted))
    if axis is None and return_inverse:
        inverse = bind("reshape_like", inverse, x)
    extra = [t for t, want in ((index, return_index), (inverse, return_inverse), (counts, return_counts)) if want]
    return (y, *extra) if extra else y


# -- compress -----------------------------------------------------------------------------------------

def _compress_type(x: TensorType, condition: TensorType, axis) -> TensorType:
    if condition.dtype is not DType.bool or condition.rank != 1:
        raise DTypeError(f"compress: condition must be a 1-D bool tensor, got {condition}")
    a = _axis("compress", axis, x.rank)
    return TensorType(dtype=x.dtype, shape=(None,) if a is None else _with_unknown(x, a))


defop("compress", _compress_type, inputs=2, family="data_dependent",
      attrs={"axis": Attr("int", default=None, optional=True)},
      doc="ONNX Compress: the entries of flattened x (or its slices along axis) where condition is True; "
          "entries past the condition's length are dropped, condition entries past x's are ignored.")


@defvjp("compress")
def _compress_vjp(g, x, condition, *, out, axis):
    idx = bind("reshape", bind("nonzero", condition), shape=(-1,))
    if axis is not None:
        # indices past x's axis length select nothing in the forward op (ONNX ignores them)
        n = x.type.shape[axis % x.type.rank]
        if not (type(n) is int and type(condition.type.shape[0]) is int and condition.type.shape[0] <= n):
            idx = _below_length(idx, x, axis % x.type.rank)
        return _scatter_back(x, idx, g, axis % x.type.rank), None
    if not (type(condition.type.shape[0]) is int and _numel(x.type) is not None and condition.type.shape[0] <= _numel(x.type)):
        idx = _below_length(idx, x, None)
    return _scatter_back(x, idx, g, None), None


def _below_length(idx, x, axis):
    """``idx`` without entries >= the length of ``x`` along ``axis`` (its size when None)."""
    shape = bind("shape_of", x)
    n = bind("reduce_prod", shape, axes=(0,), keepdims=False) if axis is None else bind(
        "gather", shape, np.asarray(axis, np.int64), axis=0)
    return bind("compress", idx, bind("less", idx, n), axis=0)


@defbatch("compress")
def _compress_batch(inputs, dims, size, *, axis):
    (x, cond), (dx, dc) = inputs, dims
    if dc is not None or axis is None:  # a condition per example (or a flattened pick): N differs per example
        return LOOP_THIS
    return bind("compress", to_front(x, dx), cond, axis=shift_axis(axis, x.type.rank - 1, 0, "compress")), 0


def compress(condition, x, axis=None):
    """The entries of ``x`` (flattened when ``axis`` is None) or its slices along ``axis`` where
    the 1-D bool ``condition`` is True, as ``np.compress(condition, x, axis)`` (condition first,
    NumPy's order; ONNX Compress). The selected length is known only at run time.

    >>> irf.compress(irf.tensor([True, False, True]), irf.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), axis=0).numpy()
    array([[1., 2.],
           [5., 6.]], dtype=float32)
    """
    return bind("compress", x, condition, axis=None if axis is None else int(axis))


def boolean_mask(x, mask, axis: int = 0):
    """The entries of ``x`` where the bool ``mask`` is True, as ``tf.boolean_mask``: ``mask``
    covers axes ``axis .. axis + mask.rank - 1`` of ``x`` (its shape must equal theirs), and
    those axes become one axis of run-time length. ``x[mask]`` in PyTorch and NumPy.

    >>> irf.boolean_mask(irf.tensor([[1.0, 2.0], [3.0, 4.0]]), irf.tensor([[True, False], [False, True]])).numpy()
    array([1., 4.], dtype=float32)
    """
    mask_t, x_t = _type_of(mask), _type_of(x)
    if mask_t.dtype is not DType.bool:
        raise DTypeError(f"boolean_mask: mask must be bool, got {mask_t.dtype.value}")
    k = mask_t.rank
    if k == 0:
        raise ShapeError("boolean_mask: mask must have rank >= 1, got a scalar")
    a = norm_axes(int(axis), x_t.rank, "boolean_mask")[0]
    covered = x_t.shape[a:a + k]
    if len(covered) != k or any(type(m) is int and type(d) is int and m != d for m, d in zip(mask_t.shape, covered)):
        raise ShapeError(f"boolean_mask: mask {mask_t.shape} must have the shape of axes {a}..{a + k - 1} of x {x_t.shape}")
    if k > 1:  # the masked axes merge into one
        if x_t.is_static:
            x = bind("reshape", x, shape=tuple(x_t.shape[:a]) + (-1,) + tuple(x_t.shape[a + k:]))
        else:  # symbolic sizes: the target shape read at run time
            shape = bind("shape_of", x)
            target = bind("concat", bind("slice", shape, starts=(0,), ends=(a,), axes=(0,)),
                          bind("constant", value=np.asarray([-1], np.int64)),
                          bind("slice", shape, starts=(a + k,), ends=(x_t.rank,), axes=(0,)), axis=0)
            x = bind("reshape_dynamic", x, target, dims=tuple(x_t.shape[:a]) + (None,) + tuple(x_t.shape[a + k:]))
        mask = bind("reshape", mask, shape=(-1,))
    return bind("compress", x, mask, axis=a)


def _type_of(x) -> TensorType:
    t = getattr(x, "type", None)
    if isinstance(t, TensorType):
        return t
    arr = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    from irflow.ir.dtypes import dtype_of_array

    return TensorType(dtype=dtype_of_array(arr), shape=arr.shape)


# -- non_max_suppression ------------------------------------------------------------------------------

def _scalar_input(what: str, t: TensorType | None, dtype: DType) -> None:
    if t is None:
        return
    if t.dtype is not dtype:
        raise DTypeError(f"non_max_suppression: {what} must be {dtype.value}, got {t.dtype.value}")
    if t.rank > 1 or (t.rank == 1 and t.shape[0] not in (1, None)):
        raise ShapeError(f"non_max_suppression: {what} must hold one value (shape () or (1,)), got {t.shape}")


def _nms_type(boxes: TensorType, scores: TensorType, max_output_boxes_per_class=None, iou_threshold=None,
              score_threshold=None, *, center_point_box) -> TensorType:
    if boxes.dtype is not DType.float32 or scores.dtype is not DType.float32:
        raise DTypeError(f"non_max_suppression: boxes and scores must be float32 (as ONNX), got "
                         f"{boxes.dtype.value} and {scores.dtype.value}")
    if boxes.rank != 3 or boxes.shape[2] not in (4, None):
        raise ShapeError(f"non_max_suppression: boxes must have shape (batch, boxes, 4), got {boxes.shape}")
    if scores.rank != 3:
        raise ShapeError(f"non_max_suppression: scores must have shape (batch, classes, boxes), got {scores.shape}")
    for i, j, what in ((0, 0, "batch"), (1, 2, "boxes")):
        b, s = boxes.shape[i], scores.shape[j]
        if type(b) is int and type(s) is int and b != s:
            raise ShapeError(f"non_max_suppression: boxes {boxes.shape} and scores {scores.shape} differ in the {what} dim")
    if center_point_box not in (0, 1):
        raise ShapeError(f"non_max_suppression: center_point_box must be 0 or 1, got {center_point_box}")
    _scalar_input("max_output_boxes_per_class", max_output_boxes_per_class, DType.int64)
    _scalar_input("iou_threshold", iou_threshold, DType.float32)
    _scalar_input("score_threshold", score_threshold, DType.float32)
    return TensorType(dtype=DType.int64, shape=(None, 3))


defop("non_max_suppression", _nms_type, inputs=(2, 5), differentiable=False, family="data_dependent",
      attrs={"center_point_box": Attr("int", default=0)},
      doc="ONNX NonMaxSuppression: per batch and class, boxes in decreasing score order that overlap no "
          "kept box by IoU > iou_threshold, at most max_output_boxes_per_class (default 0: none), scores > "
          "score_threshold; (selected, 3) int64 rows of (batch, class, box). Not differentiable (indices).")
defbatch("non_max_suppression", LOOP)  # the number of kept boxes differs per example


def non_max_suppression(boxes, scores, max_output_size=None, iou_threshold: float = 0.5, score_threshold=None,
                        center_point_box: bool = False):
    """Greedy non-maximum suppression, as ``tf.image.non_max_suppression`` and
    ``torchvision.ops.nms``: for boxes (N, 4) as corners ``[y1, x1, y2, x2]`` (any two opposite
    corners; or ``[x_center, y_center, width, height]`` with ``center_point_box=True``) and
    scores (N,), the int64 indices of the kept boxes in decreasing score order (length known only
    at run time). A kept box overlaps no higher-scoring kept box by IoU > ``iou_threshold``; at
    most ``max_output_size`` are kept (all when None); with ``score_threshold`` only boxes
    scoring above it. The limits may be tensors computed at run time. Batched ONNX form: boxes
    (B, N, 4) and scores (B, C, N) give rows (batch, class, box), shape (selected, 3).

    >>> boxes = irf.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.1, 1.0, 1.1], [0.0, 2.0, 1.0, 3.0]])
    >>> irf.non_max_suppression(boxes, irf.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5).numpy()
    array([0, 2])
    """
    boxes_t = _type_of(boxes)
    if max_output_size is None:
        n = boxes_t.shape[-2] if boxes_t.rank >= 2 else None
        max_output_size = n if type(n) is int else np.iinfo(np.int64).max
    limits = [_limit(max_output_size, np.int64), _limit(iou_threshold, np.float32)]
    if score_threshold is not None:
        limits.append(_limit(score_threshold, np.float32))
    if boxes_t.rank == 2:  # one image, one class: the (batch, class) columns are all 0
        boxes = bind("expand_dims", boxes, axes=(0,))
        scores = bind("expand_dims", scores, axes=(0, 1))
        rows = bind("non_max_suppression", boxes, scores, *limits, center_point_box=int(bool(center_point_box)))
        return bind("gather", rows, np.asarray(2, np.int64), axis=1)
    return bind("non_max_suppression", boxes, scores, *limits, center_point_box=int(bool(center_point_box)))


def _limit(v, dtype):
    """A Python number as a 0-d constant of the ONNX input's dtype; tensors pass through."""
    if isinstance(v, (int, float, np.integer, np.floating)):
        return np.asarray(v, dtype=dtype)
    return v
