"""Gradient-boosted trees as learners: what LightGBM (`--model lightgbm`, here), XGBoost and
CatBoost (pipelines/learners_xgb_cat.py) share, for every table problem, and LightGBM itself.

Input: the task's own encoded fold matrix (its feature pipeline: numbers scaled, categories one-hot
or target-encoded), dense float32, as the nets and logreg see it; but on a competition inferred from
its files, each category may be one column of integer codes that the library splits on natively
(pipelines/learners_tree_codes.py; `trees` setting native_categorical 1, off by default).

Training, the same for each library (`BoostedTrees.fit`): the library's own training loop, with its
per-round evaluation hook handed the validation rows' predictions, so the validation score is the
task's own metric in the target's units (regression: through the fold's target transform and back),
exactly as pipelines/metrics.py computes it. Per boosting round (`Rounds`, one history row each):
    train_loss, val_loss   the objective's loss: logloss (binary), multi-class logloss, or the mean
                           squared error of the transformed target (the nets' MSE)
    val_score              what early stopping watches (metrics.monitor): the task's metric, or
                           val_loss where that metric moves in whole-row steps (accuracy, f1, ...)
    val_<metric>           the task's metric beside it, when early stopping watches something else
Early stopping keeps the best round on val_score and stops `patience` rounds after it
(`round_patience`); the model saved (model<b><suffix>, in the library's own format) holds the trees
up to that round only, and the learner predicts from that saved form, so predictions here and from
the run folder later are the same numbers. Regression fits the target as pipelines/target.py
transforms it for the metric (log1p first for rmsle, then standardised), saved beside the model as
target<b>.joblib.

Settings: each library's own, as class attributes (learning rate 0.05, early stopping; the tree
shape the library's usual Kaggle starting point), not TrainConfig's lr/epochs/batch_size, which are
the nets' (an lr of 3e-3 would need 20,000 rounds). Config key `trees`, one dict, overrides them by
name (`--set trees='{"num_leaves": 63}'`): one key rather than a dozen flat ones because each library
names and shapes its trees differently (leaves, depth, min child samples or weight), and a flat key
per knob would be read by one learner of the three and ignored by the rest. A learner names what it
tunes in `tunable` (its `space`, what `tune` searches, suggests exactly those names, so a tuned
trial's dict replays through `train --params` as it is), and `check` refuses any name outside those
and `UNTUNED` before a run starts. The config's seed (through the fold and bag's random_state) and patience are read, and
the threads are the fold's share of the cores (`threads`: one on small folds).
"""
from __future__ import annotations

import numbers
import time
from pathlib import Path

import numpy as np
import torch

from core.errors import UsageError, first_line
from core.files import replace_atomically
from pipelines import runs
from pipelines.learner_base import Learner, as_numpy, load_joblib, target_path
from pipelines.learners_tree_codes import categorical_columns, native_fold
from pipelines.metrics import METRICS, monitor
from pipelines.target import TargetScaler
from tasks.task import Encoded, TaskBase

OBJECTIVES = {"binary": ("binary", "binary_logloss"), "multiclass": ("multiclass", "multi_logloss"),
              "regression": ("regression", "l2")}     # problem -> (objective, its loss as LightGBM names it)
MULTI_THREAD_ROWS = 10_000     # training rows from which a fold's trees grow on more than one thread
UNTUNED = ("max_rounds", "native_categorical")     # settings `trees` may name that no search draws


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


def common_space(trial) -> dict:
    """What every tree learner tunes alike: step size, row and column sampling, L2 on the leaves."""
    return {"learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample": trial.suggest_float("colsample", 0.3, 1.0),
            "l2": trial.suggest_float("l2", 0.0, 30.0)}


