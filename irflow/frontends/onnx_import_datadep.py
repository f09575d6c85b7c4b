"""ONNX importers of the ops with data-dependent output shapes: NonZero, Unique, Compress,
NonMaxSuppression (irflow/ops/data_dependent.py). Their outputs get None dims; the limits of
NonMaxSuppression stay run-time inputs (nothing needs to be known at import)."""
from __future__ import annotations

from irflow.frontends.onnx_import_base import importer, rank_of
from irflow.ops.dispatch import bind


@importer("NonZero")
def _nonzero(n):
    x = n.input(0)
    if rank_of(x) == 0:  # onnxruntime treats a scalar as one entry: shape (1, 0 or 1)
        x = bind("reshape", x, shape=(1,))
    return bind("nonzero", x)


@importer("Unique")
def _unique(n):
    x = n.input(0)
    return bind("unique", x, axis=_optional_axis(n, x), sorted=bool(n.attr("sorted", 1)))


@importer("Compress")
def _compress(n):
    x = n.input(0)
    return bind("compress", x, n.input(1), axis=_optional_axis(n, x))


def _optional_axis(n, x):
    """The node's ``axis`` attribute normalized against ``x``'s rank; None when absent (Unique and
    Compress then work on the flattened input)."""
    axis = n.attr("axis")
    return None if axis is None else n.axis(axis, rank_of(x))


@importer("NonMaxSuppression")
def _nms(n):
    limits = [n.input(i) if n.has_input(i) else None for i in (2, 3, 4)]
    while limits and limits[-1] is None:  # trailing omitted inputs: the op's shorter form
        limits.pop()
    center = int(n.attr("center_point_box", 0))
    if center not in (0, 1):
        raise n.error(f"center_point_box must be 0 or 1, got {center}")
    return bind("non_max_suppression", n.input(0), n.input(1), *limits, center_point_box=center)
