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
from irflow.ir.graph import Graph
from irflow.ir.types import TensorType
from irflow.ops.batching import LOOP_THIS, first_batched, fold_leading, fold_rule, materialize, unfold_leading
from irflow.ops.common import bind
from irflow.ops.conv import _check_bias, _check_groups
from irflow.ops.conv_nd import _float, _out_spatial, _spatial_rank, check_nd_attrs, out_dim
from irflow.ops.builder import GraphBuilder
from irflow.ops.registry import Attr, defbatch, defop, defvjp, get_op


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


# -- deform_conv ---------------------------------------------------------------------------------------

def _deform_conv_type(x: TensorType, w: TensorType, offset: TensorType, b: TensorType | None = None,
                      mask: TensorType | None = None, *, strides, pads, dilations, groups, offset_groups) -> TensorType:
    op = "deform_conv"
    r = _spatial_rank(op, x)
    check_nd_attrs(op, r, pads=pads, strides=strides, dilations=dilations)
    dtype = _float(op, x, w, offset, b, mask)
    if w.rank != x.rank or offset.rank != x.rank or (mask is not None and mask.rank != x.rank):
        raise ShapeError(f"{op}: weight (O, C/groups, *kernel), offset (N, offset_groups*K*{r}, *out) and mask "
                         f"(N, offset_groups*K, *out) must have rank {x.rank}; got {w}, {offset}, {mask}")
    c, (o, cg) = x.shape[1], w.shape[:2]
    _check_groups(op, groups, input=c, output=o)
    if isinstance(c, int) and isinstance(cg, int) and c != cg * groups:
        raise ShapeError(f"{op}: input has {c} channels but the weight {w.shape} expects {cg} x groups={groups}")
    if offset_groups < 1 or (isinstance(c, int) and c % offset_groups):
        raise ShapeError(f"{op}: offset_groups={offset_groups} must divide the {c} input channels")
    _check_bias(op, b, o)
    kernel = w.shape[2:]
    out = _out_spatial(op, x, kernel, strides, pads, dilations)
    k = math.prod(kernel) if all(isinstance(v, int) for v in kernel) else None
    for name, t, per in (("offset", offset, r), ("mask", mask, 1)):
        if t is None:
            continue
        want = (x.shape[0], offset_groups * k * per if k else None) + out
        if any(isinstance(a, int) and isinstance(e, int) and a != e for a, e in zip(t.shape, want)):
            raise ShapeError(f"{op}: {name} must be (N, offset_groups * prod(kernel){' * ' + str(r) if per > 1 else ''}, "
                             f"*out) = {want}, got {t.shape}")
    return TensorType(dtype=dtype, shape=(x.shape[0], o) + out)


defop("deform_conv", _deform_conv_type, inputs=(3, 5), family="nn",
      attrs={"strides": Attr("ints"), "pads": Attr("ints"), "dilations": Attr("ints"), "groups": Attr("int", default=1),
             "offset_groups": Attr("int", default=1)},
      doc="ONNX DeformConv: a conv whose taps move by learned offsets (bilinear, zeros outside), optional mask.")


