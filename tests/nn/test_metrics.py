"""Metrics against scikit-learn (and, for the PR curve's interpolation, Keras' formula written
out in NumPy here), eagerly and inside a traced step; empty metrics give 0 without a warning."""
import warnings

import numpy as np
import pytest

import irflow as irf
from irflow.nn import metrics

skm = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference for the metrics")
RNG = np.random.default_rng(7)


def _update(metric, traced, *args):
    if traced:
        irf.function(lambda *a: metric.update_state(*a))(*args)
    else:
        metric.update_state(*args)


@pytest.mark.parametrize("traced", [False, True])
def test_sparse_and_categorical_accuracy_match_sklearn_with_weights(traced):
    y = RNG.integers(0, 4, 50)
    scores = RNG.standard_normal((50, 4)).astype("float32")
    w = RNG.uniform(0, 2, 50)
    sparse, cat = metrics.SparseCategoricalAccuracy(), metrics.CategoricalAccuracy()
    for lo, hi in ((0, 20), (20, 50)):  # two batches accumulate
        _update(sparse, traced, y[lo:hi, None], scores[lo:hi], w[lo:hi])
        _update(cat, traced, np.eye(4, dtype="float32")[y[lo:hi]], scores[lo:hi], w[lo:hi])
    expected = skm.accuracy_score(y, scores.argmax(1), sample_weight=w)
    assert float(sparse.result()) == pytest.approx(expected, rel=1e-12)
    assert float(cat.result()) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("traced", [False, True])
def test_precision_recall_match_sklearn_at_several_thresholds(traced):
    y = RNG.integers(0, 2, 80)
    p = RNG.uniform(0, 1, 80)
    w = RNG.uniform(0, 1, 80)
    thresholds = [0.2, 0.5, 0.7]
    prec, rec = metrics.Precision(thresholds), metrics.Recall(thresholds)
    single = metrics.Precision()
    for lo, hi in ((0, 30), (30, 80)):
        _update(prec, traced, y[lo:hi], p[lo:hi], w[lo:hi])
        _update(rec, traced, y[lo:hi], p[lo:hi], w[lo:hi])
        _update(single, traced, y[lo:hi], p[lo:hi])
    for i, t in enumerate(thresholds):
        pred = (p > t).astype(int)  # Keras counts strictly greater as positive
        assert prec.result().numpy()[i] == pytest.approx(skm.precision_score(y, pred, sample_weight=w), rel=1e-12)
        assert rec.result().numpy()[i] == pytest.approx(skm.recall_score(y, pred, sample_weight=w), rel=1e-12)
    assert single.result().shape == ()
    assert float(single.result()) == pytest.approx(skm.precision_score(y, (p > 0.5).astype(int)), rel=1e-12)


def test_roc_auc_matches_sklearn_exactly_when_scores_fall_between_thresholds():
    # With 11 thresholds at 0.1, 0.2, ... scores at 0.05, 0.15, ... give the exact ROC points,
    # where the trapezoid sum is sklearn's roc_auc_score exactly.
    y = RNG.integers(0, 2, 200)
    p = (RNG.integers(0, 10, 200) + 0.5) / 10
    p = np.round(np.where(y == 1, np.minimum(p + 0.2, 0.95), p), 2)  # round: 0.15 + 0.2 != 0.35 in floats
    auc = metrics.AUC(num_thresholds=11)
    auc.update_state(y, p)
    assert float(auc.result()) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_roc_auc_with_default_thresholds_is_close_to_sklearn_and_traced_agrees():
    y = RNG.integers(0, 2, 300)
    p = 1 / (1 + np.exp(-(RNG.standard_normal(300) + 1.5 * y)))
    eager, traced = metrics.AUC(), metrics.AUC()
    eager.update_state(y, p)
    _update(traced, True, y, p)
    assert float(eager.result()) == pytest.approx(skm.roc_auc_score(y, p), abs=2e-3)
    assert float(traced.result()) == float(eager.result())


def _keras_pr_auc(y, p, num_thresholds):
    """Keras' interpolate_pr_auc, written out in NumPy from its definition."""
    eps = 1e-7
    th = np.array([-eps] + [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)] + [1 + eps])
    pos = p[None, :] > th[:, None]
    tp = (pos & (y == 1)).sum(1).astype(float)
    fp = (pos & (y == 0)).sum(1).astype(float)
    fn = (~pos & (y == 1)).sum(1).astype(float)
    total = 0.0
    for i in range(num_thresholds - 1):
        dtp = tp[i] - tp[i + 1]
        dp = (tp[i] + fp[i]) - (tp[i + 1] + fp[i + 1])
        slope = dtp / dp if dp > 0 else 0.0
        intercept = tp[i + 1] - slope * (tp[i + 1] + fp[i + 1])
        p0, p1 = tp[i] + fp[i], tp[i + 1] + fp[i + 1]
        ratio = p0 / p1 if p0 > 0 and p1 > 0 else 1.0
        denom = tp[i + 1] + fn[i + 1]
        total += slope * (dtp + intercept * np.log(ratio)) / denom if denom > 0 else 0.0
    return total


def test_pr_auc_matches_keras_interpolation_and_is_near_sklearn_average_precision():
    y = RNG.integers(0, 2, 300)
    p = 1 / (1 + np.exp(-(RNG.standard_normal(300) + 2.0 * y)))
    auc = metrics.AUC(curve="PR", num_thresholds=50)
    auc.update_state(y, p)
    assert float(auc.result()) == pytest.approx(_keras_pr_auc(y, p, 50), rel=1e-10)
    assert float(auc.result()) == pytest.approx(skm.average_precision_score(y, p), abs=0.03)


def test_sum_and_mean_with_weights():
    s, m = metrics.Sum(), metrics.Mean()
    v, w = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, 2.0])
    s.update_state(v, w)
    m.update_state(v, w)
    assert float(s.result()) == pytest.approx(0.5 * 3 + 2.0 * 7)
    assert float(m.result()) == pytest.approx((0.5 * 3 + 2.0 * 7) / (2 * 0.5 + 2 * 2.0))


def test_empty_metrics_are_zero_without_warnings():
    every = [metrics.Mean(), metrics.Sum(), metrics.Accuracy(), metrics.SparseCategoricalAccuracy(),
             metrics.CategoricalAccuracy(), metrics.Precision(), metrics.Recall(), metrics.AUC(),
             metrics.AUC(curve="PR")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for m in every:
            assert float(m.result()) == 0.0, m
    m = metrics.Precision()
    m.update_state(np.array([1, 0]), np.array([0.9, 0.1]))
    assert float(m.result()) == 1.0
    m.reset_state()
    assert float(m.result()) == 0.0


def test_shape_errors_name_the_metric():
    with pytest.raises(irf.ShapeError, match="SparseCategoricalAccuracy"):
        metrics.SparseCategoricalAccuracy().update_state(np.zeros((3, 2), "int64"), np.zeros((3, 4, 5)))
    with pytest.raises(irf.ShapeError, match="Precision"):
        metrics.Precision().update_state(np.zeros(3), np.zeros(4))
    with pytest.raises(irf.IrflowError, match="curve"):
        metrics.AUC(curve="XY")
