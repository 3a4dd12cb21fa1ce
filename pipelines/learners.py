"""The learner seam: what the fold loop (pipelines/cv.py) and prediction (pipelines/predict.py)
call to train one model on a fold and to use it again, whatever library it comes from.

A learner follows the scikit-learn contract: `__init__` stores (task, cfg, device, random_state);
`fit` returns self and sets attributes ending in `_`. The whole interface:

    encode_fold(task, cfg, inp, tr, va, test) -> Encoded    classmethod: the fold's inputs, fit on its training rows
    fold_input(task, encoder, columns, data, device, fold_dir) -> (x, batch_fn)   classmethod: test rows, the same way
    fit(enc, y_train, y_val, on_step=None, checkpoint=None) -> self
        sets history_ (one row per unit of progress), best_step_, best_score_, seconds_before_
    predict_proba(x, batch_fn=None) -> ndarray      (N,) binary, (N, classes) otherwise
    save(path); load(path, task, device, precision, trained_by) -> learner     classmethod
        (precision: the run's, as it trained; trained_by: its commit, named if the file no longer loads)
    suffix            the saved model's file suffix: model<b><suffix> in the fold directory
    progress_unit     what a history row counts ('epoch' for nets), the pruner's step

Every row of `history_` carries `epoch` (the step, 1-based), `train_loss`, `val_loss`, `val_score`
`lr` (NaN where there is none) and `seconds`, as the report's plots and the CLI's log read them. LEARNERS maps a config's `model` to its learner's
factory: every registered net to TorchLearner, `logreg` to scikit-learn's logistic regression.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from core.config import TrainConfig
from core.errors import UsageError
from core.registry import Registry
from core.runtime import as_tensor, seed_everything
from models import MODELS, build_model
from models.registry import model_args
from models.trainer import fit
from pipelines import runs
from pipelines.metrics import METRICS, kaggle_logloss
from pipelines.proba import cv_scores, epoch_metric_fn, loss_fn, predict_proba, score_fn
from tasks.task import Encoded, TaskBase

DATA_INIT_IMAGES = 5000    # training images a data-dependent init sees (airbench whitens on 5,000)

LEARNERS: Registry["Learner"] = Registry("model")


class Learner:
    """The defaults every learner shares: the task's own encoding, for training and for test rows."""
    suffix = ""
    progress_unit = "epoch"

    def __init__(self, task: TaskBase, cfg: TrainConfig | None, device: torch.device, random_state: int = 0):
        self.task, self.cfg, self.device, self.random_state = task, cfg, device, random_state

    @classmethod
    def encode_fold(cls, task: TaskBase, cfg: TrainConfig, inp, tr, va, test) -> Encoded:
        return task.encode_fold(cfg, inp, tr, va, test)

    @classmethod
    def fold_input(cls, task: TaskBase, encoder, columns: list[str], data, device, fold_dir: Path):
        return task.fold_input(encoder, columns, data, device, fold_dir)


class TorchLearner(Learner):
    """A registered net (models.MODELS) trained by the one trainer (models/trainer.py). In a run
    directory the trainer checkpoints every epoch to `checkpoint`; the model goes to model<b>.pt
    with its own model_args, so it rebuilds from the file alone."""
    suffix = ".pt"

    def fit(self, enc: Encoded, y_train: np.ndarray, y_val: np.ndarray, on_step=None,
            checkpoint: Path | None = None) -> "TorchLearner":
        task, cfg, device = self.task, self.cfg, self.device
        gen = seed_everything(self.random_state)
        self.args_ = model_args(cfg.model, cfg.to_dict(), **enc.shape)
        net = build_model(cfg.model, self.args_).to(device)
        if enc.batch_fn is not None:
            init_from_data(net, enc.x_train, enc.batch_fn)
        if device.type == "cuda" and task.channels_last:
            net = net.to(memory_format=torch.channels_last)     # NHWC: faster convs on tensor cores
        model = torch.compile(net) if cfg.compile else net   # shares `net`'s parameters
        extra = {"batch_transform": enc.batch_fn} if enc.batch_fn else {}
        score, maximize = score_fn(task)
        y_tr, y_va = as_tensor(y_train, device, torch.long), as_tensor(y_val, device, torch.long)
        res = fit(model, enc.x_train, y_tr, enc.x_val, y_va, cfg=cfg, loss_fn=loss_fn(task, cfg.label_smoothing),
                  score_fn=score, maximize=maximize, generator=gen, on_epoch=on_step, checkpoint=checkpoint,
                  epoch_metrics=epoch_metric_fn(task), **extra)
        self.net_, self.model_, self.precision_ = net, res.model, cfg.precision       # net_: uncompiled, for its state dict's keys
        self.history_, self.best_step_, self.best_score_ = res.history, res.best_epoch, res.best_score
        self.seconds_before_ = res.seconds_before
        return self

    def predict_proba(self, x, batch_fn=None) -> np.ndarray:
        return predict_proba(self.task, self.model_, x, batch_fn, self.precision_)

    def save(self, path: Path) -> None:
        runs.save_model(path, self.cfg.model, self.args_, self.net_)

    @classmethod
    def load(cls, path: Path, task: TaskBase, device: torch.device, precision: str = "fp32",
             trained_by: str | None = None) -> "TorchLearner":
        learner = cls(task, None, device)
        learner.model_, learner.precision_ = runs.load_model(path, device, trained_by), precision
        return learner


