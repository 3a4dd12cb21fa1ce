"""The learner seam: what the fold loop (pipelines/cv.py) and prediction (pipelines/predict.py)
call to train one model on a fold and to use it again, whatever library it comes from.

A learner follows the scikit-learn contract: `__init__` stores (task, cfg, device, random_state);
`fit` returns self and sets attributes ending in `_`. The whole interface:

    check(cfg)                                  classmethod: before a run folder is made (its library, settings)
    encode_fold(task, cfg, inp, tr, va, test) -> Encoded    classmethod: the fold's inputs, fit on its training rows
    fold_input(task, encoder, columns, data, device, fold_dir) -> (x, batch_fn)   classmethod: test rows, the same way
    fit(enc, y_train, y_val, on_step=None, checkpoint=None, steps=None, grow=1.0) -> self
        sets history_ (one row per unit of progress), best_step_, best_score_, seconds_before_;
        with `steps` (stopping='refit': the best_step_ an earlier fit on fewer rows chose, `grow`
        times fewer) it trains a fixed count instead, no early stopping, and keeps the last model
    predict_proba(x, batch_fn=None) -> ndarray      (N,) binary, (N, classes) multi-class; regression:
                                                    (N,) values in the target's units
    save(path); load(path, task, device, precision, trained_by) -> learner     classmethod
        (precision: the run's, as it trained; trained_by: its commit, named if the file no longer loads)
    suffix            the saved model's file suffix: model<b><suffix> in the fold directory
    progress_unit     what a history row counts ('epoch' for nets), the pruner's step
    seeded            whether the fit depends on random_state (False for logreg, ridge, knn: a fold
                      then trains one bag whatever `bags` says, as more would repeat one fit)

Every row of `history_` carries `epoch` (the step, 1-based), `train_loss`, `val_loss`, `val_score`
`lr` (NaN where there is none) and `seconds`, as the report's plots and the CLI's log read them. LEARNERS maps a config's `model` to its learner's
factory: every registered net to TorchLearner, `logreg` to scikit-learn's logistic regression,
`ridge` to its ridge regression, `knn` to its k nearest neighbours, `randomforest` and
`extratrees` to its forests, `lightgbm`, `xgboost` and `catboost` to gradient-boosted trees
(pipelines/learners_gbdt.py, learners_xgb_cat.py; their progress unit is a boosting round). The shared defaults and helpers live in
pipelines/learner_base.py. A learner registered with `problems` trains only those
(pipelines/inputs.py checks); without, every problem its `kind` of data poses.
"""
from __future__ import annotations

import numbers
import time
from pathlib import Path

import numpy as np
import torch

from core.errors import UsageError
from core.runtime import as_tensor, seed_everything
from models import MODELS, build_model
from models.registry import model_args
from models.trainer import fit
from pipelines import runs
from pipelines.learner_base import LEARNERS, Learner, as_numpy, load_joblib, target_path
from pipelines.learners_ensemble import combination
from pipelines.learners_gbdt import LightGBMLearner
from pipelines.learners_xgb_cat import CatBoostLearner, XGBoostLearner
from pipelines.metrics import CLASSIFICATION, METRICS, REGRESSION, kaggle_logloss
from pipelines.proba import cv_scores, epoch_metric_fn, loss_fn, monitor, predict_proba, score_fn, to_proba
from pipelines.target import TargetScaler, target_pipeline
from tasks.task import Encoded, TaskBase

DATA_INIT_IMAGES = 5000    # training images a data-dependent init sees (airbench whitens on 5,000)



