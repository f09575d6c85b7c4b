"""Neural-network ops: softmax, log_softmax, sparse_softmax_cross_entropy, layer_norm,
batch_norm (inference), dropout.

Convolutions and pooling live in ``irflow/ops/conv.py``. Every VJP rule here is written with
ordinary ops through ``bind``, so gradients export to ONNX and can be differentiated again.

Dropout is seeded: its keep-mask is a deterministic function of (seed, shape) on the NumPy
executor, so the VJP of dropout is dropout of the cotangent with the same attrs (the same
mask). Two dropouts with the same seed and shape drop the same elements: give each layer its
own seed. On onnxruntime the mask comes from ONNX Dropout's own generator (same distribution,
other bits; see docs/ops-nn.md).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from irflow.errors import DTypeError, IRValidationError, ShapeError, UnsupportedOpError
from irflow.ir.dtypes import DType
from irflow.ir.types import Dim, TensorType
from irflow.ops.common import bind, norm_axes
from irflow.ops.batching import first_batched, materialize, move_axis, rank_of, reduction_rule, to_front
from irflow.ops.registry import Attr, defbatch, defop, defvjp


def _float_input(op: str, x: TensorType) -> None:
    if not x.dtype.is_float:
        raise DTypeError(f"{op} takes float tensors, got {x.dtype}")


def _axis(op: str, axis: Any, rank: int) -> int:
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise IRValidationError(f"{op}: axis must be an int, got {axis!r}")
    return norm_axes(axis, rank, op)[0]


def _int_attr(v: Any) -> Any:
    """NumPy integers become Python ints (the IR stores plain ints); anything else is left for
    the type rule to reject."""
    return int(v) if isinstance(v, np.integer) else v


def _float_attr(v: Any) -> Any:
    return float(v) if isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)) else v


def _same_dims(a: Dim, b: Dim) -> bool:
    return a == b or not (isinstance(a, int) and isinstance(b, int))


# -- softmax, log_softmax ---------------------------------------------------------------------

def _softmax_type(op: str):
    def rule(x: TensorType, *, axis: int) -> TensorType:
        _float_input(op, x)
        _axis(op, axis, x.rank)
        return x
    return rule


defop("softmax", _softmax_type("softmax"), attrs={"axis": Attr("int", default=-1)}, family="nn",
      doc="exp(x - max) / sum(exp(x - max)) along one axis.")
defop("log_softmax", _softmax_type("log_softmax"), attrs={"axis": Attr("int", default=-1)}, family="nn",
      doc="x - max - log(sum(exp(x - max))) along one axis.")


defbatch("softmax", reduction_rule("softmax", key="axis", keeps_rank=True))  # the axis shifted past the batch
defbatch("log_softmax", reduction_rule("log_softmax", key="axis", keeps_rank=True))


@defvjp("softmax")
def _softmax_vjp(g, x, *, out, axis):
    # d softmax: y * (g - <g, y>) with the inner product along the axis.
    dot = bind("reduce_sum", g * out, axes=(axis,), keepdims=True)
    return out * (g - dot)


@defvjp("log_softmax")
def _log_softmax_vjp(g, x, *, out, axis):
    # d log_softmax: g - softmax * sum(g); softmax = exp(out).
    total = bind("reduce_sum", g, axes=(axis,), keepdims=True)
    return g - bind("exp", out) * total


def softmax(x: Any, axis: int = -1) -> Any:
    """Softmax along ``axis`` (computed stably: the max is subtracted first).

    >>> irf.softmax(irf.tensor([[1.0, 2.0, 3.0]])).numpy().round(3)
    array([[0.09 , 0.245, 0.665]], dtype=float32)
    """
    return bind("softmax", x, axis=_int_attr(axis))


def log_softmax(x: Any, axis: int = -1) -> Any:
    """Log of the softmax along ``axis``, stable for large inputs.

    >>> irf.log_softmax(irf.tensor([0.0, 1000.0])).numpy()
    array([-1000.,     0.], dtype=float32)
    """
    return bind("log_softmax", x, axis=_int_attr(axis))


# -- sparse_softmax_cross_entropy ---------------------------------------------------------------

_LABEL_DTYPES = (DType.int32, DType.int64)


def _sparse_softmax_cross_entropy_type(logits: TensorType, labels: TensorType) -> TensorType:
    op = "sparse_softmax_cross_entropy"
    _float_input(op, logits)
    if labels.dtype not in _LABEL_DTYPES:
        raise DTypeError(f"{op}: labels must be int32 or int64 class indices, got {labels.dtype.value}")
    if logits.rank == 0:
        raise ShapeError(f"{op}: logits must have a class axis (rank >= 1), got a scalar")
    batch = logits.shape[:-1]
    if labels.rank != len(batch) or not all(_same_dims(a, b) for a, b in zip(batch, labels.shape)):
        raise ShapeError(f"{op}: labels must have the shape of logits {logits.shape} without the class axis, "
                         f"{batch}, got {labels.shape}")
    # A dim one side knows as an int and the other only as a symbol is that int.
    shape = tuple(a if isinstance(a, int) or not isinstance(b, int) else b for a, b in zip(batch, labels.shape))
    return TensorType(dtype=logits.dtype, shape=shape)


defop("sparse_softmax_cross_entropy", _sparse_softmax_cross_entropy_type, inputs=2, family="nn",
      doc="-log_softmax(logits)[..., label] per example: logits (..., classes), int labels (...).")


@defvjp("sparse_softmax_cross_entropy")
def _sparse_softmax_cross_entropy_vjp(g, logits, labels, *, out):
    # d loss / d logits = softmax(logits) - one_hot(label), per example, times g. The forward
    # output is the loss, not the softmax, so the softmax is computed again (one node). Plain
    # ops, so the gradient exports to ONNX and differentiates again; labels get no gradient.
    classes, rank = logits.shape[-1], len(logits.shape)
    if not isinstance(classes, int):
        raise UnsupportedOpError(f"sparse_softmax_cross_entropy: the gradient needs a static number of classes, "
                                 f"got logits of shape {logits.shape}")
    hot = bind("one_hot", labels, depth=classes, axis=-1, dtype=logits.dtype)
    return (bind("softmax", logits, axis=-1) - hot) * bind("expand_dims", g, axes=(rank - 1,)), None


@defbatch("sparse_softmax_cross_entropy")
def _sparse_softmax_cross_entropy_batch(inputs, dims, size):
    (logits, labels), (dz, dl) = inputs, dims
    if dz == dl and dz < logits.type.rank - 1:  # one batch axis among the example axes: nothing to move
        return bind("sparse_softmax_cross_entropy", logits, labels), dz
    like = first_batched(inputs, dims)
    return bind("sparse_softmax_cross_entropy", materialize(logits, dz, size, like), materialize(labels, dl, size, like)), 0


def sparse_softmax_cross_entropy(logits: Any, labels: Any) -> Any:
    """The cross entropy of each example: ``-log_softmax(logits)[..., label]``, as TensorFlow's
    ``sparse_softmax_cross_entropy_with_logits`` and PyTorch's ``cross_entropy(...,
    reduction="none")``. One node instead of log_softmax, one_hot, mul and reduce_sum; its
    gradient is ``(softmax(logits) - one_hot(labels)) * g``.

    ``logits`` (..., classes) float; ``labels`` int32/int64 of shape ``logits.shape[:-1]``,
    each in ``[0, classes)``. The result has the labels' shape and the logits' dtype. Stable
    for large logits (the max is subtracted first). A label out of range is an error on the
    NumPy executor; on onnxruntime, -classes..-1 count from the end (ONNX GatherElements) and
    anything else is an error (see docs/ops-nn.md).

    >>> irf.sparse_softmax_cross_entropy(irf.tensor([[0.0, 0.0], [0.0, 1000.0]]), [1, 0]).numpy()
    array([6.931472e-01, 1.000000e+03], dtype=float32)
    """
    if isinstance(labels, (int, list, tuple)) and not isinstance(labels, bool):
        labels = np.asarray(labels, dtype=np.int64)  # as NumPy would take them
    return bind("sparse_softmax_cross_entropy", logits, labels)


# -- layer_norm -------------------------------------------------------------------------------

def _check_epsilon(op: str, epsilon: Any) -> None:
    if not isinstance(epsilon, (int, float)) or isinstance(epsilon, bool) or epsilon < 0:
        raise IRValidationError(f"{op}: epsilon must be a float >= 0, got {epsilon!r}")


def _layer_norm_type(x: TensorType, scale: TensorType | None = None, bias: TensorType | None = None, *,
                     axis: int, epsilon: float) -> TensorType:
    op = "layer_norm"
    _float_input(op, x)
    _check_epsilon(op, epsilon)
    first = _axis(op, axis, x.rank)
    normalized = x.shape[first:]
    for what, p in (("scale", scale), ("bias", bias)):
        if p is None:
            continue
        if p.dtype != x.dtype:
            raise DTypeError(f"{op}: {what} has dtype {p.dtype}, input has {x.dtype}")
        if p.rank != len(normalized) or not all(_same_dims(a, b) for a, b in zip(p.shape, normalized)):
            raise ShapeError(f"{op}: {what} must have the normalized shape {normalized} (axes {first}..), got {p.shape}")
    return x


defop("layer_norm", _layer_norm_type, inputs=(1, 3),
      attrs={"axis": Attr("int", default=-1), "epsilon": Attr("float", default=1e-5)}, family="nn",
      doc="(x - mean) / sqrt(var + epsilon) * scale + bias over the axes from `axis` on.")


@defvjp("layer_norm")
def _layer_norm_vjp(g, x, *params, out, axis, epsilon):
    rank = len(x.shape)
    first = axis % rank
    norm_axes_ = tuple(range(first, rank))
    lead_axes = tuple(range(first))
    scale = params[0] if params else None
    # Recompute the statistics (cheap next to storing them as extra outputs).
    mean = bind("reduce_mean", x, axes=norm_axes_, keepdims=True)
    xc = x - mean
    rstd = bind("rsqrt", bind("reduce_mean", xc * xc, axes=norm_axes_, keepdims=True) + epsilon)
    xhat = xc * rstd
    gxhat = g if scale is None else g * scale
    gx = rstd * (gxhat - bind("reduce_mean", gxhat, axes=norm_axes_, keepdims=True)
                 - xhat * bind("reduce_mean", gxhat * xhat, axes=norm_axes_, keepdims=True))

    def over_lead(t):  # sum over the leading (not normalized) axes, down to the params' shape
        return bind("reduce_sum", t, axes=lead_axes, keepdims=False) if lead_axes else t

    grads = [gx]
    if len(params) >= 1:
        grads.append(None if params[0] is None else over_lead(g * xhat))
    if len(params) == 2:
        grads.append(None if params[1] is None else over_lead(g))
    return tuple(grads)


@defbatch("layer_norm")
def _layer_norm_batch(inputs, dims, size, *, axis, epsilon):
    x, dx = inputs[0], dims[0]
    params, pdims = inputs[1:], dims[1:]
    first = axis % rank_of(x, dx)
    if dx is None:  # only params batched: normalize once, scale and shift per example below
        y, dy = bind("layer_norm", x, axis=first, epsilon=epsilon), None
    else:
        if dx > first:  # the batch axis among the normalized axes: move it in front of them
            x, dx = to_front(x, dx), 0
        if all(pd is None for pd in pdims):
            return bind("layer_norm", x, *params, axis=first + 1, epsilon=epsilon), dx
        y, dy = bind("layer_norm", x, axis=first + 1, epsilon=epsilon), dx
    y = to_front(y, dy)
    for k, (p, pd) in enumerate(zip(params, pdims)):  # y * scale + bias; batched params (B, 1.., normalized)
        if p is None:
            continue
        if pd is not None:
            p = to_front(p, pd)
            p = bind("expand_dims", p, axes=tuple(range(1, 1 + first))) if first else p
        y = bind("mul" if k == 0 else "add", y, p)
    return y, 0


def layer_norm(x: Any, scale: Any = None, bias: Any = None, axis: int = -1, epsilon: float = 1e-5) -> Any:
    """Layer normalization over the axes ``axis, axis+1, ..., -1`` (``axis`` = the first one).

    ``scale`` and ``bias`` (optional) have the normalized shape ``x.shape[axis:]``.

    >>> y = irf.layer_norm(x, gamma, beta)   # normalizes the last axis   # doctest: +SKIP
    """
    axis, epsilon = _int_attr(axis), _float_attr(epsilon)
    if bias is not None:
        return bind("layer_norm", x, scale, bias, axis=axis, epsilon=epsilon)
    if scale is not None:
        return bind("layer_norm", x, scale, axis=axis, epsilon=epsilon)
    return bind("layer_norm", x, axis=axis, epsilon=epsilon)


# -- batch_norm (inference) -------------------------------------------------------------------

def _batch_norm_type(x: TensorType, scale: TensorType, bias: TensorType, mean: TensorType, var: TensorType, *,
                     epsilon: float) -> TensorType:
    op = "batch_norm"
    _float_input(op, x)
    _check_epsilon(op, epsilon)
    if x.rank < 2:
        raise ShapeError(f"{op}: input must have rank >= 2 (N, C, ...), got {x}")
    c = x.shape[1]
    for what, p in (("scale", scale), ("bias", bias), ("mean", mean), ("var", var)):
        if p.dtype != x.dtype:
            raise DTypeError(f"{op}: {what} has dtype {p.dtype}, input has {x.dtype}")
        if p.rank != 1 or not _same_dims(p.shape[0], c):
            raise ShapeError(f"{op}: {what} must have shape ({c},) (one value per channel, axis 1), got {p.shape}")
    return x


defop("batch_norm", _batch_norm_type, inputs=5, attrs={"epsilon": Attr("float", default=1e-5)}, family="nn",
      doc="Inference batch norm: (x - mean) / sqrt(var + epsilon) * scale + bias, per channel (axis 1).")


@defvjp("batch_norm")
def _batch_norm_vjp(g, x, scale, bias, mean, var, *, out, epsilon):
    rank = len(x.shape)
    reduce_axes = (0,) + tuple(range(2, rank))

    def per_channel(p):  # (C,) -> (C, 1, ..., 1), to broadcast against (N, C, ...)
        return bind("expand_dims", p, axes=tuple(range(1, rank - 1))) if rank > 2 else p

    def over_channels(t):  # sum all but axis 1
        return bind("reduce_sum", t, axes=reduce_axes, keepdims=False)

    rstd = bind("rsqrt", var + epsilon)
    s = scale * rstd
    sum_g = over_channels(g)
    sum_gxc = over_channels(g * (x - per_channel(mean)))
    gx = g * per_channel(s)
    gscale = sum_gxc * rstd
    gmean = -(sum_g * s)
    gvar = sum_gxc * s * rstd * rstd * -0.5
    return gx, gscale, sum_g, gmean, gvar


@defbatch("batch_norm")
def _batch_norm_batch(inputs, dims, size, *, epsilon):
    x, dx = inputs[0], dims[0]
    if all(d is None for d in dims[1:]):
        # the batch as one more spatial axis (after N and C): per-channel affine maps do not see it
        if dx < 2:
            x, dx = move_axis(x, dx, 2), 2
        return bind("batch_norm", x, *inputs[1:], epsilon=epsilon), dx
    # per-example statistics: the kernel's y = x * a + (bias - mean * a), a = scale / sqrt(var + eps),
    # with batched params (B, C) laid out as (B, 1, C, 1, ...) against x (B, N, C, ...)
    scale, bias, mean, var = [to_front(p, d) for p, d in zip(inputs[1:], dims[1:])]
    a = scale / bind("sqrt", var + epsilon)
    shift = bias - mean * a
    spatial = rank_of(x, dx) - 2

    def per_channel(t):  # (C,) -> (C, 1, ...); (B, C) -> (B, 1, C, 1, ...)
        if t.type.rank == 2:
            t = bind("expand_dims", t, axes=(1,))
        return bind("expand_dims", t, axes=tuple(range(t.type.rank, t.type.rank + spatial))) if spatial else t

    return to_front(x, dx) * per_channel(a) + per_channel(shift), 0


def batch_norm(x: Any, scale: Any, bias: Any, mean: Any, var: Any, epsilon: float = 1e-5) -> Any:
    """Batch normalization with given statistics (inference form), channels on axis 1.

    ``scale``, ``bias``, ``mean``, ``var`` have shape (C,). Input order as ONNX BatchNormalization.

    >>> y = irf.batch_norm(x, gamma, beta, running_mean, running_var)   # doctest: +SKIP
    """
    return bind("batch_norm", x, scale, bias, mean, var, epsilon=_float_attr(epsilon))


# -- dropout ----------------------------------------------------------------------------------

def check_dropout_attrs(rate: Any, seed: Any) -> None:
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 <= rate < 1.0:
        raise IRValidationError(f"dropout: rate must be a float in [0, 1), got {rate!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise IRValidationError(f"dropout: seed must be an int >= 0, got {seed!r}")


def _dropout_type(x: TensorType, *, rate: float, seed: int, training: bool) -> TensorType:
    _float_input("dropout", x)
    check_dropout_attrs(rate, seed)
    return x


defop("dropout", _dropout_type, family="nn",
      attrs={"rate": Attr("float", default=0.5), "seed": Attr("int", default=0), "training": Attr("bool", default=True)},
      doc="Zeroes each element with probability `rate` (mask seeded by `seed`), scales the rest by 1/(1-rate); "
          "identity when training=False.")

# The mask is a function of (seed, shape) only, so the cotangent gets the same mask and scale.
defvjp("dropout", lambda g, x, *, out, rate, seed, training: bind("dropout", g, rate=rate, seed=seed, training=training))


@defbatch("dropout")
def _dropout_batch(inputs, dims, size, *, rate, seed, training):
    x, d = inputs[0], dims[0]
    if not training or rate == 0.0:
        return bind("dropout", x, rate=rate, seed=seed, training=training), d
    # The mask is a function of (seed, shape), so every example of a loop gets the same mask: the
    # batch is multiplied by ONE example-shaped dropout of ones, broadcast along the batch axis.
    example = x.type.shape[:d] + x.type.shape[d + 1:]
    if all(isinstance(v, int) for v in example):
        ones = bind("ones", shape=example, dtype=x.type.dtype)
    else:
        ones = bind("ones_like", bind("reduce_sum", x, axes=(d,), keepdims=False))
    mask = bind("dropout", ones, rate=rate, seed=seed, training=True)
    return x * bind("expand_dims", mask, axes=(d,)), d


def dropout(x: Any, rate: float = 0.5, seed: int = 0, training: bool = True) -> Any:
    """Inverted dropout: zero elements with probability ``rate``, scale the rest by 1/(1 - rate).

    The mask depends only on ``seed`` and the shape (NumPy executor). ``training=False`` is the
    identity, as ``torch.nn.functional.dropout(training=False)``.

    >>> y = irf.dropout(x, rate=0.1, seed=7)   # doctest: +SKIP
    """
    rate, seed = _float_attr(rate), _int_attr(seed)
    check_dropout_attrs(rate, seed)
    return bind("dropout", x, rate=rate, seed=seed, training=bool(training))


__all__ = ["softmax", "log_softmax", "sparse_softmax_cross_entropy", "layer_norm", "batch_norm", "dropout"]
