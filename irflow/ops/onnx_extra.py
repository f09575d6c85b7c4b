"""More ops ONNX import needs, with no reasonable decomposition into the core set.

- ``reverse_sequence``: ONNX ReverseSequence, the first ``sequence_lens[b]`` steps of each
  batch entry reversed (the rest kept).
- ``max_unpool``: ONNX MaxUnpool, MaxPool's values put back at its flat indices, zeros elsewhere.
- ``det``: ONNX Det, determinants of the trailing square matrices.
"""
from __future__ import annotations

import numpy as np

from irflow.errors import DTypeError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import TensorType
from irflow.ops.batching import LOOP
from irflow.ops.common import bind, to_front
from irflow.ops.registry import Attr, defbatch, defop, defvjp

__all__ = ["reverse_sequence", "det"]


# -- reverse_sequence ---------------------------------------------------------------------------------

def _reverse_sequence_type(x: TensorType, lens: TensorType, batch_axis: int, time_axis: int) -> TensorType:
    if {batch_axis, time_axis} != {0, 1}:
        raise ShapeError(f"reverse_sequence: batch_axis and time_axis must be 0 and 1 in some order (ONNX), got "
                         f"{batch_axis} and {time_axis}")
    if x.rank < 2:
        raise ShapeError(f"reverse_sequence: x must have rank >= 2, got {x.shape}")
    if lens.dtype is not DType.int64 or lens.rank != 1:
        raise DTypeError(f"reverse_sequence: sequence_lens must be a 1-D int64 tensor, got {lens}")
    b, n = x.shape[batch_axis], lens.shape[0]
    if type(b) is int and type(n) is int and b != n:
        raise ShapeError(f"reverse_sequence: sequence_lens has {n} entries for a batch of {b} (x {x.shape})")
    return x


defop("reverse_sequence", _reverse_sequence_type, inputs=2, family="onnx_extra",
      attrs={"batch_axis": Attr("int", default=1), "time_axis": Attr("int", default=0)},
      doc="ONNX ReverseSequence: for each batch entry b, the first sequence_lens[b] steps along time_axis reversed.")
# the op is its own adjoint: it permutes entries and that permutation is an involution
defvjp("reverse_sequence", lambda g, x, lens, *, out, batch_axis, time_axis: (
    bind("reverse_sequence", g, lens, batch_axis=batch_axis, time_axis=time_axis), None))
# ONNX allows only axes 0 and 1 for batch and time, so a vmap axis cannot be put in front of
# them without merging it into the batch axis (and repeating sequence_lens): a loop instead.
defbatch("reverse_sequence", LOOP)


def reverse_sequence(x, sequence_lens, batch_axis: int = 1, time_axis: int = 0):
    """Reverse the first ``sequence_lens[b]`` steps (along ``time_axis``) of each batch entry
    ``b`` (along ``batch_axis``), keeping the padding after them: ``tf.reverse_sequence``, ONNX
    ReverseSequence (whose axes are 0 and 1).

    >>> irf.reverse_sequence(irf.tensor([[1, 2, 3], [4, 5, 6]]), np.array([2, 3]), batch_axis=0, time_axis=1).numpy()
    array([[2, 1, 3],
           [6, 5, 4]])
    """
    return bind("reverse_sequence", x, np.asarray(sequence_lens, np.int64) if isinstance(sequence_lens, (list, tuple, np.ndarray)) else sequence_lens,
                batch_axis=int(batch_axis), time_axis=int(time_axis))


# -- max_unpool ---------------------------------------------------------------------------------------

def unpool_shape(x_shape, kernel_shape, pads, strides) -> tuple:
    """The output shape MaxUnpool infers: (in - 1) * stride - pad_begin - pad_end + kernel per axis."""
    k = len(kernel_shape)
    return tuple(x_shape[:2]) + tuple(
        (d - 1) * s - pads[i] - pads[i + k] + kk if type(d) is int else None
        for i, (d, s, kk) in enumerate(zip(x_shape[2:], strides, kernel_shape)))


def _max_unpool_type(x: TensorType, indices: TensorType, output_shape=None, *, kernel_shape, pads, strides,
                     out_shape) -> TensorType:
    k = len(kernel_shape)
    if x.rank != k + 2:
        raise ShapeError(f"max_unpool: x {x.shape} must have rank {k + 2} (N, C and {k} spatial axes)")
    if len(pads) != 2 * k or len(strides) != k:
        raise ShapeError(f"max_unpool: pads {pads} and strides {strides} must have {2 * k} and {k} entries")
    if indices.dtype is not DType.int64 or indices.rank != x.rank:
        raise DTypeError(f"max_unpool: indices must be int64 of x's shape {x.shape}, got {indices}")
    if output_shape is not None:
        if output_shape.dtype is not DType.int64 or output_shape.shape not in ((x.rank,), (None,)):
            raise DTypeError(f"max_unpool: output_shape must be a 1-D int64 tensor of {x.rank} entries, got {output_shape}")
        if out_shape is not None:
            raise ShapeError("max_unpool: give the output shape as an input or as the out_shape attr, not both")
        return TensorType(dtype=x.dtype, shape=(None,) * x.rank)  # read at run time
    if out_shape is not None:
        if len(out_shape) != x.rank:
            raise ShapeError(f"max_unpool: out_shape {out_shape} must have {x.rank} entries")
        return TensorType(dtype=x.dtype, shape=tuple(out_shape))
    return TensorType(dtype=x.dtype, shape=unpool_shape(x.shape, kernel_shape, pads, strides))


