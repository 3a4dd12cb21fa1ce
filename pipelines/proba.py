"""From logits to what the stages use: the loss, the early-stopping signal, probabilities
(over the task's test-time views) and the CV scores.

Shared by the cross-validation loop (pipelines/cv.py), predicting from a run (pipelines/predict.py),
tuning and blending.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tasks.task import TaskBase
from pipelines.metrics import METRICS


def loss_fn(task: TaskBase, label_smoothing: float = 0.0):
    if task.binary:
        return lambda logits, y: F.binary_cross_entropy_with_logits(logits.squeeze(1), y.float())
    return lambda logits, y: F.cross_entropy(logits, y, label_smoothing=label_smoothing)


def score_fn(task: TaskBase):
    """Early-stopping signal and its direction (see Task.monitor)."""
    if task.monitor == "loss":
        return (lambda logits, y: loss_fn(task)(logits, y).item()), False
    metric = METRICS[task.monitor or task.metric]
    return (lambda logits, y: metric.fn(y.cpu().numpy(), to_proba(task, logits))), metric.maximize


def epoch_metric_fn(task: TaskBase):
    """The task's metric per epoch, as `val_<metric>` in the history, when early stopping watches
    something else (the loss, ROC AUC), so val_score.png can show the score the task is judged by."""
    if (task.monitor or task.metric) == task.metric:
        return None     # val_score is the metric already
    metric = METRICS[task.metric]
    return lambda logits, y: {f"val_{task.metric}": metric.fn(y.cpu().numpy(), to_proba(task, logits))}


def to_proba(task: TaskBase, logits: torch.Tensor) -> np.ndarray:
    p = torch.sigmoid(logits.squeeze(1)) if task.binary else torch.softmax(logits, 1)
    return p.double().cpu().numpy()


def predict_proba(task, model, x: torch.Tensor, batch_fn=None, precision: str = "fp32") -> np.ndarray:
    """Probabilities for `x`, the forward pass at `precision` (the run's), averaged over the task's
    test-time views (`predict_logits`: images average mirrored and shifted views, tables have one)."""
    return to_proba(task, task.predict_logits(model, x, batch_fn, precision))


def cv_scores(task: TaskBase, y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    return {m: METRICS[m].fn(y, proba) for m in (task.metric, *task.extra_metrics)}
