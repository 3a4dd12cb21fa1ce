"""LightGBM's gradient-boosted trees as a learner (`--model lightgbm`), for every table problem.

Input: the task's own encoded fold matrix (its feature pipeline: numbers scaled, categories one-hot
or target-encoded), dense float32, as the nets and logreg see it; LightGBM's native categorical
splits on raw columns are not used.

Training: `lightgbm.train` (the engine under LGBMClassifier/LGBMRegressor) rather than those
wrappers, because its per-round evaluation function is handed the dataset it scores, so the
validation score is the task's own metric in the target's units (regression: through the fold's
target transform and back), exactly as pipelines/metrics.py computes it. Per boosting round:
    train_loss, val_loss   LightGBM's objective loss: binary_logloss, multi_logloss, or l2 (the
                           mean squared error of the transformed target, the nets' MSE)
    val_score              what early stopping watches (metrics.monitor): the task's metric, or
                           val_loss where that metric moves in whole-row steps (accuracy, f1, ...)
    val_<metric>           the task's metric beside it, when early stopping watches something else
Early stopping keeps the best round on val_score and stops `patience` rounds after it
(`round_patience`); the model saved, model<b>.txt (LightGBM's own text format), holds the trees
up to that round only. Regression fits the target as pipelines/target.py transforms it for the
metric (log1p first for rmsle, then standardised), saved beside it as target<b>.joblib.

Settings: LightGBM's own, fixed here (class attributes) rather than read from TrainConfig, whose
lr, epochs and batch_size are the nets' (an lr of 3e-3 would need 20,000 rounds); the config's
seed (through the fold and bag's random_state) and patience are read, and the threads are the
fold's share of the cores (`threads`: one on small folds).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from core.errors import UsageError, first_line
from core.files import replace_atomically
from pipelines.learner_base import Learner, as_numpy, load_joblib, target_path
from pipelines import runs
from pipelines.metrics import METRICS, monitor
from pipelines.target import TargetScaler
from tasks.task import Encoded, TaskBase

OBJECTIVES = {"binary": ("binary", "binary_logloss"), "multiclass": ("multiclass", "multi_logloss"),
              "regression": ("regression", "l2")}     # problem -> (objective, its loss as LightGBM names it)
MULTI_THREAD_ROWS = 10_000     # training rows from which a fold's trees grow on more than one thread


def lightgbm():
    """The lightgbm module, or one line saying how to install it (or, on macOS, the OpenMP its
    library links to: the import is an OSError then)."""
    try:
        import lightgbm as lgb
    except ImportError:
        raise UsageError("--model lightgbm needs the lightgbm package: pip install lightgbm") from None
    except OSError as e:
        raise UsageError(f"lightgbm's library did not load ({first_line(e)}); on macOS it needs "
                         "OpenMP: brew install libomp") from None
    return lgb


def round_patience(patience: int) -> int:
    """Rounds without a better validation score before a fold stops: config `patience` counts a
    net's epochs, and a boosting round is a far smaller step, so ten rounds each, at least 50."""
    return max(50, 10 * patience)


def threads(rows: int) -> int:
    """The fold's share of the cores (cv.fold_plan; a fold worker's torch threads, core/workers.py),
    but one thread under MULTI_THREAD_ROWS training rows: a round on a few thousand rows is too short
    to split, and OpenMP threads waiting on a core another process holds make it far longer (100
    rows, another process on the 2 cores: 0.06 ms a round on one thread, 46 ms on two)."""
    return torch.get_num_threads() if rows >= MULTI_THREAD_ROWS else 1