class TorchLearner(Learner):
    """A registered net (models.MODELS) trained by the one trainer (models/trainer.py). In a run
    directory the trainer checkpoints every epoch to `checkpoint`; the model goes to model<b>.pt
    with its own model_args, so it rebuilds from the file alone. Regression: the net fits the
    target as `target_` (pipelines/target.py, fit on the fold's training rows) transforms it, and
    scores, early stopping and predictions are in the target's own units; `target_` is saved
    beside the weights as target<b>.joblib."""
    suffix = ".pt"

    def fit(self, enc: Encoded, y_train: np.ndarray, y_val: np.ndarray, on_step=None,
            checkpoint: Path | None = None, steps: int | None = None, grow: float = 1.0) -> "TorchLearner":
        """`steps`: train that many epochs of the config's schedule and keep the last weights. An
        epoch passes over every training row, so `grow` (more rows than when `steps` was chosen)
        is already in it: each epoch takes that many more optimizer steps. stopping='fixed': the
        whole schedule, `cfg.epochs`, likewise."""
        task, cfg, device = self.task, self.cfg, self.device
        gen = seed_everything(self.random_state)
        self.args_ = model_args(cfg.model, cfg.to_dict(), **enc.shape)
        net = build_model(cfg.model, self.args_).to(device)
        init_from_data(net, enc.x_train, enc.batch_fn)
        if device.type == "cuda" and task.channels_last:
            net = net.to(memory_format=torch.channels_last)     # NHWC: faster convs on tensor cores
        model = torch.compile(net) if cfg.compile else net   # shares `net`'s parameters
        extra = {"batch_transform": enc.batch_fn} if enc.batch_fn else {}
        if task.problem == "regression":       # the net fits the transformed target; scores in its own units
            self.target_ = TargetScaler(task.metric).fit(y_train)
            decode = lambda out: self.target_.inverse(to_proba(task, out))      # noqa: E731
            score, maximize = score_fn(task, decode, y_val)
            epoch_metrics = epoch_metric_fn(task, decode, y_val)
            y_tr, y_va = (as_tensor(self.target_.transform(y), device) for y in (y_train, y_val))
        else:
            score, maximize = score_fn(task)
            epoch_metrics = epoch_metric_fn(task)
            y_tr, y_va = as_tensor(y_train, device, torch.long), as_tensor(y_val, device, torch.long)
        count = int(steps) if steps else (cfg.epochs if cfg.stopping == "fixed" else None)
        res = fit(model, enc.x_train, y_tr, enc.x_val, y_va, cfg=cfg, loss_fn=loss_fn(task, cfg.label_smoothing),
                  score_fn=score, maximize=maximize, generator=gen, on_epoch=on_step, checkpoint=checkpoint,
                  epoch_metrics=epoch_metrics, stop_after=count, **extra)
        self.net_, self.model_, self.precision_ = net, res.model, cfg.precision       # net_: uncompiled, for its state dict's keys
        self.history_, self.best_step_, self.best_score_ = res.history, res.best_epoch, res.best_score
        self.seconds_before_ = res.seconds_before
        return self

    def predict_proba(self, x, batch_fn=None) -> np.ndarray:
        """Probabilities, or for regression values in the target's units."""
        out = predict_proba(self.task, self.model_, x, batch_fn, self.precision_)
        return self.target_.inverse(out) if self.task.problem == "regression" else out

    def save(self, path: Path) -> None:
        runs.save_model(path, self.cfg.model, self.args_, self.net_)
        if self.task.problem == "regression":
            runs.dump_joblib(self.target_, target_path(path))

    @classmethod
    def load(cls, path: Path, task: TaskBase, device: torch.device, precision: str = "fp32",
             trained_by: str | None = None) -> "TorchLearner":
        learner = cls(task, None, device)
        learner.model_, learner.precision_ = runs.load_model(path, device, trained_by), precision
        if task.problem == "regression":
            learner.target_ = load_joblib(target_path(path))
        return learner


def init_from_data(net: torch.nn.Module, x_train: torch.Tensor, batch_fn) -> None:
    """A model's data-dependent init on the fold's training rows as the model sees them: images, the
    first DATA_INIT_IMAGES through `batch_fn` (fastnet's whitened stem); tables (no `batch_fn`), every
    row (TabM's piecewise-linear bins are their quantiles). Models without one are left as built."""
    if hasattr(net, "init_from_data"):
        net.init_from_data(x_train if batch_fn is None else batch_fn(x_train[:DATA_INIT_IMAGES], False))


