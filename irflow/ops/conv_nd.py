"""N-D convolutions and pooling (1, 2 or 3 spatial dims, channels first), with gradient ops.

The 2-D ops of ``conv.py`` keep their tuned kernels; these ops are the general case: 3-D
models (``Conv3d``, ``MaxPool3d``), pooling with dilations, and anything ``conv.py``'s
(h, w) attributes cannot say. Attributes are ONNX's canonical form: ``strides``,
``dilations``, ``kernel_size`` and ``output_padding`` have one int per spatial dim;
``pads`` has 2r ints, all the begins then all the ends (ONNX's ``pads``). No "same": the
importer and the public functions resolve it to explicit pads.

Public: ``convolution`` (op ``conv``; TensorFlow's name, ``irf.conv`` is not free), ``conv_transpose``, ``max_pool``, ``avg_pool``. Internal (gradients):
``conv_weight_grad(x, g)``, ``max_pool_grad(x, g)`` / ``max_pool_pick(x, y)`` (route to / read
at each window's first maximum, each other's transpose), ``avg_pool_grad(g, x)``; ``max_pool_indices`` is ONNX MaxPool's second output (flat positions,
not differentiable), for imported models that use it. Each gradient op has a
VJP, so gradients of gradients work, as for the 2-D family. ``avg_pool`` averages over the
real (not padding) elements of each window.

>>> y = irf.convolution(x, w, strides=(1, 2, 2), pads=(1, 1, 1, 1, 1, 1))    # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from irflow.errors import DTypeError, IrflowError, IRValidationError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import Dim, TensorType
from irflow.ops.common import bind
from irflow.ops.batching import LOOP, fold_rule
from irflow.ops.conv import _check_bias, _check_groups, conv_batch_rule, weight_grad_batch_rule
from irflow.ops.registry import Attr, defbatch, defop, defvjp


def _ints(op: str, name: str, value: Any, n: int, minimum: int) -> None:
    if not (isinstance(value, tuple) and len(value) == n and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value)):
        raise IRValidationError(f"{op}: {name} must be {n} ints >= {minimum}, got {value!r}")


def check_nd_attrs(op: str, r: int, *, pads=None, **tuples) -> None:
    """Attribute tuples of the right length (one per spatial dim; pads 2r) and range."""
    for name, value in tuples.items():
        _ints(op, name, value, r, 0 if name == "output_padding" else 1)
    if pads is not None:
        _ints(op, "pads", pads, 2 * r, 0)


def _spatial_rank(op: str, x: TensorType) -> int:
    r = x.rank - 2
    if r < 1:
        raise ShapeError(f"{op}: input must be (N, C, *spatial) with at least one spatial dim, got {x}")
    return r


def _float(op: str, *types: TensorType | None) -> Any:
    present = [t for t in types if t is not None]
    if len({t.dtype for t in present}) > 1:
        raise DTypeError(f"{op}: inputs must share one float dtype, got {', '.join(str(t.dtype) for t in present)}")
    if not present[0].dtype.is_float:
        raise DTypeError(f"{op} takes float tensors, got {present[0].dtype}")
    return present[0].dtype


def out_dim(size: Dim, k: Dim, s: int, d: int, before: int, after: int) -> Dim:
    if not isinstance(k, int):
        return None
    if not isinstance(size, int):
        return size if s == 1 and before + after == d * (k - 1) else None
    return (size + before + after - d * (k - 1) - 1) // s + 1


def _out_spatial(op: str, x: TensorType, kernel: Sequence[Dim], strides, pads, dilations) -> tuple:
    r = len(strides)
    dims = tuple(out_dim(x.shape[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[r + i]) for i in range(r))
    if any(isinstance(d, int) and d <= 0 for d in dims):
        raise ShapeError(f"{op}: output would be empty: spatial size {x.shape[2:]}, kernel {tuple(kernel)}, "
                         f"strides {strides}, dilations {dilations}, pads {pads}")
    return dims


# -- conv -----------------------------------------------------------------------------------------
_CONV_ATTRS = {"strides": Attr("ints"), "pads": Attr("ints"), "dilations": Attr("ints"), "groups": Attr("int", default=1)}


def _conv_type(x: TensorType, w: TensorType, b: TensorType | None = None, *, strides, pads, dilations, groups):
    op = "conv"
    r = _spatial_rank(op, x)
    check_nd_attrs(op, r, pads=pads, strides=strides, dilations=dilations)
    dtype = _float(op, x, w, b)
    if w.rank != x.rank:
        raise ShapeError(f"{op}: weight (O, C/groups, *kernel) must have rank {x.rank}, got {w}")
    c, (o, cg) = x.shape[1], w.shape[:2]
    _check_groups(op, groups, input=c, output=o)
    if isinstance(c, int) and isinstance(cg, int) and c != cg * groups:
        raise ShapeError(f"{op}: input has {c} channels but the weight {w.shape} expects {cg} x groups={groups}")
    _check_bias(op, b, o)
    return TensorType(dtype=dtype, shape=(x.shape[0], o) + _out_spatial(op, x, w.shape[2:], strides, pads, dilations))


defop("conv", _conv_type, inputs=(2, 3), attrs=_CONV_ATTRS, family="nn",
      doc="N-D convolution (cross-correlation) of (N, C, *S) x with (O, C/groups, *K) weight, optional bias.")


def _static_kernel(op: str, w) -> tuple[int, ...]:
    k = tuple(w.shape[2:])
    if not all(isinstance(d, int) for d in k):
        raise IrflowError(f"{op} gradient: needs a static kernel size, got weight shape {w.shape}")
    return k


def _output_padding(op: str, sizes, kernel, strides, pads, dilations) -> tuple[int, ...]:
    """The conv_transpose output_padding that gives back exactly ``sizes``."""
    r, out = len(strides), []
    for i in range(r):
        if strides[i] == 1:
            out.append(0)
        elif isinstance(sizes[i], int):
            out.append((sizes[i] + pads[i] + pads[r + i] - dilations[i] * (kernel[i] - 1) - 1) % strides[i])
        else:
            raise IrflowError(f"{op} gradient: needs static spatial sizes when strides > 1, got {sizes}")
    return tuple(out)


def _bias_grad(g, bias) -> list:
    return [None if b is None else bind("reduce_sum", g, axes=(0,) + tuple(range(2, g.ndim)), keepdims=False)
            for b in bias]


defbatch("conv", conv_batch_rule("conv", transpose=False))  # see conv.py: fold into N, or grouped


@defvjp("conv")
def _conv_vjp(g, x, w, *bias, out, strides, pads, dilations, groups):
    k = _static_kernel("conv", w)
    out_pad = _output_padding("conv", x.shape[2:], k, strides, pads, dilations)
    geo = dict(strides=strides, pads=pads, dilations=dilations, groups=groups)
    gx = bind("conv_transpose", g, w, output_padding=out_pad, **geo)
    gw = bind("conv_weight_grad", x, g, kernel_size=k, **geo)
    return (gx, gw, *_bias_grad(g, bias))


def _tuple(value: Any, r: int, name: str, op: str, minimum: int = 1) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value),) * r
    value = tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else value
    _ints(op, name, value, r, minimum)
    return value


def _pads(value: Any, r: int, op: str) -> tuple[int, ...]:
    """An int, r ints (symmetric) or 2r ints (begins then ends)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * (2 * r)
    if isinstance(value, (tuple, list)) and len(value) == r:
        value = tuple(value) * 2
    value = tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else value
    _ints(op, "pads", value, 2 * r, 0)
    return value


