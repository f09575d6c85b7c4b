"""Convolution-shaped vision ops: ``col2im`` (ONNX Col2Im, PyTorch's ``F.fold``) and
``deform_conv`` (ONNX DeformConv, torchvision's ``deform_conv2d``).

``col2im(cols)`` adds the sliding blocks of cols (N, C * prod(block), L) back into an
(N, C, *image) image, overlapping blocks summed: the adjoint of im2col. Its VJP is therefore
im2col, written as a grouped ``conv`` whose kernel is one-hot (output channel c * K + k reads tap k
of channel c), so it runs, exports and differentiates like any conv. ``col2im_dynamic`` takes
image_shape and block_shape as run-time int64 inputs (ONNX models that compute them); its output
sizes are unknown until run time and it is not differentiable.

>>> cols = irf.tensor(np.ones((1, 4, 4), np.float32))         # 2 x 2 blocks of a 3 x 3 image
>>> irf.col2im(cols, image_shape=(3, 3), block_shape=(2, 2)).numpy()[0, 0]
array([[1., 2., 1.],
       [2., 4., 2.],
       [1., 2., 1.]], dtype=float32)
"""
from __future__ import annotations

import math

import numpy as np

from irflow.errors import DTypeError, IRValidationError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import TensorType
from irflow.ops.batching import fold_rule
from irflow.ops.common import bind
from irflow.ops.conv_nd import check_nd_attrs, out_dim
from irflow.ops.registry import Attr, defbatch, defop, defvjp


def block_counts(image_shape, block_shape, strides, pads, dilations) -> tuple:
    """How many blocks fit along each image dim (the conv output size)."""
    r = len(image_shape)
    return tuple(out_dim(image_shape[i], block_shape[i], strides[i], dilations[i], pads[i], pads[r + i]) for i in range(r))


def _col2im_type(x: TensorType, *, image_shape, block_shape, strides, pads, dilations) -> TensorType:
    r = len(image_shape)
    if r < 1 or len(block_shape) != r:
        raise IRValidationError(f"col2im: image_shape {image_shape} and block_shape {block_shape} must have one "
                                f"size per spatial dim")
    check_nd_attrs("col2im", r, pads=pads, strides=strides, dilations=dilations, image_shape=image_shape,
                   block_shape=block_shape)
    if not x.dtype.is_float:
        raise DTypeError(f"col2im takes float tensors, got {x.dtype}")
    if x.rank != 3:
        raise ShapeError(f"col2im: the input must be (N, C * prod(block_shape), L), got {x}")
    k = math.prod(block_shape)
    ck, length = x.shape[1], x.shape[2]
    counts = block_counts(image_shape, block_shape, strides, pads, dilations)
    if any(c < 1 for c in counts):
        raise ShapeError(f"col2im: no {block_shape} block fits the image {image_shape} (pads {pads}, strides {strides}, "
                         f"dilations {dilations})")
    if isinstance(ck, int) and ck % k:
        raise ShapeError(f"col2im: input dim 1 ({ck}) is not a multiple of prod(block_shape) = {k}")
    if isinstance(length, int) and length != math.prod(counts):
        raise ShapeError(f"col2im: input dim 2 ({length}) must be the number of blocks, {' x '.join(map(str, counts))} "
                         f"= {math.prod(counts)}")
    return TensorType(dtype=x.dtype, shape=(x.shape[0], ck // k if isinstance(ck, int) else None) + tuple(image_shape))


defop("col2im", _col2im_type, inputs=1, family="nn",
      attrs={"image_shape": Attr("ints"), "block_shape": Attr("ints"), "strides": Attr("ints"), "pads": Attr("ints"),
             "dilations": Attr("ints")},
      doc="ONNX Col2Im / F.fold: sliding blocks (N, C*prod(block), L) summed back into (N, C, *image).")
defbatch("col2im", fold_rule("col2im"))  # N is the op's own batch axis


def one_hot_kernel(c: int, block_shape, dtype) -> np.ndarray:
    """(C * K, 1, *block) weights of a grouped conv that copies tap k of channel c to channel c * K + k."""
    k = math.prod(block_shape)
    w = np.zeros((c * k, 1) + tuple(block_shape), dtype)
    taps = np.eye(k, dtype=dtype).reshape((k,) + tuple(block_shape))
    for ch in range(c):
        w[ch * k:(ch + 1) * k, 0] = taps
    return w


@defvjp("col2im")
def _col2im_vjp(g, x, *, out, image_shape, block_shape, strides, pads, dilations):
    c = out.type.shape[1]
    if not isinstance(c, int):
        raise ShapeError(f"col2im's gradient needs a static channel count, got {x.type}")
    w = one_hot_kernel(c, block_shape, x.type.dtype.numpy)
    cols = bind("conv", g, w, strides=strides, pads=pads, dilations=dilations, groups=c)  # im2col: (N, C*K, *counts)
    return (bind("reshape_like", cols, x),)


def col2im(x, image_shape, block_shape, strides=None, pads=None, dilations=None):
    """Sum sliding blocks back into an image: ONNX Col2Im, ``torch.nn.functional.fold``.
    ``x`` is (N, C * prod(block_shape), L), L the number of blocks; ``pads`` is ONNX's (all
    begins, then all ends). Differentiable (the gradient is im2col).

    >>> irf.col2im(irf.tensor(np.ones((1, 1, 4), np.float32)), (2, 2), (1, 1)).shape
    (1, 1, 2, 2)
    """
    r = len(image_shape)
    return bind("col2im", x, image_shape=tuple(image_shape), block_shape=tuple(block_shape),
                strides=tuple(strides or (1,) * r), pads=tuple(pads or (0,) * (2 * r)),
                dilations=tuple(dilations or (1,) * r))


def _col2im_dynamic_type(x: TensorType, image_shape: TensorType, block_shape: TensorType, *, strides, pads,
                         dilations) -> TensorType:
    for name, t in (("image_shape", image_shape), ("block_shape", block_shape)):
        if t.dtype != DType.int64 or t.rank != 1 or not isinstance(t.shape[0], int):
            raise ShapeError(f"col2im_dynamic: {name} must be an int64 vector of static length, got {t}")
    r = image_shape.shape[0]
    if block_shape.shape[0] != r or r < 1:
        raise ShapeError(f"col2im_dynamic: image_shape {image_shape} and block_shape {block_shape} must give one size "
                         f"per spatial dim")
    check_nd_attrs("col2im_dynamic", r, pads=pads, strides=strides, dilations=dilations)
    if not x.dtype.is_float:
        raise DTypeError(f"col2im takes float tensors, got {x.dtype}")
    if x.rank != 3:
        raise ShapeError(f"col2im_dynamic: the input must be (N, C * prod(block_shape), L), got {x}")
    return TensorType(dtype=x.dtype, shape=(x.shape[0], None) + (None,) * r)


# Not differentiable: the VJP (im2col, a conv with a one-hot kernel of block_shape) would need a
# kernel whose shape is a run-time value. ``col2im`` (sizes known when the graph is built, as
# ``irf.col2im`` and import with constant sizes give) is differentiable.
defop("col2im_dynamic", _col2im_dynamic_type, inputs=3, family="nn", differentiable=False,
      attrs={"strides": Attr("ints"), "pads": Attr("ints"), "dilations": Attr("ints")},
      doc="ONNX Col2Im with run-time image_shape / block_shape (int64 inputs); not differentiable.")
defbatch("col2im_dynamic", fold_rule("col2im_dynamic", folded=1))  # sizes must be unbatched (else a scan)


__all__ = ["col2im"]