def deform_conv_graph(types, attrs) -> Graph:
    """deform_conv written with differentiable ops (a Graph with one input per present input):
    the taps are ``grid_sample`` (linear, zeros, align_corners) of x per offset group at the
    moved positions, normalized to [-1, 1], then the mask, then one grouped matmul with the
    weight. The VJP differentiates this graph, so every input (x, weight, offset, bias, mask)
    gets its gradient from grid_sample's and matmul's rules."""
    x, w, offset, b, mask = types
    for t in (x, w, offset):
        if not t.is_static:
            raise ShapeError(f"deform_conv's gradient needs static shapes, got {t}")
    n, c, sizes = x.shape[0], x.shape[1], tuple(x.shape[2:])
    if 1 in sizes:
        raise ShapeError(f"deform_conv's gradient needs spatial sizes > 1 (it samples in normalized coordinates), got {x}")
    o, kernel, out = w.shape[0], tuple(w.shape[2:]), tuple(offset.shape[2:])
    r, k, p, og, groups = len(sizes), math.prod(kernel), math.prod(out), attrs["offset_groups"], attrs["groups"]
    dt = x.dtype.numpy
    taps = np.stack(np.meshgrid(*[np.arange(v) for v in kernel], indexing="ij"), axis=-1).reshape(k, 1, r)
    pos = np.stack(np.meshgrid(*[np.arange(v) for v in out], indexing="ij"), axis=-1).reshape(1, p, r)
    base = (pos * np.asarray(attrs["strides"]) - np.asarray(attrs["pads"][:r]) + taps * np.asarray(attrs["dilations"]))
    scale = 2.0 / (np.asarray(sizes, np.float64) - 1)  # align_corners: pixel u sits at 2u / (d - 1) - 1
    gb = GraphBuilder("deform_conv_taps")
    with gb:
        ins = {name: gb.input(name, t.dtype, t.shape) for name, t in zip(("x", "w", "offset", "b", "mask"), types)
               if t is not None}
        off = bind("transpose", bind("reshape", ins["offset"], shape=(n, og, k, r, p)), perm=(0, 1, 2, 4, 3))
        u = bind("add", off, base.astype(dt))                                         # (N, OG, K, P, r) pixels
        grid = bind("sub", bind("mul", u, scale.astype(dt)), np.asarray(1, dt))
        grid = bind("gather", grid, np.arange(r - 1, -1, -1, dtype=np.int64), axis=4)  # grid_sample lists x first
        grid = bind("reshape", grid, shape=(n * og, k * p) + (1,) * (r - 1) + (r,))
        xs = bind("reshape", ins["x"], shape=(n * og, c // og) + sizes)
        cols = bind("grid_sample", xs, grid, mode="linear", padding_mode="zeros", align_corners=1)
        cols = bind("reshape", cols, shape=(n, og, c // og, k, p))
        if "mask" in ins:
            cols = bind("mul", cols, bind("reshape", ins["mask"], shape=(n, og, 1, k, p)))
        cols = bind("reshape", cols, shape=(n, groups, (c // groups) * k, p))
        wm = bind("reshape", ins["w"], shape=(groups, o // groups, (c // groups) * k))
        y = bind("reshape", bind("matmul", wm, cols), shape=(n, o) + out)
        if "b" in ins:
            y = bind("add", y, bind("reshape", ins["b"], shape=(1, o) + (1,) * r))
        gb.output(y)
    return gb.build()


@defvjp("deform_conv")
def _deform_conv_vjp(g, *given, out, **attrs):
    inputs = (tuple(given) + (None, None))[:5]  # bias and mask may be omitted or None
    graph = deform_conv_graph(tuple(None if t is None else t.type for t in inputs), attrs)
    present = [t for t in inputs if t is not None]
    grads = iter(get_op("call").vjp(g, *present, out=out, graph=graph))
    return tuple(None if t is None else next(grads) for t in given)  # one per input the node has


@defbatch("deform_conv")
def _deform_conv_batch(inputs, dims, size, **attrs):
    # x, offset and mask carry the op's own batch axis N: a vmapped batch folds into it while the
    # weight and bias are shared; a batched weight runs in a scan.
    x, w, offset, b, mask = (list(inputs) + [None, None])[:5]
    dims = (list(dims) + [None, None])[:5]
    if dims[1] is not None or dims[3] is not None:
        return LOOP_THIS
    per_example = [(t, d) for t, d in ((x, dims[0]), (offset, dims[2]), (mask, dims[4]))]
    like = first_batched([t for t, _ in per_example], [d for _, d in per_example])
    xf, of, mf = (None if t is None else fold_leading(materialize(t, d, size, like)) for t, d in per_example)
    y = bind("deform_conv", xf, w, of, b, mf, **attrs)
    return unfold_leading(y, materialize(x, dims[0], size, like)), 0


def deform_conv(x, weight, offset, bias=None, mask=None, strides=None, pads=None, dilations=None, groups: int = 1,
                offset_groups: int = 1):
    """Deformable convolution (ONNX DeformConv, torchvision's ``deform_conv2d``): tap k of output
    position p reads x bilinearly (zeros outside) at p * stride - pad + k * dilation + offset, scaled
    by ``mask`` when given (DCNv2). ``offset`` is (N, offset_groups * prod(kernel) * r, *out), the r
    coordinates of each tap in dim order (y before x); ``pads`` is ONNX's (begins, then ends).
    Differentiable wrt every input (through its grid_sample form, ``deform_conv_graph``).

    >>> x = irf.tensor(np.arange(9.0, dtype=np.float32).reshape(1, 1, 3, 3))
    >>> w = irf.tensor(np.ones((1, 1, 1, 1), np.float32))
    >>> off = irf.tensor(np.full((1, 2, 3, 3), 0.5, np.float32))   # every tap half a pixel down-right
    >>> irf.deform_conv(x, w, off).numpy()[0, 0]
    array([[2.  , 3.  , 1.75],
           [5.  , 6.  , 3.25],
           [3.25, 3.75, 2.  ]], dtype=float32)
    """
    r = x.ndim - 2 if hasattr(x, "ndim") else len(np.shape(x)) - 2
    return bind("deform_conv", x, weight, offset, bias, mask, strides=tuple(strides or (1,) * r),
                pads=tuple(pads or (0,) * (2 * r)), dilations=tuple(dilations or (1,) * r), groups=groups,
                offset_groups=offset_groups)


__all__ = ["col2im", "deform_conv"]
