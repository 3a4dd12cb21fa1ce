"""From logits to what the stages use: the loss, the early-stopping signal, probabilities
(over the task's test-time views) and the CV scores.

Regression: the net's one output is the target in its transformed units (pipelines/target.py);
`to_proba` returns it as is, and the learner's `decode` brings it back to the target's units for
the scores, given with the validation targets in those units (`y_val`).

An ensemble net (TabM, models/tabm.py) returns (N, k, C): k members' outputs per row. The loss
scores each member on its own and averages (its authors' training); everything else reads the
ensemble's prediction, the members' mean probability (mean value for regression), through `ensemble`.

Shared by the cross-validation loop (pipelines/cv.py), predicting from a run (pipelines/predict.py),
tuning and blending.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from tasks.task import TaskBase
from pipelines.metrics import METRICS, monitor


def loss_fn(task: TaskBase, label_smoothing: float = 0.0):
    """The training loss of (outputs, targets); of an ensemble's (N, k, C) outputs, the members' mean loss."""
    if task.problem == "regression":       # squared error in the transformed target's units
        one = lambda out, y: F.mse_loss(out.squeeze(1), y)      # noqa: E731
    elif task.binary:
        one = lambda logits, y: F.binary_cross_entropy_with_logits(logits.squeeze(1), y.float())     # noqa: E731
    else:
        one = lambda logits, y: F.cross_entropy(logits, y, label_smoothing=label_smoothing)      # noqa: E731
    return lambda out, y: one(*_members(out, y))


def _members(out: torch.Tensor, y: torch.Tensor):
    """(N, k, C) outputs -> (N*k, C) rows, each with its row's target: the mean over them is the mean
    of the k members' losses."""
    return (out.flatten(0, 1), y.repeat_interleave(out.shape[1])) if out.ndim == 3 else (out, y)


def ensemble(task: TaskBase, out: torch.Tensor) -> torch.Tensor:
    """(N, k, C) outputs of k members -> (N, C) outputs of their mean prediction: the logits of the
    mean probability (classification), the mean value (regression). (N, C) outputs pass unchanged."""
    if out.ndim != 3:
        return out
    if task.problem == "regression":
        return out.mean(1)
    if task.binary:     # log of the mean p minus log of the mean 1-p (the log k's cancel), in log space
        return F.logsigmoid(out).logsumexp(1) - F.logsigmoid(-out).logsumexp(1)
    return F.log_softmax(out, -1).logsumexp(1) - math.log(out.shape[1])      # log of the mean probability


def _scorer(task: TaskBase, name: str, decode=None, y_val: np.ndarray | None = None):
    """metric `name` of (outputs, y): outputs through `decode` (default `to_proba`), against `y_val`
    when given (regression: the targets in their own units), else `y`."""
    metric, decode = METRICS[name], decode or (lambda out: to_proba(task, out))
    if y_val is not None:
        return lambda out, y: metric.fn(y_val, decode(out))
    return lambda out, y: metric.fn(y.cpu().numpy(), decode(out))


def score_fn(task: TaskBase, decode=None, y_val: np.ndarray | None = None):
    """Early-stopping signal and its direction (see `monitor`); `decode`, `y_val` as `_scorer`'s."""
    name = monitor(task)
    if name == "loss":
        return (lambda logits, y: loss_fn(task)(ensemble(task, logits), y).item()), False
    return _scorer(task, name, decode, y_val), METRICS[name].maximize


def epoch_metric_fn(task: TaskBase, decode=None, y_val: np.ndarray | None = None):
    """The task's metric per epoch, as `val_<metric>` in the history, when early stopping watches
    something else (the loss, ROC AUC), so val_score.png can show the score the task is judged by."""
    if monitor(task) == task.metric:
        return None     # val_score is the metric already
    score = _scorer(task, task.metric, decode, y_val)
    return lambda logits, y: {f"val_{task.metric}": score(logits, y)}


def to_proba(task: TaskBase, logits: torch.Tensor) -> np.ndarray:
    """Probabilities (an ensemble's: its members' mean); for regression the net's output as is (in the
    transformed target's units)."""
    logits = ensemble(task, logits)
    if task.problem == "regression":
        return logits.squeeze(1).double().cpu().numpy()
    p = torch.sigmoid(logits.squeeze(1)) if task.binary else torch.softmax(logits, 1)
    return p.double().cpu().numpy()


def predict_proba(task, model, x: torch.Tensor, batch_fn=None, precision: str = "fp32") -> np.ndarray:
    """Probabilities for `x`, the forward pass at `precision` (the run's), averaged over the task's
    test-time views (`predict_logits`: images average mirrored and shifted views, tables have one)."""
    return to_proba(task, task.predict_logits(model, x, batch_fn, precision))


def cv_scores(task: TaskBase, y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    return {m: METRICS[m].fn(y, proba) for m in (task.metric, *task.extra_metrics)}
