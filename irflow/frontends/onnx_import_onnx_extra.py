"""ONNX importers of ReverseSequence, MaxUnpool, Det (irflow/ops/onnx_extra.py) and of
TensorScatter (opset 24), which is a ``scatter_elements`` along the sequence axis."""
from __future__ import annotations

import numpy as np

from irflow.frontends.onnx_import_base import importer, rank_of
from irflow.ops.dispatch import bind


@importer("ReverseSequence")
def _reverse_sequence(n):
    return bind("reverse_sequence", n.input(0), n.input(1), batch_axis=int(n.attr("batch_axis", 1)),
                time_axis=int(n.attr("time_axis", 0)))


@importer("Det")
def _det(n):
    return bind("det", n.input(0))


@importer("MaxUnpool")
def _max_unpool(n):
    x = n.input(0)
    k = rank_of(x) - 2
    kernel = n.attr_ints("kernel_shape", k)
    if kernel is None:
        raise n.error("attribute kernel_shape is required")
    pads = n.attr_ints("pads", 2 * k, [0] * 2 * k)
    strides = n.attr_ints("strides", k, [1] * k)
    attrs = dict(kernel_shape=tuple(kernel), pads=tuple(pads), strides=tuple(strides))
    if not n.has_input(2):
        return bind("max_unpool", x, n.input(1), **attrs)
    known = n.shape_value(2)
    if known is not None and all(type(d) is int for d in known):  # known at import: a static shape
        return bind("max_unpool", x, n.input(1), out_shape=tuple(known), **attrs)
    return bind("max_unpool", x, n.input(1), n.input(2), **attrs)


@importer("TensorScatter")
def _tensor_scatter(n):
    past, update = n.input(0), n.input(1)
    r = rank_of(past)
    axis = n.axis(n.attr("axis", -2), r)
    if axis == 0:
        raise n.error("axis must not be 0 (the batch axis)")
    mode = n.attr("mode", "linear")
    if mode not in ("linear", "circular"):
        raise n.error(f"mode must be 'linear' or 'circular', got {mode!r}")
    seq, max_seq = update.shape[axis], past.shape[axis]
    if type(seq) is not int:
        raise n.unsupported(f"TensorScatter needs a static update length along axis {axis}, got {update.shape}")
    # position of update[b, ..., s, ...] in the cache: write_indices[b] + s (mod the cache length)
    step_shape = (1,) * axis + (seq,) + (1,) * (r - axis - 1)
    if n.fits((seq,), np.int64):
        steps = np.arange(seq, dtype=np.int64).reshape(step_shape)
    else:  # a long update (its length declared in the file): the step numbers made at run time
        steps = bind("reshape", bind("range", np.asarray(0, np.int64), np.asarray(seq, np.int64), np.asarray(1, np.int64)),
                     shape=step_shape)
    if n.has_input(2):
        start = bind("reshape", bind("cast", n.input(2), dtype="int64"), shape=(-1,) + (1,) * (r - 1))
        pos = bind("add", start, steps)
    else:
        pos = bind("constant", value=steps) if isinstance(steps, np.ndarray) else steps
    if mode == "circular":
        length = bind("gather", bind("shape_of", past), np.asarray(axis, np.int64), axis=0) if type(max_seq) is not int \
            else np.asarray(max_seq, np.int64)
        pos = bind("mod", pos, length)
    return bind("scatter_elements", past, bind("broadcast_like", pos, update), update, axis=axis, reduction="none")