class BoostedTrees(Learner):
    """The shared shape of a gradient-boosted trees learner. A subclass names its `module` and
    `package`, its settings (class attributes, listed in `tunable`) and `space`, and implements
    `boost` (train with a `Rounds` hooked in, the columns `categorical` as categories, return the
    model cut at its best round), `raw_predict`,
    `model_bytes` and `from_bytes` (the saved format), with `load_errors` what a bad file raises."""
    progress_unit = "round"
    module = package = ""
    learning_rate = 0.05         # shrinkage per round
    max_rounds = 2000            # early stopping usually ends a fold well before
    subsample = 0.8              # rows per tree
    colsample = 0.8              # columns per tree
    native_categorical = 0       # 1: an inferred competition's categories as codes the library splits on
                                 # (pipelines/learners_tree_codes.py, which says why 0 by default)
    tunable: tuple[str, ...] = ("learning_rate", "subsample", "colsample", "l2")

    @classmethod
    def library(cls):
        """The library's module, or one line saying how to install it (or, on macOS, the OpenMP its
        native library links to: the import is an OSError then)."""
        try:
            return __import__(cls.module)
        except ImportError:
            raise UsageError(f"--model {cls.name} needs the {cls.package} package: pip install {cls.package}") from None
        except OSError as e:
            raise UsageError(f"{cls.package}'s library did not load ({first_line(e)}); on macOS it needs "
                             "OpenMP: brew install libomp") from None

    @classmethod
    def check(cls, cfg) -> None:
        """Before a run folder is made: the library imports, and `trees` names only numbers this
        learner reads; stopping='fixed' (a net's whole epochs schedule) has no round count to give trees."""
        cls.library()
        if cfg.stopping == "fixed":
            raise UsageError(f"stopping=fixed trains a net's whole epochs schedule; {cls.name} boosts until early "
                             "stopping, with no fixed round count: use stopping=refit or inner")
        for key, value in (cfg.trees or {}).items():
            if key not in cls.tunable + UNTUNED:
                raise UsageError(f"config key trees: {cls.name} does not read {key!r}; it reads "
                                 f"{', '.join(cls.tunable + UNTUNED)}")
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
                raise UsageError(f"config key trees: {key} wants a number >= 0, got {value!r}")
            if isinstance(getattr(cls, key), int) and value != int(value):
                raise UsageError(f"config key trees: {key} wants a whole number, got {value!r}")

    @classmethod
    def space(cls, trial) -> dict:
        """Optuna's draw of the `trees` dict: the names in `tunable`."""
        return common_space(trial)

    @classmethod
    def defaults(cls) -> dict:
        """The `trees` dict of the class's own settings: a study's first trial."""
        return {k: getattr(cls, k) for k in cls.tunable}

    @classmethod
    def setting_of(cls, cfg, name: str):
        """A setting: the config's `trees` entry, else the class's."""
        given = (getattr(cfg, "trees", None) or {}).get(name)
        return type(getattr(cls, name))(given) if given is not None else getattr(cls, name)

    def setting(self, name: str):
        return self.setting_of(self.cfg, name)

    @classmethod
    def encode_fold(cls, task, cfg, inp, tr, va, test) -> Encoded:
        """The task's encoding, or on an inferred competition its categories as codes."""
        if cls.encoding(task, cfg) == "codes":
            return native_fold(task, cfg, inp, tr, va, test)
        return task.encode_fold(cfg, inp, tr, va, test)

    @classmethod
    def encoding(cls, task, cfg) -> str:
        native = getattr(task, "spec", None) is not None and cls.setting_of(cfg, "native_categorical")
        return "codes" if native else "task"

    def fit(self, enc: Encoded, y_train: np.ndarray, y_val: np.ndarray, on_step=None,
            checkpoint: Path | None = None, steps: int | None = None, grow: float = 1.0) -> "BoostedTrees":
        """Boost up to `max_rounds` rounds, one history row each; no checkpoint (a resumed run
        trains an unfinished bag again). `steps` (stopping='refit'): boost exactly `steps` x `grow`
        rounds and keep them all. A round is one step whatever the rows, so the count grows with
        them, as a net's epoch takes more steps over more rows."""
        lib, task = self.library(), self.task
        if enc.x_train.ndim != 2:
            raise UsageError(f"{self.name} takes a table; {task.name}'s fold inputs have shape {tuple(enc.x_train.shape)}")
        if task.problem == "regression":
            self.target_ = TargetScaler(task.metric).fit(y_train)
            y_tr, y_va, decode = self.target_.transform(y_train), self.target_.transform(y_val), self.target_.inverse
        else:
            y_tr, y_va, decode = y_train, y_val, np.asarray
        limit = max(1, round(int(steps) * grow)) if steps else self.setting("max_rounds")
        rounds = Rounds(task, decode, y_val, round_patience(self.cfg.patience), self.setting("learning_rate"), on_step,
                        limit, fixed=bool(steps))
        data = self.boost(lib, as_numpy(enc.x_train), y_tr, as_numpy(enc.x_val), y_va, rounds, categorical_columns(enc.encoder))
        self.model_ = self.from_bytes(lib, data)
        self.history_, self.best_step_, self.best_score_ = rounds.history, rounds.best_step, rounds.best_score
        self.seconds_before_ = 0.0
        return self

    def predict_proba(self, x, batch_fn=None) -> np.ndarray:
        """(N,) P(class 1) for binary, (N, classes) multi-class, values in the target's units."""
        out = np.asarray(self.raw_predict(as_numpy(x)), np.float64)
        return self.target_.inverse(out) if self.task.problem == "regression" else out

    def save(self, path: Path) -> None:
        data = self.model_bytes()
        replace_atomically(path, lambda tmp: Path(tmp).write_bytes(data))
        if self.task.problem == "regression":
            runs.dump_joblib(self.target_, target_path(path))

    @classmethod
    def load(cls, path: Path, task: TaskBase, device: torch.device, precision: str = "fp32",
             trained_by: str | None = None) -> "BoostedTrees":
        lib = cls.library()
        learner = cls(task, None, device)
        try:
            learner.model_ = cls.from_bytes(lib, Path(path).read_bytes())
        except (OSError, *cls.load_errors(lib)) as e:
            raise UsageError(f"{path}: missing or corrupted ({type(e).__name__})") from None
        if task.problem == "regression":
            learner.target_ = load_joblib(target_path(path))
        return learner

    @property
    def seed(self) -> int:
        return self.random_state % 2 ** 31       # the libraries take a 32-bit signed seed


