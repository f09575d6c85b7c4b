"""Metrics: running aggregates with ``update_state`` / ``result`` / ``reset_state`` (Keras' API).

The totals are float64 non-trainable Variables updated with ``assign_add``, so a metric updates
eagerly and inside a traced step alike (its Variables become part of the step's state).

>>> acc = irf.nn.metrics.Accuracy()                                  # doctest: +SKIP
>>> acc.update_state(labels, logits); float(acc.result())             # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any

import numpy as np

from irflow import ops
from irflow.errors import ShapeError
from irflow.frontends.variables import Variable

__all__ = ["Mean", "Accuracy"]


class Mean:
    """The mean of every value passed to ``update_state`` since the last ``reset_state``.

    >>> m = irf.nn.metrics.Mean(); m.update_state(np.array([1.0, 3.0])); float(m.result())
    2.0
    """

    def __init__(self, name: str = "mean"):
        self.name = name
        self.total = Variable(np.zeros((), np.float64), name=f"{name}/total", trainable=False)
        self.count = Variable(np.zeros((), np.float64), name=f"{name}/count", trainable=False)

    def update_state(self, values: Any) -> None:
        """Add ``values`` (any shape, any numeric dtype) to the running mean."""
        v = ops.cast(values, "float64")
        self.total.assign_add(ops.reduce_sum(v))
        self.count.assign_add(ops.cast(ops.reduce_prod(ops.cast(ops.shape_of(v), "float64")), "float64")
                              if v.shape and not all(isinstance(d, int) for d in v.shape)
                              else float(np.prod(v.shape)))

    def result(self) -> Any:
        """total / count (NaN before any update, as 0/0)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.total / self.count

    def reset_state(self) -> None:
        """Forget every update."""
        self.total.assign(np.zeros((), np.float64))
        self.count.assign(np.zeros((), np.float64))


class Accuracy(Mean):
    """The fraction of correct predictions. ``update_state(labels, predictions)``: predictions are
    class ids of the labels' shape, or scores with one more axis (argmax taken).

    >>> a = irf.nn.metrics.Accuracy(); a.update_state(np.array([1, 0]), np.array([[0., 1.], [0., 1.]]))
    >>> float(a.result())
    0.5
    """

    def __init__(self, name: str = "accuracy"):
        super().__init__(name)

    def update_state(self, labels: Any, predictions: Any) -> None:  # type: ignore[override]
        """Count how many of ``predictions`` equal ``labels``."""
        lr, pr = len(np.shape(labels)) if not hasattr(labels, "ndim") else labels.ndim, \
            len(np.shape(predictions)) if not hasattr(predictions, "ndim") else predictions.ndim
        if pr == lr + 1:
            predictions = ops.argmax(predictions, axis=-1)
        elif pr != lr:
            raise ShapeError(f"Accuracy: predictions of rank {pr} against labels of rank {lr}: "
                             "give class ids (same rank) or scores (one more axis)")
        super().update_state(ops.equal(ops.cast(predictions, "int64"), ops.cast(labels, "int64")))
