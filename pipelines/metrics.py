"""Competition metrics, as the leaderboards compute them, all from scikit-learn.

`fn(y, pred)`: for classification `y` holds class indices and `pred` probabilities, (N,) for
binary tasks (P(class 1)) and (N, K) for multi-class ones; label metrics take the argmax (binary:
p >= 0.5). For regression `y` and `pred` are values in the target's own units.

Each `Metric` says which way is better, which problems it scores, and whether it moves smoothly
enough to early-stop on: a label metric on a few hundred validation rows moves in steps of a row,
so a task scored by one early-stops on the validation loss instead (pipelines/proba.py).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, cohen_kappa_score, f1_score,
                             matthews_corrcoef, mean_absolute_error, r2_score, roc_auc_score,
                             root_mean_squared_error, root_mean_squared_log_error)

from core.errors import UsageError

KAGGLE_EPS = 1e-15   # Kaggle clips probabilities to [eps, 1 - eps] before the log
CLASSIFICATION = ("binary", "multiclass")
REGRESSION = ("regression",)


def hard_labels(proba: np.ndarray) -> np.ndarray:
    return (proba >= 0.5).astype(int) if proba.ndim == 1 else proba.argmax(1)


def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(accuracy_score(y, hard_labels(proba)))


def balanced_accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(balanced_accuracy_score(y, hard_labels(proba)))


def roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """Binary: the AUC of P(class 1). Multi-class: the mean one-vs-rest AUC over the classes."""
    if proba.ndim == 1:
        return float(roc_auc_score(y, proba))
    return float(roc_auc_score(y, proba, multi_class="ovr", labels=np.arange(proba.shape[1])))


def f1(y: np.ndarray, proba: np.ndarray) -> float:
    """Binary: F1 of class 1 (classes[1], the positive one). Multi-class: the unweighted mean over classes."""
    if proba.ndim == 1:
        return float(f1_score(y, hard_labels(proba)))
    return float(f1_score(y, hard_labels(proba), average="macro", labels=np.arange(proba.shape[1])))


def mcc(y: np.ndarray, proba: np.ndarray) -> float:
    return float(matthews_corrcoef(y, hard_labels(proba)))


def qwk(y: np.ndarray, proba: np.ndarray) -> float:
    """Quadratic weighted kappa of the predicted labels: the classes' sorted order is their scale."""
    return float(cohen_kappa_score(y, hard_labels(proba), weights="quadratic"))


def kaggle_nll(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """-log p(true class) per row (N,) as Kaggle scores it: clip to [1e-15, 1-1e-15], renormalise rows."""
    p = np.column_stack([1 - proba, proba]) if proba.ndim == 1 else proba
    p = np.clip(p.astype(np.float64), KAGGLE_EPS, 1 - KAGGLE_EPS)
    p /= p.sum(1, keepdims=True)
    return -np.log(p[np.arange(len(y)), y])


def kaggle_logloss(y: np.ndarray, proba: np.ndarray) -> float:
    """Multi-class logloss as Kaggle scores it: the mean of `kaggle_nll`."""
    return float(kaggle_nll(y, proba).mean())


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(root_mean_squared_error(y, pred))


def rmsle(y: np.ndarray, pred: np.ndarray) -> float:
    """RMSE of log1p: both must be >= 0 (`check_metric` checks the target; the log1p transform's
    inverse clips predictions at 0, as a submission must)."""
    return float(root_mean_squared_log_error(y, pred))


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(mean_absolute_error(y, pred))


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    return float(r2_score(y, pred))


class Metric(NamedTuple):
    fn: Callable[[np.ndarray, np.ndarray], float]
    maximize: bool
    problems: tuple[str, ...] = CLASSIFICATION   # the problem types it scores
    smooth: bool = True          # False: moves in whole-row steps (labels), too coarse to early-stop on


METRICS: dict[str, Metric] = {
    "accuracy": Metric(accuracy, True, smooth=False),
    "balanced_accuracy": Metric(balanced_accuracy, True, smooth=False),
    "roc_auc": Metric(roc_auc, True),
    "logloss": Metric(kaggle_logloss, False),
    "f1": Metric(f1, True, smooth=False),
    "mcc": Metric(mcc, True, smooth=False),
    "qwk": Metric(qwk, True, smooth=False),
    "rmse": Metric(rmse, False, REGRESSION),
    "rmsle": Metric(rmsle, False, REGRESSION),
    "mae": Metric(mae, False, REGRESSION),
    "r2": Metric(r2, True, REGRESSION),
}


def monitor(task) -> str:
    """What early stopping watches: the task's `monitor`, else its metric when that moves smoothly
    (or the task's holdout is large enough for a label metric), else the validation loss."""
    if task.monitor:
        return task.monitor
    return task.metric if METRICS[task.metric].smooth or task.steady_label_metrics else "loss"


def fitting(problem: str) -> list[str]:
    """The metric names that score `problem`."""
    return [name for name, m in METRICS.items() if problem in m.problems]


def check_metric(task, y: np.ndarray | None = None) -> None:
    """Before a run: the task's metric, extra metrics and early-stopping metric exist and score its
    problem; rmsle's targets are >= 0 (`y`: the encoded target, when known)."""
    names = [task.metric, *task.extra_metrics] + ([task.monitor] if task.monitor not in (None, "loss") else [])
    for name in names:
        metric = METRICS.get(name)
        if metric is None:
            raise UsageError(f"{task.name}: unknown metric {name!r}; known: {', '.join(METRICS)}")
        if task.problem not in metric.problems:
            raise UsageError(f"{task.name}: metric {name} does not score a {task.problem} problem; "
                             f"metrics for {task.problem}: {', '.join(fitting(task.problem))}")
    if "rmsle" in names and y is not None and (np.asarray(y) < 0).any():
        neg = np.asarray(y) < 0
        raise UsageError(f"{task.name}: rmsle needs targets >= 0 (the log of 1 + target), but {int(neg.sum())} "
                         f"are negative (first in data row {int(np.flatnonzero(neg)[0]) + 1}); use rmse or mae")