def _rank_of(x: Any, op: str) -> int:
    r = len(x.shape) - 2
    if r < 1:
        raise ShapeError(f"{op}: input must be (N, C, *spatial), got shape {tuple(x.shape)}")
    return r


def convolution(x: Any, w: Any, b: Any = None, strides: Any = 1, pads: Any = 0, dilations: Any = 1,
                groups: int = 1) -> Any:
    """N-D convolution of ``x`` (N, C, *S) with ``w`` (O, C/groups, *K), plus bias ``b`` (O,).

    ``strides``/``dilations``: an int or one per spatial dim; ``pads``: an int, one per dim
    (both sides) or 2r ints (all begins, then all ends, as ONNX).

    >>> y = irf.convolution(np.ones((1, 1, 4, 4, 4), "float32"), np.ones((2, 1, 3, 3, 3), "float32"))
    >>> y.shape
    (1, 2, 2, 2, 2)
    """
    r = _rank_of(x, "conv")
    attrs = dict(strides=_tuple(strides, r, "strides", "conv"), pads=_pads(pads, r, "conv"),
                 dilations=_tuple(dilations, r, "dilations", "conv"), groups=int(groups))
    return bind("conv", x, w, **attrs) if b is None else bind("conv", x, w, b, **attrs)


# -- conv_transpose -------------------------------------------------------------------------------
def _conv_transpose_type(x: TensorType, w: TensorType, b: TensorType | None = None, *, strides, pads,
                         output_padding, dilations, groups):
    op = "conv_transpose"
    r = _spatial_rank(op, x)
    check_nd_attrs(op, r, pads=pads, strides=strides, dilations=dilations, output_padding=output_padding)
    if any(p >= s and p >= d for p, s, d in zip(output_padding, strides, dilations)):
        raise IRValidationError(f"{op}: output_padding {output_padding} must be smaller than strides {strides} "
                                f"or dilations {dilations}")
    dtype = _float(op, x, w, b)
    if w.rank != x.rank:
        raise ShapeError(f"{op}: weight (C, O/groups, *kernel) must have rank {x.rank}, got {w}")
    c, (wc, og) = x.shape[1], w.shape[:2]
    _check_groups(op, groups, input=c)
    if isinstance(c, int) and isinstance(wc, int) and c != wc:
        raise ShapeError(f"{op}: input has {c} channels but the weight {w.shape} expects {wc}")
    o = og * groups if isinstance(og, int) else None
    _check_bias(op, b, o)
    dims = []
    for i in range(r):
        size, k = x.shape[2 + i], w.shape[2 + i]
        if isinstance(size, int) and isinstance(k, int):
            d = (size - 1) * strides[i] - pads[i] - pads[r + i] + dilations[i] * (k - 1) + 1 + output_padding[i]
            if d <= 0:
                raise ShapeError(f"{op}: output would be empty for input {x.shape}, weight {w.shape}, pads {pads}")
        else:
            d = None
        dims.append(d)
    return TensorType(dtype=dtype, shape=(x.shape[0], o) + tuple(dims))


