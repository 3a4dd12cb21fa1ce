"""Temperature scaling (Guo et al., 2017): one scalar T softens (T > 1) or sharpens (T < 1) every
prediction, p_T = softmax(log p / T). It leaves the predicted class and the ranking of one model's rows
as they are, so accuracy and a fold's ROC AUC do not move (the pooled OOF AUC may, a little:
each fold gets its own T), but a net trained to its best validation logloss
is still overconfident, and Kaggle's logloss punishes that (Otto: T ~ 1.1, -0.002 logloss).

T is fit on out-of-fold predictions, cross-fitted: fold k's rows are scaled by the T fitted on
the other folds' OOF rows, so no row's label sets its own calibration and the CV score stays
honest. The test predictions get the T fitted on every OOF row, applied to each fold model's
probabilities before they are averaged (T was fitted on single models' outputs).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from pipelines.metrics import KAGGLE_EPS, kaggle_logloss

BOUNDS = (0.25, 4.0)        # T outside this range means something is broken, not miscalibrated


def apply_temperature(proba: np.ndarray, t: float) -> np.ndarray:
    """p^(1/T), renormalised per row; (N,) binary P(class 1) or (N, K) multi-class. T = 1: `proba` as is."""
    if t == 1.0:
        return proba
    p = np.column_stack([1 - proba, proba]) if proba.ndim == 1 else proba
    logits = np.log(np.clip(p, KAGGLE_EPS, 1)) / t
    logits -= logits.max(1, keepdims=True)
    out = np.exp(logits)
    out /= out.sum(1, keepdims=True)
    return out[:, 1] if proba.ndim == 1 else out


def fit_temperature(proba: np.ndarray, y: np.ndarray) -> float:
    """The T in BOUNDS minimising the logloss of `proba` against labels `y`."""
    res = minimize_scalar(lambda t: kaggle_logloss(y, apply_temperature(proba, t)), bounds=BOUNDS,
                          method="bounded", options={"xatol": 1e-4})
    return float(res.x)


def cross_fit(oof: np.ndarray, y: np.ndarray, folds: list) -> tuple[np.ndarray, list[float], float]:
    """(calibrated OOF, fold k's T fitted on the other folds' rows, T fitted on every row)."""
    out = oof.copy()
    temps = []
    everything = np.arange(len(y))
    for _, va in folds:
        others = np.setdiff1d(everything, va)
        temps.append(fit_temperature(oof[others], y[others]))
        out[va] = apply_temperature(oof[va], temps[-1])
    return out, temps, fit_temperature(oof, y)
