"""Metrics: running aggregates with ``update_state`` / ``result`` / ``reset_state`` (Keras' API).

The totals are float64 non-trainable Variables updated with ``assign_add``, so a metric updates
eagerly and inside a traced step alike (its Variables become part of the step's state).
``update_state(y_true, y_pred, sample_weight=None)`` follows Keras: a ``sample_weight`` of
lower rank than the values is broadcast over their trailing axes. ``result()`` of a metric
that has seen nothing is 0, without a warning (Keras' ``divide_no_nan``).

>>> acc = irf.nn.metrics.SparseCategoricalAccuracy()                 # doctest: +SKIP
>>> acc.update_state(labels, logits); float(acc.result())             # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from irflow import ops
from irflow.errors import IrflowError, ShapeError
from irflow.frontends.variables import Variable

__all__ = ["Metric", "Mean", "Sum", "Accuracy", "SparseCategoricalAccuracy", "CategoricalAccuracy",
           "Precision", "Recall", "AUC"]


def _rank(x: Any) -> int:
    return x.ndim if hasattr(x, "ndim") else len(np.shape(x))


def _shape(x: Any) -> tuple:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _static_size(x: Any) -> Any:
    """The element count of ``x``: a float when its shape is static, else a float64 tensor."""
    shape = tuple(x.shape)
    if all(isinstance(d, int) for d in shape):
        return float(np.prod(shape))
    return ops.cast(ops.reduce_prod(ops.shape_of(x)), "float64")


def _weighted_sums(values: Any, sample_weight: Any) -> tuple[Any, Any]:
    """(sum of values * weight, sum of weights) as float64, the weight broadcast over trailing axes."""
    v = ops.cast(values, "float64")
    if sample_weight is None:
        return ops.reduce_sum(v), _static_size(v)
    w = ops.cast(sample_weight, "float64")
    rv, rw = _rank(v), _rank(w)
    if rw > rv:
        raise ShapeError(f"sample_weight of rank {rw} for values of rank {rv}")
    for _ in range(rv - rw):
        w = ops.expand_dims(w, -1)
    w = w * ops.ones_like(v)
    return ops.reduce_sum(v * w), ops.reduce_sum(w)


def _divide_no_nan(a: Any, b: Any) -> Any:
    """a / b, and 0 where b is 0 (no warning), as ``tf.math.divide_no_nan``."""
    zero = ops.equal(b, 0.0)
    return ops.where(zero, ops.zeros_like(b), a / ops.where(zero, ops.ones_like(b), b))


class Metric:
    """Base class: keeps its state in non-trainable float64 Variables made by ``add_state``.

    >>> class Max(irf.nn.metrics.Metric):                                    # doctest: +SKIP
    ...     def __init__(self): super().__init__("max"); self.m = self.add_state("m", (), -np.inf)
    ...     def update_state(self, x): self.m.assign(irf.maximum(self.m, irf.reduce_max(x)))
    ...     def result(self): return self.m
    """

    def __init__(self, name: str):
        self.name = name
        self._states: list[tuple[str, Variable, np.ndarray]] = []

    def add_state(self, what: str, shape: Sequence[int] = (), init: float = 0.0) -> Variable:
        """A float64 state Variable named ``<metric>/<what>``, reset to ``init`` by ``reset_state``."""
        start = np.full(tuple(shape), init, np.float64)
        var = Variable(start.copy(), name=f"{self.name}/{what}", trainable=False)
        self._states.append((what, var, start))
        return var

    @property
    def variables(self) -> list[Variable]:
        """The state Variables (what a checkpoint saves)."""
        return [v for _, v, _ in self._states]

    def state_dict(self) -> dict[str, np.ndarray]:
        """State name -> a copy of its value (``{"total": ..., "count": ...}`` for Mean)."""
        return {what: np.array(v.numpy(), copy=True) for what, v, _ in self._states}

    def load_state_dict(self, state: Any) -> None:
        """Restore ``state_dict()``; names and shapes must match (an ``IrflowError`` otherwise)."""
        mine = {what: v for what, v, _ in self._states}
        if set(state) != set(mine):
            raise IrflowError(f"{type(self).__name__} {self.name!r}.load_state_dict: keys {sorted(state)}, "
                              f"expected {sorted(mine)}")
        for what, var in mine.items():
            var.assign(np.asarray(state[what], np.float64))

    def reset_state(self) -> None:
        """Forget every update."""
        for _, var, start in self._states:
            var.assign(start.copy())

    def update_state(self, *args: Any, **kwargs: Any) -> None:
        raise IrflowError(f"{type(self).__name__} does not implement update_state")

    def result(self) -> Any:
        raise IrflowError(f"{type(self).__name__} does not implement result")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class Mean(Metric):
    """The (weighted) mean of every value passed to ``update_state`` since the last reset.

    >>> m = irf.nn.metrics.Mean(); m.update_state(np.array([1.0, 3.0])); float(m.result())
    2.0
    """

    def __init__(self, name: str = "mean"):
        super().__init__(name)
        self.total = self.add_state("total")
        self.count = self.add_state("count")

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Add ``values`` (any shape, any numeric dtype), each counted with its weight."""
        total, count = _weighted_sums(values, sample_weight)
        self.total.assign_add(total)
        self.count.assign_add(count)

    def result(self) -> Any:
        """total / count, 0 before any update."""
        return _divide_no_nan(self.total, self.count)


