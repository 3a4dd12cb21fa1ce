"""Kaggle's metrics (pipelines/metrics.py) against hand computations, and the checks that keep a
metric to the problems it scores."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.errors import UsageError
from pipelines.metrics import METRICS, check_metric, fitting, monitor

Y2 = np.array([0, 0, 1, 1, 1])
P2 = np.array([0.2, 0.6, 0.7, 0.4, 0.9])       # labels 0 1 1 0 1: TP 2, FP 1, FN 1, TN 1


def score(name, y, p):
    return METRICS[name].fn(np.asarray(y), np.asarray(p, dtype=float))


def test_binary_label_metrics_by_hand():
    assert score("accuracy", Y2, P2) == pytest.approx(3 / 5)
    assert score("balanced_accuracy", Y2, P2) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert score("f1", Y2, P2) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert score("mcc", Y2, P2) == pytest.approx((2 * 1 - 1 * 1) / np.sqrt(3 * 3 * 2 * 2))


def test_roc_auc_by_hand_binary_and_one_vs_rest():
    # positive/negative pairs ranked right: (0.7,0.2) (0.7,0.6) (0.4,0.2) (0.9,0.2) (0.9,0.6); wrong: (0.4,0.6)
    assert score("roc_auc", Y2, P2) == pytest.approx(5 / 6)
    y = np.array([0, 1, 2, 2])
    p = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    # class 0: 0.8 above all three others -> 1; class 1: 0.6 above 0.1, 0.2, 0.4 -> 1;
    # class 2: positives 0.7, 0.1 against 0.1, 0.1 -> (1 + 1 + 0.5 + 0.5) / 4
    assert score("roc_auc", y, p) == pytest.approx((1 + 1 + 0.75) / 3)


def test_multiclass_f1_is_the_macro_mean_and_qwk_weighs_distance():
    y = np.array([0, 1, 2, 2])
    p = np.eye(3)[[0, 2, 2, 1]]                  # predicted 0, 2, 2, 1
    # F1 per class: 0 -> 1, 1 -> 0 (no TP), 2 -> 2*1/(2*1+1+1) = 0.5
    assert score("f1", y, p) == pytest.approx((1 + 0 + 0.5) / 3)
    # quadratic kappa: 1 - sum(w O) / sum(w E), w_ij = (i-j)^2 / 4
    observed = np.zeros((3, 3))
    for t, q in zip(y, [0, 2, 2, 1]):
        observed[t, q] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    w = (np.subtract.outer(np.arange(3), np.arange(3)) ** 2) / 4
    assert score("qwk", y, p) == pytest.approx(1 - (w * observed).sum() / (w * expected).sum())


def test_logloss_keeps_kaggles_clipping():
    assert np.isfinite(score("logloss", [0, 1], [1.0, 0.0]))       # both wrong with certainty: clipped
    assert score("logloss", [0, 1], [1.0, 0.0]) == pytest.approx(-np.log(1e-15), rel=1e-6)


def test_regression_metrics_by_hand():
    y, p = np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 1.0])
    assert score("rmse", y, p) == pytest.approx(np.sqrt((1 + 0 + 9) / 3))
    assert score("mae", y, p) == pytest.approx((1 + 0 + 3) / 3)
    assert score("r2", y, p) == pytest.approx(1 - 10 / ((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2))
    assert score("rmsle", y, p) == pytest.approx(np.sqrt(np.mean((np.log1p(y) - np.log1p(p)) ** 2)))


def test_each_metric_says_direction_problems_and_smoothness():
    assert [n for n, m in METRICS.items() if not m.maximize] == ["logloss", "rmse", "rmsle", "mae"]
    assert fitting("regression") == ["rmse", "rmsle", "mae", "r2"]
    assert "logloss" in fitting("multiclass") and "rmse" not in fitting("binary")
    assert {n for n, m in METRICS.items() if not m.smooth} == {"accuracy", "balanced_accuracy", "f1", "mcc", "qwk"}


def _task(problem="regression", metric="rmse", monitor=None, extra=(), steady=False):
    return SimpleNamespace(name="toy", problem=problem, metric=metric, extra_metrics=extra, monitor=monitor,
                           steady_label_metrics=steady)


def test_a_metric_for_another_problem_is_one_line_naming_those_that_fit():
    with pytest.raises(UsageError) as e:
        check_metric(_task("regression", "accuracy"))
    assert str(e.value) == ("toy: metric accuracy does not score a regression problem; "
                            "metrics for regression: rmse, rmsle, mae, r2")
    with pytest.raises(UsageError, match="metric rmse does not score a binary problem"):
        check_metric(_task("binary", "accuracy", extra=("rmse",)))
    with pytest.raises(UsageError, match="unknown metric 'auc'"):
        check_metric(_task("binary", "accuracy", monitor="auc"))
    check_metric(_task("multiclass", "qwk", monitor="loss"))


def test_rmsle_refuses_negative_targets():
    check_metric(_task(metric="rmsle"), np.array([0.0, 3.0]))
    with pytest.raises(UsageError, match=r"rmsle needs targets >= 0 .* 1 are negative \(first in data row 2\)"):
        check_metric(_task(metric="rmsle"), np.array([0.0, -3.0, 2.0]))


def test_label_metrics_early_stop_on_the_loss_unless_the_task_says_otherwise():
    assert monitor(_task("binary", "accuracy")) == "loss"
    assert monitor(_task("binary", "mcc", monitor="roc_auc")) == "roc_auc"
    assert monitor(_task("multiclass", "accuracy", steady=True)) == "accuracy"     # images' large holdouts
    assert monitor(_task("multiclass", "logloss")) == "logloss"
    assert monitor(_task("regression", "rmsle")) == "rmsle"
