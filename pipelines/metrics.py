"""Competition metrics on probabilities, as the leaderboards compute them.

`proba` is (N,) for binary tasks (P(class 1)) and (N, K) for multi-class tasks.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from sklearn.metrics import accuracy_score, roc_auc_score

KAGGLE_EPS = 1e-15   # Kaggle clips probabilities to [eps, 1 - eps] before the log


def hard_labels(proba: np.ndarray) -> np.ndarray:
    return (proba >= 0.5).astype(int) if proba.ndim == 1 else proba.argmax(1)


def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(accuracy_score(y, hard_labels(proba)))


def roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    return float(roc_auc_score(y, proba))


def kaggle_nll(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """-log p(true class) per row (N,) as Kaggle scores it: clip to [1e-15, 1-1e-15], renormalise rows."""
    p = np.column_stack([1 - proba, proba]) if proba.ndim == 1 else proba
    p = np.clip(p.astype(np.float64), KAGGLE_EPS, 1 - KAGGLE_EPS)
    p /= p.sum(1, keepdims=True)
    return -np.log(p[np.arange(len(y)), y])


def kaggle_logloss(y: np.ndarray, proba: np.ndarray) -> float:
    """Multi-class logloss as Kaggle scores it: the mean of `kaggle_nll`."""
    return float(kaggle_nll(y, proba).mean())


class Metric(NamedTuple):
    fn: Callable[[np.ndarray, np.ndarray], float]
    maximize: bool


METRICS: dict[str, Metric] = {
    "accuracy": Metric(accuracy, True),
    "roc_auc": Metric(roc_auc, True),
    "logloss": Metric(kaggle_logloss, False),
}