class Sum(Metric):
    """The (weighted) sum of every value passed to ``update_state``, as ``keras.metrics.Sum``.

    >>> s = irf.nn.metrics.Sum(); s.update_state(np.array([1.0, 3.0])); float(s.result())
    4.0
    """

    def __init__(self, name: str = "sum"):
        super().__init__(name)
        self.total = self.add_state("total")

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Add the (weighted) sum of ``values``."""
        self.total.assign_add(_weighted_sums(values, sample_weight)[0])

    def result(self) -> Any:
        return self.total + 0.0  # a tensor, not the Variable itself


class Accuracy(Mean):
    """The fraction of correct predictions. ``update_state(y_true, y_pred)``: predictions are
    class ids of the labels' shape, or scores with one more axis (argmax taken).

    >>> a = irf.nn.metrics.Accuracy(); a.update_state(np.array([1, 0]), np.array([[0., 1.], [0., 1.]]))
    >>> float(a.result())
    0.5
    """

    def __init__(self, name: str = "accuracy"):
        super().__init__(name)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:  # type: ignore[override]
        """Count how many of ``y_pred`` equal ``y_true``."""
        lr, pr = _rank(y_true), _rank(y_pred)
        if pr == lr + 1:
            y_pred = ops.argmax(y_pred, axis=-1)
        elif pr != lr:
            raise ShapeError(f"{type(self).__name__}: predictions of rank {pr} against labels of rank {lr}: "
                             "give class ids (same rank) or scores (one more axis)")
        super().update_state(ops.equal(ops.cast(y_pred, "int64"), ops.cast(y_true, "int64")), sample_weight)


class SparseCategoricalAccuracy(Accuracy):
    """Integer labels against class scores, as ``keras.metrics.SparseCategoricalAccuracy``:
    ``argmax(y_pred, -1) == y_true``; labels of shape (N, 1) are squeezed to (N,).

    >>> a = irf.nn.metrics.SparseCategoricalAccuracy()
    >>> a.update_state(np.array([[2], [0]]), np.array([[0.1, 0.2, 0.7], [0.1, 0.8, 0.1]]))
    >>> float(a.result())
    0.5
    """

    def __init__(self, name: str = "sparse_categorical_accuracy"):
        super().__init__(name)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:  # type: ignore[override]
        """Count rows whose highest score is at the label."""
        lr, pr = _rank(y_true), _rank(y_pred)
        if lr == pr and _shape(y_true)[-1:] == (1,):
            y_true = ops.squeeze(y_true, -1)
            lr -= 1
        if lr + 1 != pr or _shape(y_true) != _shape(y_pred)[:-1]:
            raise ShapeError(f"SparseCategoricalAccuracy: labels of shape {_shape(y_true)} against "
                             f"scores of shape {_shape(y_pred)}: labels need one axis fewer (or a last axis of 1)")
        super().update_state(y_true, y_pred, sample_weight)


class CategoricalAccuracy(Accuracy):
    """One-hot (or probability) labels against scores: ``argmax(y_pred) == argmax(y_true)``.

    >>> a = irf.nn.metrics.CategoricalAccuracy()
    >>> a.update_state(np.eye(3)[[2, 0]], np.array([[0.1, 0.2, 0.7], [0.1, 0.8, 0.1]]))
    >>> float(a.result())
    0.5
    """

    def __init__(self, name: str = "categorical_accuracy"):
        super().__init__(name)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:  # type: ignore[override]
        """Count rows whose highest score is where the label's is."""
        if _shape(y_true) != _shape(y_pred):
            raise ShapeError(f"CategoricalAccuracy: labels of shape {_shape(y_true)} against scores of "
                             f"shape {_shape(y_pred)}: they must match (one-hot labels)")
        super().update_state(ops.argmax(y_true, axis=-1), ops.argmax(y_pred, axis=-1), sample_weight)


