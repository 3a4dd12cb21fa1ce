"""A regression run's OOF plots, in place of the classification ones (pipelines/plots.py makes
them from oof.csv's `target` and `prediction` columns):

    predicted.png      OOF predicted against true values, the diagonal where they would agree
    residuals.png      OOF residuals (true - predicted) against the predicted value: a trend or a
                       funnel says where the model is biased or its error grows
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_predicted(y: np.ndarray, pred: np.ndarray, path: Path, figure, save) -> Path:
    """`figure(size) -> (fig, ax)` and `save(fig, path)` are plots.py's, shared by every plot."""
    fig, ax = figure((5.6, 5.2))
    ax.scatter(y, pred, s=8, alpha=0.5, color="C0", linewidths=0)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], ":", color="grey", label="predicted = true")
    ax.set(xlabel="true value", ylabel="OOF predicted value", title=f"OOF predicted vs true (n={len(y)})")
    ax.legend(loc="upper left")
    return save(fig, path)


def plot_residuals(y: np.ndarray, pred: np.ndarray, path: Path, figure, save) -> Path:
    fig, ax = figure((6.4, 4.4))
    residual = y - pred
    ax.scatter(pred, residual, s=8, alpha=0.5, color="C0", linewidths=0)
    ax.axhline(0, color="grey", ls=":")
    ax.axhline(residual.mean(), color="C3", ls="--", label=f"mean {residual.mean():.4g}")
    ax.set(xlabel="OOF predicted value", ylabel="residual (true - predicted)",
           title=f"OOF residuals (RMSE {np.sqrt(np.mean(residual ** 2)):.4g}, n={len(y)})")
    ax.legend()
    return save(fig, path)