def init_from_data(net: torch.nn.Module, x_train: torch.Tensor, batch_fn) -> None:
    """A model's data-dependent init (fastnet's whitened stem), on the first DATA_INIT_IMAGES
    training images as the model sees them; models without one are left as built."""
    if hasattr(net, "init_from_data"):
        net.init_from_data(batch_fn(x_train[:DATA_INIT_IMAGES], False))


for _name in MODELS.names():
    LEARNERS.register(TorchLearner, name=_name, **MODELS.tags[_name])


@LEARNERS.register(name="logreg", kind="tabular")
class LogRegLearner(Learner):
    """scikit-learn's LogisticRegression on the task's encoded fold matrix: C=1, lbfgs, no early
    stopping (one fit, one history row), saved with joblib. The baseline a net must beat, and the
    proof that a learner other than the trainer goes through the stages."""
    suffix = ".joblib"
    progress_unit = "fit"
    max_iter = 1000      # lbfgs iterations; the default 100 stops short on wide one-hot matrices

    def fit(self, enc: Encoded, y_train: np.ndarray, y_val: np.ndarray, on_step=None,
            checkpoint: Path | None = None) -> "LogRegLearner":
        from sklearn.linear_model import LogisticRegression
        if enc.x_train.ndim != 2:
            raise UsageError(f"logreg takes a table; {self.task.name}'s fold inputs have shape {tuple(enc.x_train.shape)}")
        start = time.perf_counter()
        self.model_ = LogisticRegression(max_iter=self.max_iter, random_state=self.random_state)
        self.model_.fit(_numpy(enc.x_train), y_train)
        fit_loss = kaggle_logloss(y_train, self.predict_proba(enc.x_train))     # the trainer's cross-entropy
        val = self.predict_proba(enc.x_val)
        val_loss = kaggle_logloss(y_val, val)
        monitor = self.task.monitor or self.task.metric
        score = val_loss if monitor == "loss" else METRICS[monitor].fn(y_val, val)
        row = {"epoch": 1, "train_loss": fit_loss, "val_loss": val_loss, "val_score": score}
        if monitor != self.task.metric:       # as the trainer's epoch_metrics: the judged score beside it
            row[f"val_{self.task.metric}"] = cv_scores(self.task, y_val, val)[self.task.metric]
        row["lr"] = float("nan")             # no learning rate; the CLI's per-epoch log line (commands/training.py) reads the column
        row["seconds"] = time.perf_counter() - start
        if on_step is not None:
            on_step(row)
        self.history_, self.best_step_, self.best_score_, self.seconds_before_ = [row], 1, score, 0.0
        return self

    def predict_proba(self, x, batch_fn=None) -> np.ndarray:
        p = self.model_.predict_proba(_numpy(x)).astype(np.float64)
        return p[:, 1] if self.task.binary else p

    def save(self, path: Path) -> None:
        runs.dump_joblib(self.model_, path)

    @classmethod
    def load(cls, path: Path, task: TaskBase, device: torch.device, precision: str = "fp32",
             trained_by: str | None = None) -> "LogRegLearner":
        import joblib
        learner = cls(task, None, device)
        try:
            learner.model_ = joblib.load(path)
        except Exception as e:
            raise UsageError(f"{path}: missing or corrupted ({type(e).__name__})") from None
        return learner


def _numpy(x) -> np.ndarray:
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