for _name in MODELS.names():
    LEARNERS.register(TorchLearner, name=_name, **MODELS.tags[_name])


class SklearnLearner(Learner):
    """A scikit-learn estimator on the task's encoded fold matrix: one fit, no early stopping (one
    history row), saved with joblib. Subclasses give `estimator()`, the `loss` the history
    records beside the score, and `predict_proba`."""
    suffix = ".joblib"
    progress_unit = "fit"
    seeded = False          # logreg's lbfgs, ridge's solve and knn's search give one answer per rows
    train_loss = True       # the history's train_loss: False where predicting the training rows costs a fit's worth

    def fit(self, enc: Encoded, y_train: np.ndarray, y_val: np.ndarray, on_step=None,
            checkpoint: Path | None = None, steps: int | None = None, grow: float = 1.0) -> "SklearnLearner":
        """One fit to convergence: `steps` (a refit's fixed count) has nothing to count here."""
        if enc.x_train.ndim != 2:
            raise UsageError(f"{self.name} takes a table; {self.task.name}'s fold inputs have shape "
                             f"{tuple(enc.x_train.shape)}")
        start = time.perf_counter()
        self.model_ = self.estimator().fit(as_numpy(enc.x_train), y_train)
        fit_loss = self.loss(y_train, self.predict_proba(enc.x_train)) if self.train_loss else float("nan")
        val = self.predict_proba(enc.x_val)
        val_loss = self.loss(y_val, val)
        watch = monitor(self.task)
        score = val_loss if watch == "loss" else METRICS[watch].fn(y_val, val)
        row = {"epoch": 1, "train_loss": fit_loss, "val_loss": val_loss, "val_score": score}
        if watch != self.task.metric:       # as the trainer's epoch_metrics: the judged score beside it
            row[f"val_{self.task.metric}"] = cv_scores(self.task, y_val, val)[self.task.metric]
        row["lr"] = float("nan")             # no learning rate; the CLI's per-epoch log line (commands/training.py) reads the column
        row["seconds"] = time.perf_counter() - start
        if on_step is not None:
            on_step(row)
        self.history_, self.best_step_, self.best_score_, self.seconds_before_ = [row], 1, score, 0.0
        return self

    def save(self, path: Path) -> None:
        runs.dump_joblib(self.model_, path)

    @classmethod
    def load(cls, path: Path, task: TaskBase, device: torch.device, precision: str = "fp32",
             trained_by: str | None = None) -> "SklearnLearner":
        learner = cls(task, None, device)
        learner.model_ = load_joblib(path)
        return learner


@LEARNERS.register(name="logreg", kind="tabular", problems=CLASSIFICATION)
class LogRegLearner(SklearnLearner):
    """scikit-learn's LogisticRegression: C=1, lbfgs. The baseline a net must beat, and the proof
    that a learner other than the trainer goes through the stages. The loss is the trainer's
    cross-entropy, as Kaggle clips it."""
    name = "logreg"
    max_iter = 1000      # lbfgs iterations; the default 100 stops short on wide one-hot matrices

    def estimator(self):
        from sklearn.linear_model import LogisticRegression
        return LogisticRegression(max_iter=self.max_iter, random_state=self.random_state)

    def loss(self, y: np.ndarray, proba: np.ndarray) -> float:
        return kaggle_logloss(y, proba)

    def predict_proba(self, x, batch_fn=None) -> np.ndarray:
        p = self.model_.predict_proba(as_numpy(x)).astype(np.float64)
        return p[:, 1] if self.task.binary else p


def transformed_mse(model, y: np.ndarray, pred: np.ndarray) -> float:
    """Squared error in the units a TransformedTargetRegressor `model` fits (the nets' MSE): the
    regression loss of the scikit-learn learners' history."""
    t = model.transformer_
    z = lambda v: t.transform(np.asarray(v, np.float64).reshape(-1, 1))[:, 0]     # noqa: E731
    return float(np.mean((z(y) - z(pred)) ** 2))