class Rounds:
    """The per-round bookkeeping every tree library's hook calls: `scores(pred)` with the validation
    rows' predictions (the library's transformed output: probabilities, or the transformed target)
    when the watched score is not the loss, then `end(step, train_loss, val_loss)` once a round,
    which records its history row (on_step gets each), keeps the best round on the watched score,
    and says whether to stop (`patience` rounds after the best). `limit`: the rounds the library
    is asked for. `fixed`: that limit is a count chosen elsewhere (stopping='refit'): the last round
    is the one kept, and only the limit stops."""

    def __init__(self, task, decode, y_val: np.ndarray, patience: int, lr: float, on_step, limit: int,
                 fixed: bool = False):
        self.watch, self.metric, self.decode, self.y_val = monitor(task), task.metric, decode, y_val
        self.extra = f"val_{task.metric}" if self.watch != task.metric else None
        self.patience, self.lr, self.on_step, self.limit, self.fixed = patience, lr, on_step, limit, fixed
        self.maximize = self.watch != "loss" and METRICS[self.watch].maximize
        self.needs_scores = self.watch != "loss" or self.extra is not None
        self.history, self.best_step, self.best_score, self.last = [], 0, float("nan"), {}
        self.start = time.perf_counter()

    def scores(self, pred: np.ndarray) -> dict:
        """The task's metrics on the validation rows, kept for this round's row."""
        pred = self.decode(np.asarray(pred, np.float64))
        self.last = {} if self.watch == "loss" else {"score": METRICS[self.watch].fn(self.y_val, pred)}
        if self.extra:
            self.last[self.extra] = METRICS[self.metric].fn(self.y_val, pred)
        return self.last

    def end(self, step: int, train_loss: float, val_loss: float) -> bool:
        score = val_loss if self.watch == "loss" else self.last["score"]
        row = {"epoch": step, "train_loss": float(train_loss), "val_loss": float(val_loss), "val_score": float(score)}
        if self.extra:
            row[self.extra] = float(self.last[self.extra])
        row |= {"lr": self.lr, "seconds": time.perf_counter() - self.start}
        self.history.append(row)
        if self.on_step is not None:
            self.on_step(row)
        if self.fixed or self.best_step == 0 or (score > self.best_score if self.maximize else score < self.best_score):
            self.best_step, self.best_score = step, float(score)
        return not self.fixed and step - self.best_step >= self.patience