defop("conv_transpose", _conv_transpose_type, inputs=(2, 3),
      attrs={**_CONV_ATTRS, "output_padding": Attr("ints")}, family="nn",
      doc="N-D transposed convolution (the adjoint of conv), (C, O/groups, *K) weight, optional bias.")


defbatch("conv_transpose", conv_batch_rule("conv_transpose", transpose=True))


@defvjp("conv_transpose")
def _conv_transpose_vjp(g, x, w, *bias, out, strides, pads, output_padding, dilations, groups):
    k = _static_kernel("conv_transpose", w)
    geo = dict(strides=strides, pads=pads, dilations=dilations, groups=groups)
    return (bind("conv", g, w, **geo), bind("conv_weight_grad", g, x, kernel_size=k, **geo), *_bias_grad(g, bias))


def conv_transpose(x: Any, w: Any, b: Any = None, strides: Any = 1, pads: Any = 0, output_padding: Any = 0,
                   dilations: Any = 1, groups: int = 1) -> Any:
    """N-D transposed convolution of ``x`` (N, C, *S) with ``w`` (C, O/groups, *K), as PyTorch's
    ``conv_transpose3d``: size ``(S - 1) * stride - pad_begin - pad_end + dilation * (K - 1) + 1 +
    output_padding`` per dim.

    >>> irf.conv_transpose(np.ones((1, 2, 3, 3, 3), "float32"), np.ones((2, 1, 2, 2, 2), "float32"), strides=2).shape
    (1, 1, 6, 6, 6)
    """
    r = _rank_of(x, "conv_transpose")
    op = "conv_transpose"
    attrs = dict(strides=_tuple(strides, r, "strides", op), pads=_pads(pads, r, op),
                 output_padding=_tuple(output_padding, r, "output_padding", op, minimum=0),
                 dilations=_tuple(dilations, r, "dilations", op), groups=int(groups))
    return bind(op, x, w, **attrs) if b is None else bind(op, x, w, b, **attrs)