@LEARNERS.register(name="ridge", kind="tabular", problems=REGRESSION)
class RidgeLearner(SklearnLearner):
    """scikit-learn's Ridge (alpha 1) on the target as the nets see it (pipelines/target.py:
    standardised, log1p first for rmsle), predictions back in the target's units: the regression
    baseline, as logreg is classification's. The loss: squared error in the transformed units,
    the nets' MSE."""
    name = "ridge"

    def estimator(self):
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.linear_model import Ridge
        return TransformedTargetRegressor(Ridge(alpha=1.0), transformer=target_pipeline(self.task.metric),
                                          check_inverse=False)

    def loss(self, y: np.ndarray, pred: np.ndarray) -> float:
        return transformed_mse(self.model_, y, pred)

    def predict_proba(self, x, batch_fn=None) -> np.ndarray:
        """Values in the target's units (the seam's name; no probabilities in regression)."""
        return self.model_.predict(as_numpy(x)).astype(np.float64).reshape(-1)


class VotesLearner(SklearnLearner):
    """What knn and the forests share: a classifier's class shares out of `votes()` votes (the
    neighbours, the trees), shrunk toward uniform by one pseudo-vote, so no class gets probability
    0 (a single 0 on a true class costs the log loss 34.5); a regressor's values in the target's
    units (each fits the target as the nets see it, pipelines/target.py); the loss the trainer's."""

    def votes(self) -> int:
        raise NotImplementedError

    def loss(self, y: np.ndarray, pred: np.ndarray) -> float:
        if self.task.problem == "regression":
            return transformed_mse(self.model_, y, pred)
        return kaggle_logloss(y, pred)

    def predict_proba(self, x, batch_fn=None) -> np.ndarray:
        if self.task.problem == "regression":
            return self.model_.predict(as_numpy(x)).astype(np.float64).reshape(-1)
        shares = self.model_.predict_proba(as_numpy(x)).astype(np.float64)
        n = self.votes()
        p = (shares * n + 1 / shares.shape[1]) / (n + 1)
        return p[:, 1] if self.task.binary else p


@LEARNERS.register(name="knn", kind="tabular")      # every table problem
class KNNLearner(VotesLearner):
    """scikit-learn's k nearest neighbours (Euclidean, brute force) on the task's encoded fold matrix:
    standardised numbers, one-hot categories. A learner unlike trees and nets, kept for stacking
    (Otto's winning stacks fed kNN predictions to their level 2). Classification: the neighbours'
    class shares, shrunk toward uniform by one pseudo-neighbour, so no class gets probability 0
    (a single 0 on a true class costs the log loss 34.5); regression: the neighbours' mean of the
    target as the nets see it (pipelines/target.py), back in the target's units.
    Its cost grows with training rows x predicted rows, so above `max_rows` training rows it
    refuses in one line. No train_loss in the history: predicting the training rows is a second fit's worth."""
    name = "knn"
    n_neighbors = 50
    max_rows = 250_000
    train_loss = False

    def fit(self, enc: Encoded, y_train: np.ndarray, y_val: np.ndarray, *args, **kw) -> "KNNLearner":
        if len(y_train) > self.max_rows:
            raise UsageError(f"knn: {len(y_train):,} training rows a fold; its brute-force neighbour search "
                             f"takes at most {self.max_rows:,} (choose another --model)")
        return super().fit(enc, y_train, y_val, *args, **kw)

    def estimator(self):
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
        if self.task.problem != "regression":
            return KNeighborsClassifier(n_neighbors=self.n_neighbors)
        from sklearn.compose import TransformedTargetRegressor
        return TransformedTargetRegressor(KNeighborsRegressor(n_neighbors=self.n_neighbors),
                                          transformer=target_pipeline(self.task.metric), check_inverse=False)

    def votes(self) -> int:
        return self.model_.n_neighbors


