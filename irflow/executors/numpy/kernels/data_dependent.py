"""NumPy kernels of the data-dependent-shape ops (irflow/ops/data_dependent.py), from the ONNX spec."""
from __future__ import annotations

import numpy as np

from irflow.errors import ExecutorError
from irflow.executors.numpy.kernels import kernel


def _check_axis(axis: int, rank: int) -> int:
    # eager calls judge an op's types once per dtype combination, so an out-of-range axis is
    # caught here (the eager handler then reports the type rule's ShapeError)
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return axis % rank


@kernel("nonzero")
def nonzero(x):
    return np.asarray(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


@kernel("unique")
def unique(x, axis=None, sorted=True):
    if axis is None:
        y, index, inverse, counts = np.unique(x.reshape(-1), return_index=True, return_inverse=True, return_counts=True)
        take_axis = 0
    else:
        take_axis = _check_axis(axis, x.ndim)
        y, index, inverse, counts = np.unique(x, return_index=True, return_inverse=True, return_counts=True, axis=take_axis)
    inverse = inverse.reshape(-1)
    if not sorted:  # in order of first occurrence (ONNX sorted=0): renumber by first index
        order = np.argsort(index, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        y, index, counts, inverse = np.take(y, order, axis=take_axis), index[order], counts[order], rank[inverse]
    i64 = np.int64
    return y, index.astype(i64), inverse.astype(i64), counts.astype(i64)


@kernel("compress")
def compress(x, condition, axis=None):
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = _check_axis(axis, x.ndim)
    # ONNX: entries past the condition's length are dropped; condition entries past the axis
    # length select nothing (onnxruntime ignores them too)
    return np.compress(condition[: x.shape[axis]], x, axis=axis)


def _one(v, what, default):
    if v is None or v.size == 0:
        return default
    if v.size != 1:
        raise ExecutorError(f"non_max_suppression: {what} must hold one value, got shape {v.shape}")
    return v.reshape(-1)[0]


def _corners(boxes, center_point_box):
    """(y_min, x_min, y_max, x_max) of each box, in the boxes' dtype."""
    if center_point_box:
        xc, yc, w, h = boxes[..., 0], boxes[..., 1], boxes[..., 2] / 2, boxes[..., 3] / 2
        return yc - h, xc - w, yc + h, xc + w
    y1, x1, y2, x2 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return np.minimum(y1, y2), np.minimum(x1, x2), np.maximum(y1, y2), np.maximum(x1, x2)


@kernel("non_max_suppression")
def non_max_suppression(boxes, scores, max_output_boxes_per_class=None, iou_threshold=None, score_threshold=None,
                        center_point_box=0):
    if boxes.shape[0] != scores.shape[0] or boxes.shape[1] != scores.shape[2]:
        raise ExecutorError(f"non_max_suppression: boxes {boxes.shape} and scores {scores.shape} disagree "
                            "(want (batch, boxes, 4) and (batch, classes, boxes))")
    limit = max(int(_one(max_output_boxes_per_class, "max_output_boxes_per_class", 0)), 0)
    iou_max = _one(iou_threshold, "iou_threshold", np.float32(0))
    min_score = _one(score_threshold, "score_threshold", None)
    ymin, xmin, ymax, xmax = _corners(boxes, center_point_box)
    area = (ymax - ymin) * (xmax - xmin)
    rows = []
    for b in range(boxes.shape[0]):
        for c in range(scores.shape[1]):
            s = scores[b, c]
            cand = np.arange(s.size) if min_score is None else np.flatnonzero(s > min_score)
            cand = cand[np.argsort(-s[cand], kind="stable")]  # decreasing score, lower index first on ties
            kept: list[int] = []
            for i in cand:
                if len(kept) >= limit:
                    break
                if kept:
                    k = np.asarray(kept)
                    ih = np.minimum(ymax[b, i], ymax[b, k]) - np.maximum(ymin[b, i], ymin[b, k])
                    iw = np.minimum(xmax[b, i], xmax[b, k]) - np.maximum(xmin[b, i], xmin[b, k])
                    inter = ih * iw
                    union = area[b, i] + area[b, k] - inter
                    # ONNX: no overlap (or a degenerate box) never suppresses; IoU must exceed the threshold
                    valid = (ih > 0) & (iw > 0) & (area[b, i] > 0) & (area[b, k] > 0) & (union > 0)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        if np.any(valid & (inter / np.where(valid, union, 1) > iou_max)):
                            continue
                kept.append(int(i))
                rows.append((b, c, int(i)))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)