# -- conv_weight_grad (internal) ------------------------------------------------------------------
def _conv_weight_grad_type(x: TensorType, g: TensorType, *, kernel_size, strides, pads, dilations, groups):
    op = "conv_weight_grad"
    r = _spatial_rank(op, x)
    check_nd_attrs(op, r, pads=pads, kernel_size=kernel_size, strides=strides, dilations=dilations)
    dtype = _float(op, x, g)
    if g.rank != x.rank:
        raise ShapeError(f"{op}: output gradient must have rank {x.rank}, got {g}")
    c, o = x.shape[1], g.shape[1]
    _check_groups(op, groups, input=c, output=o)
    want = _out_spatial(op, x, kernel_size, strides, pads, dilations)
    if any(isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(want, g.shape[2:])):
        raise ShapeError(f"{op}: output gradient {g.shape} does not match the conv output size {want}")
    return TensorType(dtype=dtype, shape=(o, c // groups if isinstance(c, int) else None) + tuple(kernel_size))


defop("conv_weight_grad", _conv_weight_grad_type, inputs=2, attrs={**_CONV_ATTRS, "kernel_size": Attr("ints")},
      family="nn", doc="Internal: the weight gradient of conv, from its input x and output gradient g.")


defbatch("conv_weight_grad", weight_grad_batch_rule("conv_weight_grad"))


@defvjp("conv_weight_grad")
def _conv_weight_grad_vjp(gw, x, g, *, out, kernel_size, strides, pads, dilations, groups):
    # bilinear: <gw, dW(x, g)> = <g, conv(x, gw)>
    out_pad = _output_padding("conv_weight_grad", x.shape[2:], kernel_size, strides, pads, dilations)
    geo = dict(strides=strides, pads=pads, dilations=dilations, groups=groups)
    return bind("conv_transpose", g, gw, output_padding=out_pad, **geo), bind("conv", x, gw, **geo)


# -- pooling --------------------------------------------------------------------------------------
_POOL_ATTRS = {"kernel_size": Attr("ints"), "strides": Attr("ints"), "pads": Attr("ints"), "dilations": Attr("ints")}


def pool_type(op: str, x: TensorType, kernel_size, strides, pads, dilations, integers: bool = False) -> TensorType:
    r = _spatial_rank(op, x)
    check_nd_attrs(op, r, pads=pads, kernel_size=kernel_size, strides=strides, dilations=dilations)
    if not (integers and x.dtype in (DType.int8, DType.uint8)):  # ONNX MaxPool's integer types
        _float(op, x)
    for i, p in enumerate(pads):
        if p >= dilations[i % r] * (kernel_size[i % r] - 1) + 1:
            raise ShapeError(f"{op}: each pad must be smaller than the (dilated) kernel {kernel_size}, got pads {pads}")
    return TensorType(dtype=x.dtype, shape=x.shape[:2] + _out_spatial(op, x, kernel_size, strides, pads, dilations))


def _pool_like_type(op: str, x: TensorType, y: TensorType, y_is: str, **attrs) -> TensorType:
    pooled = pool_type(op, x, **attrs)
    want = x if y_is == "input" else pooled
    _float(op, x, y)
    if y.rank != x.rank or any(isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(want.shape, y.shape)):
        raise ShapeError(f"{op}: second input must have the {y_is} shape {want.shape}, got {y.shape}")
    return pooled


# max_pool also takes int8/uint8 (as ONNX MaxPool; padding counts as the dtype's minimum):
# autodiff differentiates float values only, so an integer pool never reaches the VJP.
defop("max_pool", lambda x, **a: pool_type("max_pool", x, integers=True, **a), attrs=_POOL_ATTRS, family="nn",
      doc="N-D max pooling (padding counts as -inf, or the integer dtype's minimum), with dilations.")
defop("max_pool_grad", lambda x, g, **a: (_pool_like_type("max_pool_grad", x, g, "output", **a), x)[1], inputs=2,
      attrs=_POOL_ATTRS, family="nn", doc="Internal: routes g to the first maximum of each max_pool window of x.")
defop("max_pool_pick", lambda x, y, **a: _pool_like_type("max_pool_pick", x, y, "input", **a), inputs=2,
      attrs=_POOL_ATTRS, family="nn", doc="Internal: y read at the first maximum of each max_pool window of x.")
# The winning position depends on x only through comparisons: no gradient flows to x.
defvjp("max_pool", lambda g, x, *, out, **a: bind("max_pool_grad", x, g, **a))
defvjp("max_pool_grad", lambda gx, x, g, *, out, **a: (None, bind("max_pool_pick", x, gx, **a)))
defvjp("max_pool_pick", lambda gp, x, y, *, out, **a: (None, bind("max_pool_grad", x, gp, **a)))

defop("avg_pool", lambda x, **a: pool_type("avg_pool", x, **a), attrs=_POOL_ATTRS, family="nn",
      doc="N-D average pooling over the real (not padding) elements of each window, with dilations.")
defop("avg_pool_grad", lambda g, x, **a: (_pool_like_type("avg_pool_grad", x, g, "output", **a), x)[1], inputs=2,
      attrs=_POOL_ATTRS, family="nn", doc="Internal: the transpose of avg_pool (x gives the shape).")
defvjp("avg_pool", lambda g, x, *, out, **a: bind("avg_pool_grad", g, x, **a))
defvjp("avg_pool_grad", lambda gx, g, x, *, out, **a: (bind("avg_pool", gx, **a), None))
# Pooling works on each (image, channel) alone: the batch folds into N (B * N images).
for _op in ("max_pool", "max_pool_grad", "max_pool_pick", "avg_pool", "avg_pool_grad"):
    defbatch(_op, fold_rule(_op))


def _max_pool_indices_type(x: TensorType, *, storage_order=0, **attrs) -> TensorType:
    if storage_order not in (0, 1):
        raise IRValidationError(f"max_pool_indices: storage_order must be 0 (row-major) or 1 (column-major), "
                                f"got {storage_order}")
    y = pool_type("max_pool_indices", x, **attrs)
    return TensorType(dtype=DType.int64, shape=y.shape)


defop("max_pool_indices", _max_pool_indices_type, attrs={**_POOL_ATTRS, "storage_order": Attr("int", default=0)},
      family="nn", differentiable=False,
      doc="ONNX MaxPool's Indices: each window's first maximum as a flat position in x; storage_order=1 "
          "counts the spatial dims column-major (N and C stay outermost), as ONNX's storage_order.")
# Flat positions count across N and C, so folding the batch into N would shift them: a loop.
defbatch("max_pool_indices", LOOP)


def _pool_attrs(x: Any, op: str, kernel_size, strides, pads, dilations) -> dict:
    r = _rank_of(x, op)
    k = _tuple(kernel_size, r, "kernel_size", op)
    return dict(kernel_size=k, strides=k if strides is None else _tuple(strides, r, "strides", op),
                pads=_pads(pads, r, op), dilations=_tuple(dilations, r, "dilations", op))


def max_pool(x: Any, kernel_size: Any, strides: Any = None, pads: Any = 0, dilations: Any = 1) -> Any:
    """N-D max pooling of ``x`` (N, C, *S); ``strides`` default to the kernel; padding is -inf.

    >>> irf.max_pool(np.ones((1, 1, 4, 4, 4), "float32"), 2).shape
    (1, 1, 2, 2, 2)
    """
    return bind("max_pool", x, **_pool_attrs(x, "max_pool", kernel_size, strides, pads, dilations))


def avg_pool(x: Any, kernel_size: Any, strides: Any = None, pads: Any = 0, dilations: Any = 1) -> Any:
    """N-D average pooling of ``x`` (N, C, *S) over the real elements of each window.

    >>> irf.avg_pool(np.ones((1, 1, 4, 4, 4), "float32"), 2).shape
    (1, 1, 2, 2, 2)
    """
    return bind("avg_pool", x, **_pool_attrs(x, "avg_pool", kernel_size, strides, pads, dilations))


def window_counts(sizes, kernel_size, strides, pads, dilations, out_sizes, dtype) -> np.ndarray:
    """(*out) number of real (not padding) elements in each pooling window."""
    per_axis = []
    for i in range(len(sizes)):
        starts = np.arange(out_sizes[i]) * strides[i] - pads[i]
        taps = starts[:, None] + np.arange(kernel_size[i])[None, :] * dilations[i]
        per_axis.append(((taps >= 0) & (taps < sizes[i])).sum(axis=1))
    counts = per_axis[0]
    for c in per_axis[1:]:
        counts = np.multiply.outer(counts, c)
    return np.asarray(counts, dtype=dtype)


__all__ = ["convolution", "conv_transpose", "max_pool", "avg_pool"]