class Forest(VotesLearner):
    """scikit-learn's random forest or extremely randomised trees (`--model randomforest|extratrees`)
    on the task's encoded fold matrix, every table problem. Kept for stacking: fully grown trees
    vote with the pure leaves their nearest training rows ended in, and err unlike boosted trees and
    nets. On Otto (seed 0, the tool's folds) 300 extra trees scored 0.591 alone (0.510 calibrated),
    yet added to TabM, LightGBM, XGBoost and the MLP they moved the linear stack (`stack`) from
    0.4360 to 0.4277; in a check outside the tool on the same folds, leaves of at least 10 rows
    added nothing. AutoGluon's best_quality portfolio keeps both kinds for that reason.
    No early stopping (a forest does not overfit as it grows, it only costs more), but grown `chunk`
    trees at a time (scikit-learn's warm start: the same trees as one fit), one history row each
    with the validation score so far, so a preset's budget can stop a forest between two chunks
    rather than after a fit that may take longer than the budget. Settings: config key `trees`
    (`--set trees='{"n_estimators": 500}'`), as the boosted trees take theirs; `tune` searches
    max_features and min_samples_leaf. Folds train one at a time, each on every core, small ones too:
    the trees are independent tasks, so the boosted trees' one thread under 10,000 rows (short rounds
    in lockstep, learners_gbdt.threads) does not apply (on house_prices' 1,168 rows a fold it left a
    core idle: 115 s a forest).
    Classification: the trees' mean class shares shrunk toward uniform by one pseudo-tree, so no class
    gets probability 0 (fully grown trees often give one; a 0 on the true class costs 34.5 log loss),
    as knn shrinks by one pseudo-neighbour. Regression: the mean of the target as the nets see it
    (pipelines/target.py), back in its units. No train_loss: fully grown trees predict their own
    rows almost exactly. Saved compressed (joblib's zlib, level 3): 300 extra trees on a fold of
    Otto's (50,000 rows) hold 1.6 GB in memory and take 230 MB on disk, 9 s to write."""
    seeded = True                 # bootstrap rows (random forest), thresholds (extra trees), columns
    # one fold at a time on every core (cv.fold_plan): the trees spread over the cores themselves, each
    # on its own, and a fold's forest is large (1.6 GB on Otto): two folds at once held both
    parallel_folds = False
    classifier = regressor = ""   # the sklearn.ensemble classes
    n_estimators = 300            # trees
    max_features = None           # share of the columns each split draws from; None: scikit-learn's
                                  # default (the square root of their count to classify, all of them for regression)
    min_samples_leaf = 1          # fully grown: what makes a forest differ from the boosted trees
    tunable = ("n_estimators", "max_features", "min_samples_leaf")
    chunk = 50                    # trees grown between two history rows (the budget's checks)
    compress = 3

    @classmethod
    def check(cls, cfg) -> None:
        """`trees` names only this learner's settings, each a number in its range."""
        for key, value in (cfg.trees or {}).items():
            if key not in cls.tunable:
                raise UsageError(f"config key trees: {cls.name} does not read {key!r}; it reads {', '.join(cls.tunable)}")
            whole = key != "max_features"
            number = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if not number or (whole and (value != int(value) or value < 1)) or (not whole and not 0 < value <= 1):
                want = "a whole number >= 1" if whole else "a share of the columns in (0, 1]"
                raise UsageError(f"config key trees: {key} wants {want}, got {value!r}")

    @classmethod
    def space(cls, trial) -> dict:
        """Optuna's draw of the `trees` dict; the trees' count stays (more trees only cost time)."""
        return {"max_features": trial.suggest_float("max_features", 0.05, 1.0, log=True),
                "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True)}

    @classmethod
    def defaults(cls) -> dict:
        """A study's first trial: the fully grown trees; its max_features is drawn (the default,
        a square root of the column count, is no fixed share)."""
        return {"min_samples_leaf": cls.min_samples_leaf}

    def setting(self, name: str):
        given = ((self.cfg.trees if self.cfg is not None else None) or {}).get(name)
        if given is None:
            return getattr(type(self), name)
        return float(given) if name == "max_features" else int(given)

    def fit(self, enc: Encoded, y_train: np.ndarray, y_val: np.ndarray, on_step=None,
            checkpoint: Path | None = None, steps: int | None = None, grow: float = 1.0) -> "Forest":
        """Every tree, `chunk` at a time; a row per chunk (`epoch` the chunk, `trees` so far). The last
        is the model kept: `steps` (a refit's count) has nothing to count."""
        if enc.x_train.ndim != 2:
            raise UsageError(f"{self.name} takes a table; {self.task.name}'s fold inputs have shape "
                             f"{tuple(enc.x_train.shape)}")
        start, x, x_val = time.perf_counter(), as_numpy(enc.x_train), as_numpy(enc.x_val)
        self.model_, total, self.history_ = self.estimator(), self.setting("n_estimators"), []
        watch = monitor(self.task)
        for step, trees in enumerate(range(min(self.chunk, total), total + self.chunk, self.chunk), 1):
            self._grow(x, y_train, min(trees, total))
            val = self.predict_proba(x_val)
            val_loss = self.loss(y_val, val)
            score = val_loss if watch == "loss" else METRICS[watch].fn(y_val, val)
            row = {"epoch": step, "trees": min(trees, total), "train_loss": float("nan"), "val_loss": val_loss,
                   "val_score": score}
            if watch != self.task.metric:
                row[f"val_{self.task.metric}"] = cv_scores(self.task, y_val, val)[self.task.metric]
            row |= {"lr": float("nan"), "seconds": time.perf_counter() - start}
            self.history_.append(row)
            if on_step is not None:
                on_step(row)
        self.best_step_, self.best_score_, self.seconds_before_ = len(self.history_), score, 0.0
        return self

    def _grow(self, x: np.ndarray, y: np.ndarray, trees: int) -> None:
        """The forest grown to `trees` (warm start keeps those it has). Regression: the first fit
        sets the target transform (TransformedTargetRegressor); later ones grow its forest on the
        target as that transform gives it."""
        model = self.model_
        if self.task.problem != "regression":
            model.set_params(n_estimators=trees).fit(x, y)
        elif not hasattr(model, "regressor_"):
            model.regressor.set_params(n_estimators=trees)
            model.fit(x, y)
        else:
            model.regressor_.set_params(n_estimators=trees)
            model.regressor_.fit(x, model.transformer_.transform(np.asarray(y, np.float64).reshape(-1, 1))[:, 0])

    def estimator(self):
        from sklearn import ensemble
        share = self.setting("max_features")
        kw = dict(n_estimators=self.setting("n_estimators"), min_samples_leaf=self.setting("min_samples_leaf"),
                  n_jobs=torch.get_num_threads(), random_state=self.random_state, warm_start=True)
        kw |= {} if share is None else {"max_features": share}
        if self.task.problem != "regression":
            return getattr(ensemble, self.classifier)(**kw)
        from sklearn.compose import TransformedTargetRegressor
        return TransformedTargetRegressor(getattr(ensemble, self.regressor)(**kw),
                                          transformer=target_pipeline(self.task.metric), check_inverse=False)

    def votes(self) -> int:
        return len(self.model_.estimators_)

    def save(self, path: Path) -> None:
        runs.dump_joblib(self.model_, path, compress=self.compress)


@LEARNERS.register(name="randomforest", kind="tabular")     # every table problem
class RandomForestLearner(Forest):
    name, classifier, regressor = "randomforest", "RandomForestClassifier", "RandomForestRegressor"


@LEARNERS.register(name="extratrees", kind="tabular")
class ExtraTreesLearner(Forest):
    name, classifier, regressor = "extratrees", "ExtraTreesClassifier", "ExtraTreesRegressor"


LEARNERS.register(LightGBMLearner, name="lightgbm", kind="tabular")     # every table problem
LEARNERS.register(XGBoostLearner, name="xgboost", kind="tabular")
LEARNERS.register(CatBoostLearner, name="catboost", kind="tabular")

LEARNERS.resolve = combination      # any A+B of the learners above (pipelines/learners_ensemble.py)
