"""Losses: scalar means over the batch, written with irf ops (so they differentiate and trace).

>>> loss = irf.nn.losses.softmax_cross_entropy(logits, labels)   # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any

from irflow import ops
from irflow.errors import DTypeError, ShapeError

__all__ = ["mse", "softmax_cross_entropy", "binary_cross_entropy"]


def mse(pred: Any, target: Any) -> Any:
    """Mean of (pred - target)^2 over all elements.

    >>> float(irf.nn.losses.mse(irf.tensor([1.0, 3.0]), irf.tensor([0.0, 0.0])))
    5.0
    """
    d = ops.sub(pred, target)
    return ops.reduce_mean(ops.mul(d, d))


def softmax_cross_entropy(logits: Any, labels: Any) -> Any:
    """Mean over the batch of -log softmax(logits)[label]: ``logits`` (N, classes) float,
    ``labels`` (N,) int class indices. The mean of ``irf.sparse_softmax_cross_entropy``: one
    fused node forward and five small ones in its gradient; stable (no exp overflow).

    >>> float(irf.nn.losses.softmax_cross_entropy(irf.tensor([[0.0, 0.0]]), np.array([1])))  # doctest: +ELLIPSIS
    0.693...
    """
    lt, yt = getattr(logits, "shape", None), getattr(labels, "shape", None)
    if lt is not None and yt is not None and len(lt) != len(yt) + 1:
        raise ShapeError(f"softmax_cross_entropy: logits {tuple(lt)} must have one more axis (the classes) than labels {tuple(yt)}")
    dtype = getattr(labels, "dtype", None)
    if dtype is not None and "int" not in str(getattr(dtype, "value", dtype)):
        raise DTypeError(f"softmax_cross_entropy: labels must be integer class indices, got {getattr(dtype, 'value', dtype)}")
    return ops.reduce_mean(ops.sparse_softmax_cross_entropy(logits, labels))


def binary_cross_entropy(logits: Any, targets: Any) -> Any:
    """Mean of the binary cross entropy of sigmoid(logits) against targets in [0, 1], in the
    stable form max(x, 0) - x * t + log(1 + exp(-|x|)).

    >>> float(irf.nn.losses.binary_cross_entropy(irf.tensor([0.0]), irf.tensor([1.0])))  # doctest: +ELLIPSIS
    0.693...
    """
    x = logits
    per = ops.relu(x) - x * targets + ops.log1p(ops.exp(ops.neg(ops.abs(x))))
    return ops.reduce_mean(per)