class LightGBMLearner(Learner):
    """LightGBM gradient-boosted trees on the task's encoded table, early-stopped per fold."""
    suffix = ".txt"
    progress_unit = "round"
    learning_rate = 0.05
    max_rounds = 2000          # early stopping usually ends a fold well before
    num_leaves = 31
    subsample = 0.8            # rows per tree (bagging every round)
    colsample = 0.8            # columns per tree

    def params(self, rows: int) -> dict:
        """LightGBM's parameters for a fold of `rows` training rows."""
        objective, loss = OBJECTIVES[self.task.problem]
        out = {"objective": objective, "metric": loss, "learning_rate": self.learning_rate,
               "num_leaves": self.num_leaves, "bagging_fraction": self.subsample, "bagging_freq": 1,
               "feature_fraction": self.colsample, "seed": self.random_state,
               "num_threads": threads(rows),
               "deterministic": True, "force_row_wise": True, "verbosity": -1}
        return out | ({"num_class": len(self.task.classes)} if objective == "multiclass" else {})

    def fit(self, enc: Encoded, y_train: np.ndarray, y_val: np.ndarray, on_step=None,
            checkpoint: Path | None = None) -> "LightGBMLearner":
        """Boost up to `max_rounds` rounds, one history row each; no checkpoint (a resumed run
        trains an unfinished bag again)."""
        lgb, task = lightgbm(), self.task
        if enc.x_train.ndim != 2:
            raise UsageError(f"lightgbm takes a table; {task.name}'s fold inputs have shape {tuple(enc.x_train.shape)}")
        if task.problem == "regression":
            self.target_ = TargetScaler(task.metric).fit(y_train)
            y_tr, y_va, decode = self.target_.transform(y_train), self.target_.transform(y_val), self.target_.inverse
        else:
            y_tr, y_va, decode = y_train, y_val, np.asarray
        params = self.params(len(y_train))
        train = lgb.Dataset(as_numpy(enc.x_train), label=y_tr)
        val = lgb.Dataset(as_numpy(enc.x_val), label=y_va, reference=train)
        watch, loss = monitor(task), OBJECTIVES[task.problem][1]

        def scores(preds, data) -> list:
            """The task's metrics on the validation rows (LightGBM computes the loss itself)."""
            if data is not val:
                return []
            pred = decode(preds)
            out = [] if watch == "loss" else [("score", METRICS[watch].fn(y_val, pred), METRICS[watch].maximize)]
            if watch != task.metric:
                out.append((f"val_{task.metric}", METRICS[task.metric].fn(y_val, pred), METRICS[task.metric].maximize))
            return out

        stopper = _Rounds(lgb, watch, loss, f"val_{task.metric}" if watch != task.metric else None,
                          round_patience(self.cfg.patience), self.learning_rate, on_step)
        booster = lgb.train(params, train, num_boost_round=self.max_rounds, valid_sets=[train, val],
                            valid_names=["train", "val"], feval=scores, callbacks=[stopper])
        # the best round's trees, through the text a saved model holds: predictions here and from
        # the run folder later are the same numbers
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=stopper.best_step))
        self.history_, self.best_step_, self.best_score_ = stopper.history, stopper.best_step, stopper.best_score
        self.seconds_before_ = 0.0
        return self

    def predict_proba(self, x, batch_fn=None) -> np.ndarray:
        """(N,) P(class 1) for binary, (N, classes) multi-class, values in the target's units."""
        out = np.asarray(self.booster_.predict(as_numpy(x)), np.float64)
        return self.target_.inverse(out) if self.task.problem == "regression" else out

    def save(self, path: Path) -> None:
        text = self.booster_.model_to_string()
        replace_atomically(path, lambda tmp: Path(tmp).write_text(text))
        if self.task.problem == "regression":
            runs.dump_joblib(self.target_, target_path(path))

    @classmethod
    def load(cls, path: Path, task: TaskBase, device: torch.device, precision: str = "fp32",
             trained_by: str | None = None) -> "LightGBMLearner":
        lgb = lightgbm()
        learner = cls(task, None, device)
        try:
            learner.booster_ = lgb.Booster(model_str=Path(path).read_text())
        except (OSError, lgb.basic.LightGBMError) as e:
            raise UsageError(f"{path}: missing or corrupted ({type(e).__name__})") from None
        if task.problem == "regression":
            learner.target_ = load_joblib(target_path(path))
        return learner


class _Rounds:
    """lightgbm.train's callback: a history row per round (on_step gets each), the best round on
    the watched score, and the stop `patience` rounds after it."""

    def __init__(self, lgb, watch: str, loss: str, extra: str | None, patience: int, lr: float, on_step):
        self.lgb, self.watch, self.loss, self.extra = lgb, watch, loss, extra
        self.patience, self.lr, self.on_step = patience, lr, on_step
        self.maximize = watch != "loss" and METRICS[watch].maximize
        self.history, self.best_step, self.best_score, self.best_eval = [], 0, float("nan"), []
        self.start = time.perf_counter()

    def __call__(self, env) -> None:
        got = {(r[0], r[1]): float(r[2]) for r in env.evaluation_result_list}
        step, val_loss = env.iteration + 1, got["val", self.loss]
        score = val_loss if self.watch == "loss" else got["val", "score"]
        row = {"epoch": step, "train_loss": got["train", self.loss], "val_loss": val_loss, "val_score": score}
        if self.extra:
            row[self.extra] = got["val", self.extra]
        row |= {"lr": self.lr, "seconds": time.perf_counter() - self.start}
        self.history.append(row)
        if self.on_step is not None:
            self.on_step(row)
        if self.best_step == 0 or (score > self.best_score if self.maximize else score < self.best_score):
            self.best_step, self.best_score, self.best_eval = step, score, list(env.evaluation_result_list)
        elif step - self.best_step >= self.patience:
            raise self.lgb.callback.EarlyStopException(self.best_step - 1, self.best_eval)