class LightGBMLearner(BoostedTrees):
    """LightGBM: leaf-wise trees, `lightgbm.train` (the engine under LGBMClassifier), saved as
    model<b>.txt, LightGBM's own text format."""
    name, module, package, suffix = "lightgbm", "lightgbm", "lightgbm", ".txt"
    num_leaves = 31              # leaves per tree (grown leaf-wise)
    min_child_samples = 20       # training rows a leaf holds at least
    l2 = 0.0                     # L2 penalty on leaf values (lambda_l2)
    tunable = BoostedTrees.tunable + ("num_leaves", "min_child_samples")

    @classmethod
    def space(cls, trial) -> dict:
        return common_space(trial) | {"num_leaves": trial.suggest_int("num_leaves", 8, 256, log=True),
                                      "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True)}

    def params(self, rows: int) -> dict:
        """LightGBM's parameters for a fold of `rows` training rows."""
        objective, loss = OBJECTIVES[self.task.problem]
        s = self.setting
        out = {"objective": objective, "metric": loss, "learning_rate": s("learning_rate"),
               "num_leaves": s("num_leaves"), "min_child_samples": s("min_child_samples"), "lambda_l2": s("l2"),
               "bagging_fraction": s("subsample"), "bagging_freq": 1, "feature_fraction": s("colsample"),
               "seed": self.seed, "num_threads": threads(rows),
               "deterministic": True, "force_row_wise": True, "verbosity": -1}
        return out | ({"num_class": len(self.task.classes)} if objective == "multiclass" else {})

    def boost(self, lgb, x_tr, y_tr, x_va, y_va, rounds: Rounds, categorical: list[int]) -> bytes:
        train = lgb.Dataset(x_tr, label=y_tr, categorical_feature=categorical or "auto")
        val = lgb.Dataset(x_va, label=y_va, reference=train)
        loss = OBJECTIVES[self.task.problem][1]

        def scores(preds, data) -> list:        # LightGBM computes the loss itself
            return [] if data is not val else [(k, v, False) for k, v in rounds.scores(preds).items()]

        def hook(env) -> None:
            got = {(r[0], r[1]): float(r[2]) for r in env.evaluation_result_list}
            if rounds.end(env.iteration + 1, got["train", loss], got["val", loss]):
                raise lgb.callback.EarlyStopException(rounds.best_step - 1, env.evaluation_result_list)
        booster = lgb.train(self.params(len(y_tr)), train, num_boost_round=rounds.limit,
                            valid_sets=[train, val], valid_names=["train", "val"],
                            feval=scores if rounds.needs_scores else None, callbacks=[hook])
        return booster.model_to_string(num_iteration=rounds.best_step).encode()

    def raw_predict(self, x: np.ndarray) -> np.ndarray:
        return self.model_.predict(x)

    def model_bytes(self) -> bytes:
        return self.model_.model_to_string().encode()

    @staticmethod
    def from_bytes(lgb, data: bytes):
        return lgb.Booster(model_str=data.decode())

    @staticmethod
    def load_errors(lgb) -> tuple:
        return (lgb.basic.LightGBMError, UnicodeDecodeError)
