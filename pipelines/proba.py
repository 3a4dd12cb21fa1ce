"""From logits to what the stages use: the loss, the early-stopping signal, probabilities
(with test-time views for images) and the CV scores.

Shared by the cross-validation loop (pipelines/cv.py), predicting from a run (pipelines/predict.py),
tuning and blending.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from features.images import shift_images
from models.trainer import predict_logits
from pipelines import Task
from pipelines.metrics import METRICS


def as_tensor(x, device, dtype=torch.float32) -> torch.Tensor:
    x = np.ascontiguousarray(x)
    if not x.flags.writeable:     # IDX bytes read with np.frombuffer: torch would share a read-only buffer
        x = x.copy()
    return torch.as_tensor(x, dtype=dtype, device=device)


def loss_fn(task: Task, label_smoothing: float = 0.0):
    if task.binary:
        return lambda logits, y: F.binary_cross_entropy_with_logits(logits.squeeze(1), y.float())
    return lambda logits, y: F.cross_entropy(logits, y, label_smoothing=label_smoothing)


def score_fn(task: Task):
    """Early-stopping signal and its direction (see Task.monitor)."""
    if task.monitor == "loss":
        return (lambda logits, y: loss_fn(task)(logits, y).item()), False
    metric = METRICS[task.monitor or task.metric]
    return (lambda logits, y: metric.fn(y.cpu().numpy(), to_proba(task, logits))), metric.maximize


def epoch_metric_fn(task: Task):
    """The task's metric per epoch, as `val_<metric>` in the history, when early stopping watches
    something else (the loss, ROC AUC), so val_score.png can show the score the task is judged by."""
    if (task.monitor or task.metric) == task.metric:
        return None     # val_score is the metric already
    metric = METRICS[task.metric]
    return lambda logits, y: {f"val_{task.metric}": metric.fn(y.cpu().numpy(), to_proba(task, logits))}


def to_proba(task: Task, logits: torch.Tensor) -> np.ndarray:
    p = torch.sigmoid(logits.squeeze(1)) if task.binary else torch.softmax(logits, 1)
    return p.double().cpu().numpy()


def predict_proba(task, model, x: torch.Tensor, batch_fn=None, precision: str = "fp32") -> np.ndarray:
    """Probabilities for `x`, the forward pass at `precision` (the run's). Image tasks average
    test-time views (airbench's TTA): x and its mirror when the task flips; with `tta_translate`,
    half the weight goes to those views shifted diagonally by +-tta_translate pixels."""
    bf = batch_fn or (lambda xb, training: xb)

    def views(shift: int) -> torch.Tensor:
        def view(xb, training, mirror=False):
            out = shift_images(bf(xb, training), shift)
            out = out.flip(3) if mirror else out
            return out.contiguous(memory_format=torch.channels_last) if out.dim() == 4 else out   # NHWC: see batch_transform
        logits = predict_logits(model, x, batch_transform=view, precision=precision)
        if getattr(task, "flip", False):
            mirrored = predict_logits(model, x, batch_transform=lambda xb, t: view(xb, t, True), precision=precision)
            logits = (logits + mirrored) / 2
        return logits

    logits = views(0)
    pixels = getattr(task, "tta_translate", 0)
    if pixels:
        logits = (logits + (views(pixels) + views(-pixels)) / 2) / 2
    return to_proba(task, logits)


def cv_scores(task: Task, y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    return {m: METRICS[m].fn(y, proba) for m in (task.metric, *task.extra_metrics)}