class _Confusion(Metric):
    """True/false positives/negatives counted at each threshold: a prediction is positive when
    ``y_pred > threshold`` (strictly, as Keras). Inputs are flattened, labels read as booleans."""

    def __init__(self, thresholds: Sequence[float], name: str):
        super().__init__(name)
        self.thresholds = np.asarray(thresholds, np.float64).reshape(-1)
        n = self.thresholds.size
        self.tp, self.fp = self.add_state("true_positives", (n,)), self.add_state("false_positives", (n,))
        self.tn, self.fn = self.add_state("true_negatives", (n,)), self.add_state("false_negatives", (n,))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Add this batch to the confusion counts at every threshold."""
        if _shape(y_true) != _shape(y_pred):
            raise ShapeError(f"{type(self).__name__}: labels of shape {_shape(y_true)} against "
                             f"predictions of shape {_shape(y_pred)}: they must match")
        pred = ops.reshape(ops.cast(y_pred, "float64"), (1, -1))
        truth = ops.cast(ops.reshape(ops.cast(y_true, "bool"), (1, -1)), "float64")
        if sample_weight is None:
            w = ops.ones_like(pred)
        else:
            wt = ops.cast(sample_weight, "float64")
            for _ in range(_rank(y_pred) - _rank(wt)):
                wt = ops.expand_dims(wt, -1)
            w = ops.reshape(wt * ops.ones_like(ops.cast(y_pred, "float64")), (1, -1))
        positive = ops.cast(ops.greater(pred, self.thresholds.reshape(-1, 1)), "float64")  # (thresholds, N)
        self.tp.assign_add(ops.reduce_sum(positive * truth * w, axis=1))
        self.fp.assign_add(ops.reduce_sum(positive * (1.0 - truth) * w, axis=1))
        self.fn.assign_add(ops.reduce_sum((1.0 - positive) * truth * w, axis=1))
        self.tn.assign_add(ops.reduce_sum((1.0 - positive) * (1.0 - truth) * w, axis=1))

    def _scalar_or_vector(self, x: Any) -> Any:
        return ops.reshape(x, ()) if self._single else x


class Precision(_Confusion):
    """tp / (tp + fp) at ``thresholds`` (default 0.5; a list gives one value per threshold).

    >>> p = irf.nn.metrics.Precision(); p.update_state(np.array([0, 1, 1]), np.array([0.9, 0.8, 0.2]))
    >>> float(p.result())
    0.5
    """

    def __init__(self, thresholds: float | Sequence[float] = 0.5, name: str = "precision"):
        self._single = np.ndim(thresholds) == 0
        super().__init__(np.atleast_1d(thresholds), name)

    def result(self) -> Any:
        return self._scalar_or_vector(_divide_no_nan(self.tp, self.tp + self.fp))


class Recall(_Confusion):
    """tp / (tp + fn) at ``thresholds`` (default 0.5; a list gives one value per threshold).

    >>> r = irf.nn.metrics.Recall(); r.update_state(np.array([0, 1, 1]), np.array([0.9, 0.8, 0.2]))
    >>> float(r.result())
    0.5
    """

    def __init__(self, thresholds: float | Sequence[float] = 0.5, name: str = "recall"):
        self._single = np.ndim(thresholds) == 0
        super().__init__(np.atleast_1d(thresholds), name)

    def result(self) -> Any:
        return self._scalar_or_vector(_divide_no_nan(self.tp, self.tp + self.fn))


class AUC(_Confusion):
    """Area under the ROC or precision-recall curve, approximated on thresholds (Keras' AUC).

    The default thresholds are Keras': ``num_thresholds - 2`` evenly spaced in (0, 1) plus
    ``-epsilon`` and ``1 + epsilon``; ``thresholds=`` gives them explicitly (the two end points
    are added). ``curve="ROC"`` sums trapezoids of (false positive rate, recall);
    ``curve="PR"`` uses Keras' interpolation of precision between thresholds (Davis and
    Goadrich). ``summation_method``: "interpolation" (default), "minoring" or "majoring".

    >>> auc = irf.nn.metrics.AUC(); auc.update_state(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    >>> round(float(auc.result()), 2)
    0.75
    """

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC", summation_method: str = "interpolation",
                 thresholds: Sequence[float] | None = None, name: str = "auc"):
        if curve not in ("ROC", "PR"):
            raise IrflowError(f"AUC: curve must be 'ROC' or 'PR', got {curve!r}")
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise IrflowError(f"AUC: summation_method must be interpolation, minoring or majoring, got {summation_method!r}")
        eps = 1e-7
        if thresholds is None:
            if num_thresholds < 2:
                raise IrflowError(f"AUC: num_thresholds must be > 1, got {num_thresholds}")
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        else:
            inner = sorted(float(t) for t in thresholds)
        self.curve, self.summation_method = curve, summation_method
        self.num_thresholds = len(inner) + 2
        super().__init__([0.0 - eps, *inner, 1.0 + eps], name)

    def result(self) -> Any:
        tp, fp, tn, fn = self.tp, self.fp, self.tn, self.fn
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc()
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, _divide_no_nan(tp, tp + fp)
        n = self.num_thresholds
        left, right = ops.slice(y, [0], [n - 1]), ops.slice(y, [1], [n])
        if self.summation_method == "interpolation":
            heights = (left + right) / 2.0
        elif self.summation_method == "minoring":
            heights = ops.where(ops.less(left, right), left, right)
        else:
            heights = ops.where(ops.greater(left, right), left, right)
        widths = ops.slice(x, [0], [n - 1]) - ops.slice(x, [1], [n])
        return ops.reduce_sum(widths * heights)

    def _interpolate_pr_auc(self) -> Any:
        # Davis & Goadrich (2006), as Keras' interpolate_pr_auc: between two thresholds precision
        # is interpolated along the line the true positives follow as false positives grow.
        n = self.num_thresholds

        def head(t: Any) -> Any:
            return ops.slice(t, [0], [n - 1])

        def tail(t: Any) -> Any:
            return ops.slice(t, [1], [n])

        tp, fp, fn = self.tp, self.fp, self.fn
        dtp = head(tp) - tail(tp)
        p = tp + fp
        dp = head(p) - tail(p)
        prec_slope = _divide_no_nan(dtp, ops.maximum(dp, 0.0))
        intercept = tail(tp) - prec_slope * tail(p)
        safe_p_ratio = ops.where(ops.logical_and(ops.greater(head(p), 0.0), ops.greater(tail(p), 0.0)),
                                 _divide_no_nan(head(p), ops.maximum(tail(p), 0.0)), ops.ones_like(tail(p)))
        pr_auc_increment = _divide_no_nan(prec_slope * (dtp + intercept * ops.log(safe_p_ratio)),
                                          ops.maximum(tail(tp) + tail(fn), 0.0))
        return ops.reduce_sum(pr_auc_increment)
