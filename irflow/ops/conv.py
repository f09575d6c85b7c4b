"""2-D convolutions and pooling on NCHW tensors, with their gradient ops.

Public ops: ``conv2d`` (OIHW weight), ``conv_transpose2d`` (IOHW weight, as PyTorch and ONNX
ConvTranspose), ``max_pool2d``, ``avg_pool2d``.

Internal ops that only gradients emit, each lowering to standard ONNX and each with its own
VJP rule, so gradients of gradients work:

- ``conv2d_weight_grad(x, g)``: the weight gradient of conv2d. It is bilinear in (x, g); its
  VJP is a conv_transpose2d (for x) and a conv2d (for g).
- ``max_pool2d_grad(x, g)``: routes g to the first maximum of each window of x (as PyTorch).
  ``max_pool2d_pick(x, y)``: reads y at those same positions. Each is the other's transpose.
- ``avg_pool2d_grad(g, x)``: spreads g over each window (x only gives the shape); its
  transpose is avg_pool2d itself.

Attributes are stored in one canonical form (the public functions normalize what users
write): ``strides``/``dilations``/``kernel_size``/``output_padding`` are pairs (h, w);
``padding`` is four ints (top, left, bottom, right), or the string "same".

"same" padding is TensorFlow's SAME: output size ceil(size / stride), total padding
``max((out - 1) * stride + dilation * (k - 1) + 1 - size, 0)``, the odd pixel at the bottom or
right. For stride 1 that is PyTorch's padding="same".

Attribute values that are wrong whatever the shapes (a padding string other than "same", a
stride of 0) raise IRValidationError; values that do not fit the shapes (groups not dividing
the channels, an empty output) raise ShapeError.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from irflow.errors import DTypeError, IrflowError, IRValidationError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import Dim, TensorType
from irflow.ops.common import bind
from irflow.ops.batching import LOOP_THIS, fold_rule, materialize, merge_axes, move_axis, split_batch, to_front
from irflow.ops.registry import Attr, defbatch, defop, defvjp

# -- attribute helpers (shared with the kernels and lowerings) --------------------------------


def _is_int(v: Any, minimum: int) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= minimum


def pair(value: Any, name: str, op: str, *, minimum: int = 1) -> tuple[int, int]:
    """``3 -> (3, 3)``; a pair stays; anything else is an IRValidationError naming ``op``."""
    if _is_int(value, minimum):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v, minimum) for v in value):
        return (int(value[0]), int(value[1]))
    raise IRValidationError(f"{op}: {name} must be an int or a pair of ints >= {minimum}, got {value!r}")


def _groups(groups: Any) -> Any:
    return int(groups) if _is_int(groups, 1) else groups  # anything else: the type rule says why


def padding_attr(padding: Any, op: str) -> str | tuple[int, int, int, int]:
    """Normalize a user's padding: "same", "valid" (no padding), an int, a pair (h, w) or four
    ints (top, left, bottom, right)."""
    if isinstance(padding, str):
        if padding.lower() == "same":
            return "same"
        if padding.lower() == "valid":
            return (0, 0, 0, 0)
    elif _is_int(padding, 0):
        return (int(padding),) * 4
    elif isinstance(padding, (tuple, list)) and len(padding) in (2, 4) and all(_is_int(p, 0) for p in padding):
        p = [int(v) for v in padding]
        return (p[0], p[1], p[0], p[1]) if len(p) == 2 else (p[0], p[1], p[2], p[3])
    raise IRValidationError(
        f"{op}: padding must be 'same', 'valid', an int, a pair (h, w) or four ints "
        f"(top, left, bottom, right), all >= 0; got {padding!r}"
    )


def check_conv_attrs(op: str, *, padding: Any = None, allow_same: bool = True, **pairs: Any) -> None:
    """Attrs as stored in the IR: pairs of ints and canonical padding. Type rules and kernels
    (whose eager calls skip the type rule) both check them."""
    for name, value in pairs.items():
        minimum = 0 if name == "output_padding" else 1
        if not (isinstance(value, tuple) and len(value) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value)):
            raise IRValidationError(f"{op}: {name} must be a pair of ints >= {minimum}, got {value!r}")
    if padding is None:
        return
    if padding == "same" and allow_same:
        return
    if not (isinstance(padding, tuple) and len(padding) == 4 and all(
            isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in padding)):
        allowed = "'same' or " if allow_same else ""
        raise IRValidationError(f"{op}: padding must be {allowed}four ints (top, left, bottom, right) >= 0, got {padding!r}")


def same_pads(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF SAME padding (before, after) of one spatial dim."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_pads(padding: Any, hw: tuple[Dim, Dim], khw: tuple[Dim, Dim], strides: tuple[int, int],
                 dilations: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Explicit (top, left, bottom, right) pads, or None when "same" depends on an unknown size."""
    if padding != "same":
        return tuple(padding)  # type: ignore[return-value]
    pads = []
    for size, k, s, d in zip(hw, khw, strides, dilations):
        if not isinstance(k, int):
            return None
        if s == 1:  # the total does not depend on the size
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))
        elif isinstance(size, int):
            pads.append(same_pads(size, k, s, d))
        else:
            return None
    (t, b), (l, r) = pads
    return (t, l, b, r)