defop("max_unpool", _max_unpool_type, inputs=(2, 3), family="onnx_extra",
      attrs={"kernel_shape": Attr("ints"), "pads": Attr("ints"), "strides": Attr("ints"),
             "out_shape": Attr("ints", default=None, optional=True)},
      doc="ONNX MaxUnpool: zeros of the inferred shape with x's values at the flat indices (MaxPool's "
          "Indices, over the whole tensor), zero-padded at the end to out_shape or the run-time output_shape.")


@defvjp("max_unpool")
def _max_unpool_vjp(g, x, indices, output_shape=None, *, out, kernel_shape, pads, strides, out_shape):
    inferred = unpool_shape(x.type.shape, kernel_shape, pads, strides)
    if any(type(d) is not int for d in inferred[2:]):
        raise ShapeError(f"max_unpool: the gradient needs static spatial dims of x, got {x.type.shape}")
    k = len(kernel_shape)
    region = bind("slice", g, starts=(0,) * k, ends=tuple(inferred[2:]), axes=tuple(range(2, 2 + k)))
    flat = bind("reshape", region, shape=(-1,))
    gx = bind("reshape_like", bind("gather", flat, bind("reshape", indices, shape=(-1,)), axis=0), x)
    return (gx, None) if output_shape is None else (gx, None, None)


# the indices are flat over the whole tensor, N included: a vmap axis would change their meaning
defbatch("max_unpool", LOOP)


# -- det ----------------------------------------------------------------------------------------------

def _det_type(x: TensorType) -> TensorType:
    if not x.dtype.is_float:
        raise DTypeError(f"det: x must be a float tensor, got {x.dtype.value}")
    if x.rank < 2 or (type(x.shape[-1]) is int and type(x.shape[-2]) is int and x.shape[-1] != x.shape[-2]):
        raise ShapeError(f"det: x must end in square matrices (..., M, M), got {x.shape}")
    return TensorType(dtype=x.dtype, shape=x.shape[:-2])


defop("det", _det_type, inputs=1, family="onnx_extra", doc="ONNX Det: the determinant of each trailing (M, M) matrix.")


@defvjp("det")
def _det_vjp(g, x, *, out):
    # d det / dX = the cofactor matrix C, C[i, j] = (-1)^(i+j) det(X without row i and column j),
    # the minors gathered with constant indices: IR ops only (no matrix inverse op in the IR or
    # in standard ONNX), exact for singular matrices too, and differentiable again.
    m = x.type.shape[-1]
    if type(m) is not int:
        raise ShapeError(f"det: the gradient needs a static matrix size, got {x.type.shape}")
    r = x.type.rank
    if m == 1:
        cof = bind("ones_like", x)
    else:
        keep = np.array([[j for j in range(m) if j != i] for i in range(m)], np.int64)  # (m, m-1)
        rows = bind("gather", x, keep, axis=r - 2)                 # (..., m_i, m-1, m)
        minors = bind("gather", rows, keep, axis=r)                # (..., m_i, m-1, m_j, m-1)
        perm = tuple(range(r - 2)) + (r - 2, r, r - 1, r + 1)
        minors = bind("transpose", minors, perm=perm)              # (..., m_i, m_j, m-1, m-1)
        sign = np.array([[(-1.0) ** (i + j) for j in range(m)] for i in range(m)], dtype=x.type.dtype.numpy)
        cof = bind("mul", bind("det", minors), sign)
    return bind("mul", cof, bind("expand_dims", g, axes=(r - 2, r - 1)))


@defbatch("det")
def _det_batch(inputs, dims, size):
    return bind("det", to_front(inputs[0], dims[0])), 0  # any leading axes are matrices' batch axes


def det(x):
    """The determinant of each trailing square matrix of ``x`` (..., M, M): ``np.linalg.det``,
    ``torch.linalg.det``, ONNX Det. Differentiable (the cofactor matrix).

    >>> float(irf.det(irf.tensor([[2.0, 1.0], [1.0, 3.0]])))
    5.0
    """
    return bind("det", x)