def conv_out_dim(size: Dim, k: Dim, stride: int, dilation: int, before: int | None, after: int | None,
                 same: bool = False) -> Dim:
    """Output size of one spatial dim of a convolution or pool (None when unknown)."""
    if same and stride == 1:
        return size  # keeps a symbolic size symbolic
    if same and isinstance(size, int):
        return -(-size // stride)
    if not isinstance(k, int) or before is None:
        return None
    if not isinstance(size, int):
        return size if stride == 1 and before + after == dilation * (k - 1) else None
    return (size + before + after - dilation * (k - 1) - 1) // stride + 1


def _spatial_out(op: str, x: TensorType, khw: tuple[Dim, Dim], strides, padding, dilations) -> tuple[Dim, Dim]:
    pads = resolve_pads(padding, x.shape[2:], khw, strides, dilations)
    dims = []
    for i in range(2):
        before, after = (None, None) if pads is None else (pads[i], pads[i + 2])
        d = conv_out_dim(x.shape[2 + i], khw[i], strides[i], dilations[i], before, after, same=padding == "same")
        if isinstance(d, int) and d <= 0:
            raise ShapeError(
                f"{op}: output would be empty: spatial size {x.shape[2:]}, kernel {khw}, strides {strides}, "
                f"dilations {dilations}, padding {padding}"
            )
        dims.append(d)
    return dims[0], dims[1]


def _float_dtype(op: str, *types: TensorType | None) -> DType:
    present = [t for t in types if t is not None]
    dtypes = {t.dtype for t in present}
    if len(dtypes) > 1:
        raise DTypeError(f"{op}: inputs must share one float dtype, got {', '.join(str(t.dtype) for t in present)}")
    dtype = present[0].dtype
    if not dtype.is_float:
        raise DTypeError(f"{op} takes float tensors, got {dtype}")
    return dtype


def _rank(op: str, t: TensorType, rank: int, what: str) -> None:
    if t.rank != rank:
        raise ShapeError(f"{op}: {what} must have rank {rank}, got {t}")


def _known(*dims: Dim) -> bool:
    return all(isinstance(d, int) for d in dims)


def _check_groups(op: str, groups: Any, **channels: Dim) -> None:
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise IRValidationError(f"{op}: groups must be an int >= 1, got {groups!r}")
    for what, c in channels.items():
        if isinstance(c, int) and c % groups:
            raise ShapeError(f"{op}: groups={groups} does not divide the {c} {what} channels")


def _check_bias(op: str, b: TensorType | None, channels: Dim) -> None:
    if b is None:
        return
    if b.rank != 1 or (_known(b.shape[0], channels) and b.shape[0] != channels):
        raise ShapeError(f"{op}: bias must have shape ({channels},), got {b}")


def pool_window_counts(x_hw, kernel_size, strides, pads, out_hw, dtype) -> np.ndarray:
    """(Ho, Wo) number of real (not padding) elements in each pooling window."""
    per_axis = []
    for axis in range(2):
        size, k, s, before, n_out = x_hw[axis], kernel_size[axis], strides[axis], pads[axis], out_hw[axis]
        start = np.arange(n_out) * s - before
        per_axis.append(np.minimum(start + k, size) - np.maximum(start, 0))
    return np.multiply.outer(per_axis[0], per_axis[1]).astype(dtype)


# -- conv2d ---------------------------------------------------------------------------------

_CONV_ATTRS = {
    "strides": Attr("ints", default=(1, 1)),
    "padding": Attr("any", default=(0, 0, 0, 0)),
    "dilations": Attr("ints", default=(1, 1)),
    "groups": Attr("int", default=1),
}


def _conv2d_type(x: TensorType, w: TensorType, b: TensorType | None = None, *, strides, padding, dilations,
                 groups) -> TensorType:
    op = "conv2d"
    check_conv_attrs(op, padding=padding, strides=strides, dilations=dilations)
    dtype = _float_dtype(op, x, w, b)
    _rank(op, x, 4, "input (N, C, H, W)")
    _rank(op, w, 4, "weight (O, C/groups, kh, kw)")
    c, (o, cg) = x.shape[1], w.shape[:2]
    _check_groups(op, groups, input=c, output=o)
    if _known(c, cg) and c != cg * groups:
        raise ShapeError(
            f"{op}: input has {c} channels but the weight {w.shape} expects {cg} x groups={groups} = {cg * groups}"
        )
    _check_bias(op, b, o)
    h, wd = _spatial_out(op, x, w.shape[2:], strides, padding, dilations)
    return TensorType(dtype=dtype, shape=(x.shape[0], o, h, wd))


defop("conv2d", _conv2d_type, inputs=(2, 3), attrs=_CONV_ATTRS, family="nn",
      doc="2-D convolution (cross-correlation) of NCHW x with OIHW weight, optional bias (O,).")


def _output_padding(op: str, hw: tuple[Dim, Dim], khw: tuple[Dim, Dim], strides, pads, dilations) -> tuple[int, int]:
    """The conv_transpose2d output_padding that gives back exactly the size ``hw``."""
    out = []
    for size, k, s, d, before, after in zip(hw, khw, strides, dilations, pads[:2], pads[2:]):
        if s == 1:
            out.append(0)
        elif isinstance(size, int) and isinstance(k, int):
            out.append((size + before + after - d * (k - 1) - 1) % s)
        else:
            raise IrflowError(f"{op} gradient: needs a static spatial size when strides > 1, got {hw}")
    return out[0], out[1]


def _explicit_pads(op: str, padding, hw, khw, strides, dilations) -> tuple[int, int, int, int]:
    pads = resolve_pads(padding, hw, khw, strides, dilations)
    if pads is None:
        raise IrflowError(f"{op} gradient: padding='same' with strides {strides} needs a static spatial size, got {hw}")
    return pads


def _kernel_hw(op: str, w) -> tuple[int, int]:
    kh, kw = w.shape[2:]
    if not _known(kh, kw):
        raise IrflowError(f"{op} gradient: needs a static kernel size, got weight shape {w.shape}")
    return kh, kw


def _conv_input_grad(g, w, like_hw, khw, *, strides, pads, dilations, groups):
    """The gradient of conv2d with respect to its input: a conv_transpose2d of g by w."""
    out_pad = _output_padding("conv2d", like_hw, khw, strides, pads, dilations)
    return bind("conv_transpose2d", g, w, strides=strides, padding=pads, output_padding=out_pad,
                dilations=dilations, groups=groups)


@defvjp("conv2d")
def _conv2d_vjp(g, x, w, *bias, out, strides, padding, dilations, groups):
    khw = _kernel_hw("conv2d", w)
    pads = _explicit_pads("conv2d", padding, x.shape[2:], khw, strides, dilations)
    geometry = dict(strides=strides, padding=pads, dilations=dilations, groups=groups)
    gx = _conv_input_grad(g, w, x.shape[2:], khw, strides=strides, pads=pads, dilations=dilations, groups=groups)
    gw = bind("conv2d_weight_grad", x, g, kernel_size=khw, **geometry)
    return (gx, gw, *[None if b is None else bind("reduce_sum", g, axes=(0, 2, 3), keepdims=False) for b in bias])


def _add_batched_bias(y, dy, b, db):
    """A conv output y (batched at dy, or not) + a batched bias (B, O) laid out as (B, 1, O, 1, ...)."""
    y = to_front(y, dy)
    spatial = y.type.rank - 2 - (dy is not None)
    return y + bind("expand_dims", to_front(b, db), axes=(1,) + tuple(range(3, 3 + spatial))), 0


def conv_batch_rule(op: str, transpose: bool):
    """The rule of conv2d / conv_transpose2d (and the N-D conv / conv_transpose of conv_nd.py).

    Only x batched: the batch folded into N, one conv on B * N images. Batched weights: the
    batch folded into the channels, x (N, B * C, H, W) and w (B * O, ...) (conv_transpose2d:
    (B * C, ...)), one conv with B * groups groups -> (N, B * O, Ho, Wo) -> batch axis 1. An
    unbatched x with groups == 1 needs no copy of x: the B weights are just B times the filters.
    """

    def rule(inputs, dims, size, **attrs):
        (x, w, *rest), (dx, dw, *drest) = inputs, dims
        b, db = (rest[0], drest[0]) if rest else (None, None)
        if dw is None:
            if db is None:
                return fold_rule(op, folded=1)(inputs, dims, size, **attrs)
            # only x and the bias differ per example: the conv without the bias, then add it
            y, dy = rule([x, w], [dx, None], size, **attrs) if dx is not None else (bind(op, x, w, **attrs), None)
            return _add_batched_bias(y, dy, b, db)
        groups = attrs["groups"]
        wf = to_front(w, dw)
        bias = [] if b is None else [merge_axes(materialize(b, db, size, (w, dw)), 0)]  # (B * O,)
        if dx is None and groups == 1:
            # conv2d: w (B * O, C, kh, kw); conv_transpose2d: w (C, B * O, kh, kw)
            w1 = merge_axes(move_axis(wf, 0, 1), 1) if transpose else merge_axes(wf, 0)
            y = bind(op, x, w1, *bias, **attrs)
        elif type(size) is not int:
            return LOOP_THIS  # the group count would be the (unknown) batch size
        else:
            xg = merge_axes(move_axis(materialize(x, dx, size, (w, dw)), 0, 1), 1)  # (N, B * C, H, W)
            y = bind(op, xg, merge_axes(wf, 0), *bias, **{**attrs, "groups": groups * size})
        return split_batch(y, 1, wf), 1  # (N, B * O, Ho, Wo) -> (N, B, O, Ho, Wo)

    rule.__name__ = f"batch_{op}"
    return rule


defbatch("conv2d", conv_batch_rule("conv2d", transpose=False))


def conv2d(x: Any, w: Any, b: Any = None, strides: Any = 1, padding: Any = 0, dilations: Any = 1, groups: int = 1) -> Any:
    """2-D convolution of ``x`` (N, C, H, W) with ``w`` (O, C/groups, kh, kw), plus bias ``b`` (O,).

    ``strides``, ``dilations``: int or (h, w). ``padding``: int, (h, w), (top, left, bottom,
    right), "valid" or "same" (TensorFlow's SAME; for stride 1 the same as PyTorch's).

    >>> y = irf.conv2d(x, w, b, strides=1, padding="same")   # doctest: +SKIP
    """
    attrs = dict(strides=pair(strides, "strides", "conv2d"), padding=padding_attr(padding, "conv2d"),
                 dilations=pair(dilations, "dilations", "conv2d"), groups=_groups(groups))
    return bind("conv2d", x, w, **attrs) if b is None else bind("conv2d", x, w, b, **attrs)


# -- conv_transpose2d -------------------------------------------------------------------------

def _conv_transpose2d_type(x: TensorType, w: TensorType, b: TensorType | None = None, *, strides, padding,
                           output_padding, dilations, groups) -> TensorType:
    op = "conv_transpose2d"
    check_conv_attrs(op, padding=padding, allow_same=False, strides=strides, dilations=dilations,
                     output_padding=output_padding)
    check_output_padding(op, output_padding, strides)
    dtype = _float_dtype(op, x, w, b)
    _rank(op, x, 4, "input (N, C, H, W)")
    _rank(op, w, 4, "weight (C, O/groups, kh, kw)")
    c, (wc, og) = x.shape[1], w.shape[:2]
    _check_groups(op, groups, input=c)
    if _known(c, wc) and c != wc:
        raise ShapeError(f"{op}: input has {c} channels but the weight {w.shape} expects {wc}")
    o = og * groups if isinstance(og, int) else None
    _check_bias(op, b, o)
    dims = []
    for i in range(2):
        size, k, s, d = x.shape[2 + i], w.shape[2 + i], strides[i], dilations[i]
        if _known(size, k):
            dim = (size - 1) * s - padding[i] - padding[i + 2] + d * (k - 1) + 1 + output_padding[i]
            if dim <= 0:
                raise ShapeError(f"{op}: output would be empty (size {dim}) for input {x.shape}, weight {w.shape}, "
                                 f"strides {strides}, padding {padding}")
        else:
            dim = None
        dims.append(dim)
    return TensorType(dtype=dtype, shape=(x.shape[0], o, dims[0], dims[1]))


defop("conv_transpose2d", _conv_transpose2d_type, inputs=(2, 3),
      attrs={**_CONV_ATTRS, "output_padding": Attr("ints", default=(0, 0))}, family="nn",
      doc="Transposed 2-D convolution (the gradient of conv2d), IOHW weight, optional bias.")


@defvjp("conv_transpose2d")
def _conv_transpose2d_vjp(g, x, w, *bias, out, strides, padding, output_padding, dilations, groups):
    # conv_transpose2d(., w) is the adjoint of conv2d(., w): <convT(x, w), g> = <x, conv2d(g, w)>.
    khw = _kernel_hw("conv_transpose2d", w)
    geometry = dict(strides=strides, padding=padding, dilations=dilations, groups=groups)
    gx = bind("conv2d", g, w, **geometry)
    gw = bind("conv2d_weight_grad", g, x, kernel_size=khw, **geometry)
    return (gx, gw, *[None if b is None else bind("reduce_sum", g, axes=(0, 2, 3), keepdims=False) for b in bias])


defbatch("conv_transpose2d", conv_batch_rule("conv_transpose2d", transpose=True))


def conv_transpose2d(x: Any, w: Any, b: Any = None, strides: Any = 1, padding: Any = 0, output_padding: Any = 0,
                     dilations: Any = 1, groups: int = 1) -> Any:
    """Transposed convolution of ``x`` (N, C, H, W) with ``w`` (C, O/groups, kh, kw), as PyTorch's.

    Output size per dim: ``(H - 1) * stride - pad_before - pad_after + dilation * (k - 1) + 1 +
    output_padding``; ``output_padding`` must be smaller than the stride.

    >>> y = irf.conv_transpose2d(x, w, strides=2, padding=1, output_padding=1)   # doctest: +SKIP
    """
    op = "conv_transpose2d"
    pads = padding_attr(padding, op)
    if pads == "same":
        raise IRValidationError(f"{op}: padding 'same' is not supported; give explicit pads")
    attrs = dict(strides=pair(strides, "strides", op), padding=pads,
                 output_padding=pair(output_padding, "output_padding", op, minimum=0),
                 dilations=pair(dilations, "dilations", op), groups=_groups(groups))
    return bind(op, x, w, **attrs) if b is None else bind(op, x, w, b, **attrs)


# -- conv2d_weight_grad (internal) ------------------------------------------------------------

def _conv2d_weight_grad_type(x: TensorType, g: TensorType, *, kernel_size, strides, padding, dilations,
                             groups) -> TensorType:
    op = "conv2d_weight_grad"
    check_conv_attrs(op, padding=padding, kernel_size=kernel_size, strides=strides, dilations=dilations)
    dtype = _float_dtype(op, x, g)
    _rank(op, x, 4, "input (N, C, H, W)")
    _rank(op, g, 4, "output gradient (N, O, Ho, Wo)")
    c, o = x.shape[1], g.shape[1]
    _check_groups(op, groups, input=c, output=o)
    want = _spatial_out(op, x, kernel_size, strides, padding, dilations)
    for a, b in zip(want, g.shape[2:]):
        if _known(a, b) and a != b:
            raise ShapeError(f"{op}: output gradient {g.shape} does not match the conv output size {want}")
    cg = c // groups if isinstance(c, int) else None
    return TensorType(dtype=dtype, shape=(o, cg, *kernel_size))


defop("conv2d_weight_grad", _conv2d_weight_grad_type, inputs=2,
      attrs={**_CONV_ATTRS, "kernel_size": Attr("ints")}, family="nn",
      doc="Internal: the weight gradient of conv2d, from its input x and output gradient g.")


@defvjp("conv2d_weight_grad")
def _conv2d_weight_grad_vjp(gw, x, g, *, out, kernel_size, strides, padding, dilations, groups):
    # The op is bilinear: <gw, dW(x, g)> = <g, conv2d(x, gw)>, so each input's gradient is a conv.
    pads = _explicit_pads("conv2d_weight_grad", padding, x.shape[2:], kernel_size, strides, dilations)
    gx = _conv_input_grad(g, gw, x.shape[2:], kernel_size, strides=strides, pads=pads, dilations=dilations,
                          groups=groups)
    gg = bind("conv2d", x, gw, strides=strides, padding=pads, dilations=dilations, groups=groups)
    return gx, gg


def weight_grad_batch_rule(op: str):
    """The rule of conv2d_weight_grad (and conv_nd.py's conv_weight_grad). The sum over N must
    stay per example, so the batch goes into the channels (N, B * C, ...): with groups == 1 and
    one side unbatched, the B examples are just more output (or input) channels; otherwise one
    op with B * groups groups gives (B * O, C/g, *kernel)."""
    return lambda inputs, dims, size, **attrs: _weight_grad_batch(op, inputs, dims, size, attrs)


def _weight_grad_batch(op, inputs, dims, size, attrs):
    (x, g), (dx, dg) = inputs, dims
    groups = attrs["groups"]

    def channels(t, d):  # (B, N, C, *S) -> (N, B * C, *S)
        return merge_axes(move_axis(to_front(t, d), 0, 1), 1)

    if groups == 1 and dx is None:
        return split_batch(bind(op, x, channels(g, dg), **attrs), 0, to_front(g, dg)), 0
    if groups == 1 and dg is None:
        return split_batch(bind(op, channels(x, dx), g, **attrs), 1, to_front(x, dx)), 1
    if type(size) is not int:
        return LOOP_THIS  # the group count would be the (unknown) batch size
    like = (x, dx) if dx is not None else (g, dg)
    xs, gs = materialize(x, dx, size, like), materialize(g, dg, size, like)
    out = bind(op, channels(xs, 0), channels(gs, 0), **{**attrs, "groups": groups * size})
    return split_batch(out, 0, xs), 0


defbatch("conv2d_weight_grad", weight_grad_batch_rule("conv2d_weight_grad"))


# -- pooling --------------------------------------------------------------------------------

_POOL_ATTRS = {
    "kernel_size": Attr("ints"),
    "strides": Attr("ints"),
    "padding": Attr("any", default=(0, 0, 0, 0)),
}


def check_pool_pads(op: str, kernel_size, padding) -> None:
    """A window made only of padding would have no maximum and no average."""
    if padding != "same" and any(p >= kernel_size[i % 2] for i, p in enumerate(padding)):
        raise ShapeError(f"{op}: each pad must be smaller than the kernel {kernel_size}, got padding {padding}")


def check_output_padding(op: str, output_padding, strides) -> None:
    if any(p >= s for p, s in zip(output_padding, strides)):
        raise IRValidationError(f"{op}: output_padding {output_padding} must be smaller than strides {strides}")


def pool_out_type(op: str, x: TensorType, kernel_size, strides, padding) -> TensorType:
    check_conv_attrs(op, padding=padding, kernel_size=kernel_size, strides=strides)
    _float_dtype(op, x)
    _rank(op, x, 4, "input (N, C, H, W)")
    check_pool_pads(op, kernel_size, padding)
    h, w = _spatial_out(op, x, kernel_size, strides, padding, (1, 1))
    return TensorType(dtype=x.dtype, shape=(x.shape[0], x.shape[1], h, w))


def _pool_attrs(op: str, kernel_size: Any, strides: Any, padding: Any) -> dict:
    k = pair(kernel_size, "kernel_size", op)
    return dict(kernel_size=k, strides=k if strides is None else pair(strides, "strides", op),
                padding=padding_attr(padding, op))


def _pool_like_type(op: str, x: TensorType, y: TensorType, y_is: str, **attrs) -> TensorType:
    """Type of an internal pool gradient op: ``y`` must match ``x`` (y_is="input") or the pool output."""
    pooled = pool_out_type(op, x, **attrs)
    want = x if y_is == "input" else pooled
    _float_dtype(op, x, y)
    if y.rank != 4 or any(_known(a, b) and a != b for a, b in zip(want.shape, y.shape)):
        raise ShapeError(f"{op}: second input must have the {y_is} shape {want.shape}, got {y.shape}")
    return pooled


def _max_pool2d_grad_type(x: TensorType, g: TensorType, **attrs) -> TensorType:
    _pool_like_type("max_pool2d_grad", x, g, "output", **attrs)
    return x


def _avg_pool2d_grad_type(g: TensorType, x: TensorType, **attrs) -> TensorType:
    _pool_like_type("avg_pool2d_grad", x, g, "output", **attrs)
    return x


defop("max_pool2d", lambda x, **a: pool_out_type("max_pool2d", x, **a), attrs=_POOL_ATTRS, family="nn",
      doc="2-D max pooling of NCHW x (padding counts as -inf).")
defop("max_pool2d_grad", _max_pool2d_grad_type, inputs=2, attrs=_POOL_ATTRS, family="nn",
      doc="Internal: routes g to the first maximum of each max_pool2d window of x.")
defop("max_pool2d_pick", lambda x, y, **a: _pool_like_type("max_pool2d_pick", x, y, "input", **a),
      inputs=2, attrs=_POOL_ATTRS, family="nn",
      doc="Internal: y read at the first maximum of each max_pool2d window of x.")

# Which window element wins depends on x only through comparisons: piecewise constant, so no
# gradient flows to x (None), which is the true derivative almost everywhere.
defvjp("max_pool2d", lambda g, x, *, out, **a: bind("max_pool2d_grad", x, g, **a))
defvjp("max_pool2d_grad", lambda gx, x, g, *, out, **a: (None, bind("max_pool2d_pick", x, gx, **a)))
defvjp("max_pool2d_pick", lambda gp, x, y, *, out, **a: (None, bind("max_pool2d_grad", x, gp, **a)))
# Pooling works on each (image, channel) alone: the batch folds into N (B * N images).
for _op in ("max_pool2d", "max_pool2d_grad", "max_pool2d_pick"):
    defbatch(_op, fold_rule(_op))


def max_pool2d(x: Any, kernel_size: Any, strides: Any = None, padding: Any = 0) -> Any:
    """Max pooling over (kh, kw) windows of ``x`` (N, C, H, W); ``strides`` default to the kernel.

    Padding is ignored by the max (as -inf); each pad must be smaller than the kernel.

    >>> y = irf.max_pool2d(x, 2)          # halves H and W   # doctest: +SKIP
    """
    return bind("max_pool2d", x, **_pool_attrs("max_pool2d", kernel_size, strides, padding))


defop("avg_pool2d", lambda x, **a: pool_out_type("avg_pool2d", x, **a), attrs=_POOL_ATTRS, family="nn",
      doc="2-D average pooling of NCHW x; padding is not counted (count_include_pad=False).")
defop("avg_pool2d_grad", _avg_pool2d_grad_type, inputs=2, attrs=_POOL_ATTRS, family="nn",
      doc="Internal: the transpose of avg_pool2d, spreading g over the windows (x gives the shape).")

defvjp("avg_pool2d", lambda g, x, *, out, **a: bind("avg_pool2d_grad", g, x, **a))
defvjp("avg_pool2d_grad", lambda gx, g, x, *, out, **a: (bind("avg_pool2d", gx, **a), None))
defbatch("avg_pool2d", fold_rule("avg_pool2d"))
defbatch("avg_pool2d_grad", fold_rule("avg_pool2d_grad"))  # x only gives the shape: broadcasting it is a view


def avg_pool2d(x: Any, kernel_size: Any, strides: Any = None, padding: Any = 0) -> Any:
    """Average pooling over (kh, kw) windows of ``x`` (N, C, H, W); ``strides`` default to the kernel.

    Padded positions are not counted in the average (PyTorch's ``count_include_pad=False``).

    >>> y = irf.avg_pool2d(x, 2)   # doctest: +SKIP
    """
    return bind("avg_pool2d", x, **_pool_attrs("avg_pool2d", kernel_size, strides, padding))


__all__ = ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d"]
