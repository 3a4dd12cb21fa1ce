"""The level-2 learners `stack` fits on runs' out-of-fold predictions (pipelines/stack.py), each a
small estimator: fit(x, y) -> self on a training part, predict(x) -> probabilities ((N,) P(class 1)
for binary, (N, K) for K classes) or values (regression), as the runs' OOF files hold them.

Input `x` (`meta_inputs`): per run its predictions as log-odds (binary), log-probabilities (one
column per class) or values (regression; log1p for rmsle), then the raw numeric columns when
`stack --with-features` asks for them (NaN where missing).

    linear     classification: logistic regression (multinomial), its C chosen by log loss over
               3 stratified folds of the training part it is given; regression: ridge, its alpha
               by efficient leave-one-out over the same rows. Columns imputed (median, with
               missing-value indicators) and standardised, fit on those rows too.
    lightgbm   small trees (15 leaves, learning rate 0.05), the rounds chosen by early stopping over
               3 folds of the training part it is given, then refit on the whole part.
    weights    the runs' predictions averaged with weights >= 0 summing to 1, fit to the training
               part's log loss (regression: the task's own metric), as `blend` fits them: a convex combination cannot extrapolate, so on a few hundred rows it is the
               safe level 2 when a regression on the runs' log-odds overfits. Runs only (no
               --with-features).

Every choice (C, alpha, rounds, the imputer's medians) is made inside the rows `fit` is given, so a
model fit on the other folds' rows never saw the scored fold's labels, not even through a setting.
"""
from __future__ import annotations

import os

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.errors import UsageError, first_line
from pipelines.metrics import kaggle_logloss
from pipelines.target import expm1_at_least_0

META = ("linear", "lightgbm", "weights")
EPS = 1e-7                  # probabilities are clipped to [EPS, 1 - EPS] before a log
INNER_FOLDS = 3             # folds of a training part that choose C or the boosting rounds
CS = np.logspace(-3, 2, 6)  # logistic regression's inverse regularisation, on standardised inputs
# From this many training rows per input column C = 1 is taken without the 18 inner fits that
# choose it: a trade of a little log loss for time. Measured on Otto's five preset runs (45 columns,
# about 1,100 rows each; 2026-12-05): choosing gave 0.44239 against 0.44320, in 150 s against 30 s,
# more than the preset's stack share of a 30-minute budget (180 s) leaves for it
ROWS_PER_INPUT = 500
ALPHAS = np.logspace(-3, 3, 13)     # ridge's penalty
MAX_ROUNDS = 2000           # LightGBM rounds at most; early stopping ends far sooner
PATIENCE = 50               # rounds without a better inner-fold loss before it stops
MULTI_THREAD_ROWS = 10_000  # training rows from which the trees grow on every core (fewer: one thread is faster)
OBJECTIVES = {"binary": ("binary", "binary_logloss"), "multiclass": ("multiclass", "multi_logloss"),
              "regression": ("regression", "l2")}     # as LightGBM names the objective and its loss


def lightgbm():
    """The lightgbm module, or one line saying how to install it."""
    try:
        import lightgbm as lgb
    except ImportError:
        raise UsageError("--meta lightgbm needs the lightgbm package: pip install lightgbm") from None
    except OSError as e:        # macOS without OpenMP
        raise UsageError(f"lightgbm's library did not load ({first_line(e)}); on macOS: brew install libomp") from None
    return lgb


def meta_inputs(task, probas: np.ndarray, raw: np.ndarray | None = None) -> np.ndarray:
    """(rows, features) from the runs' predictions, (runs, rows) or (runs, rows, classes), and raw
    columns (rows, columns) when given."""
    if task.problem == "regression":
        parts = np.log1p(np.maximum(probas, 0)) if task.metric == "rmsle" else probas    # (runs, rows)
        cols = [p[:, None] for p in parts]
    elif probas.ndim == 2:           # binary: log-odds of P(class 1)
        p = np.clip(probas, EPS, 1 - EPS)
        cols = [(np.log(q) - np.log1p(-q))[:, None] for q in p]
    else:
        cols = list(np.log(np.clip(probas, EPS, 1)))      # each (rows, classes)
    if raw is not None:
        cols.append(raw)
    return np.hstack(cols).astype(np.float64)


def make_meta(kind: str, task, seed: int = 0, check=None):
    """An unfitted meta-learner `kind` (META) for the task's problem. `check()`, when given, is
    called between the fits a meta-learner makes to choose its setting, and may raise to stop it
    (the preset's budget)."""
    if kind == "linear":
        return LinearMeta(task, seed, check)
    if kind == "lightgbm":
        return LightGBMMeta(task, seed, check)
    if kind == "weights":
        return WeightsMeta(task, seed, check)
    raise ValueError(f"unknown meta-learner {kind!r}; known: {', '.join(META)}")


def _target(task, y: np.ndarray) -> np.ndarray:
    """What a regression meta-learner fits: log1p(y) for rmsle, so its squared error is the metric's."""
    return np.log1p(y) if task.metric == "rmsle" else y


def _untarget(task, z: np.ndarray) -> np.ndarray:
    return expm1_at_least_0(z) if task.metric == "rmsle" else z


def _inner_folds(task, y: np.ndarray, seed: int):
    """The training part's own folds (None when a class has too few rows for them)."""
    if task.problem == "regression":
        return KFold(INNER_FOLDS, shuffle=True, random_state=seed) if len(y) >= 2 * INNER_FOLDS else None
    counts = np.bincount(y)
    if counts[counts > 0].min() < INNER_FOLDS:
        return None
    return StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=seed)


def _full_proba(task, classes: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Columns for the task's classes from an estimator's (those it saw in training)."""
    if task.problem == "binary":
        return p[:, list(classes).index(1)] if 1 in classes else np.zeros(len(p))
    full = np.zeros((len(p), len(task.classes)))
    full[:, classes] = p
    return full


def _prep():
    """Median imputation with missing-value indicators (raw columns), then standardisation."""
    return make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                         StandardScaler())


def _no_check() -> None:
    pass


class LinearMeta:
    """Logistic regression (classification) or ridge (regression) on imputed, standardised inputs."""

    def __init__(self, task, seed: int = 0, check=None):
        self.task, self.seed, self.check = task, seed, check or _no_check

    def fit(self, x: np.ndarray, y: np.ndarray) -> "LinearMeta":
        if self.task.problem == "regression":
            self.model_ = make_pipeline(_prep(), RidgeCV(alphas=ALPHAS)).fit(x, _target(self.task, y))
            return self
        self.c_ = self.choose_c(x, y)
        self.check()
        self.model_ = make_pipeline(_prep(), LogisticRegression(C=self.c_, max_iter=1000)).fit(x, y)
        return self

    def choose_c(self, x: np.ndarray, y: np.ndarray) -> float:
        """The C of CS with the least log loss over the inner folds of (x, y); 1 without them, or
        with ROWS_PER_INPUT rows per column or more."""
        folds = _inner_folds(self.task, y, self.seed)
        if folds is None or len(y) >= ROWS_PER_INPUT * x.shape[1]:
            return 1.0
        loss = np.zeros(len(CS))
        for tr, va in folds.split(x, y):
            prep = _prep().fit(x[tr])
            x_tr, x_va = prep.transform(x[tr]), prep.transform(x[va])
            model = LogisticRegression(max_iter=1000, warm_start=True)     # each C starts from the last's fit
            for i, c in enumerate(CS):
                self.check()
                model.set_params(C=c).fit(x_tr, y[tr])
                loss[i] += kaggle_logloss(y[va], _full_proba(self.task, model.classes_, model.predict_proba(x_va)))
        return float(CS[int(np.argmin(loss))])

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.task.problem == "regression":
            return _untarget(self.task, self.model_.predict(x))
        return _full_proba(self.task, self.model_.classes_, self.model_.predict_proba(x))


class LightGBMMeta:
    """LightGBM with small trees; the rounds are the best of early stopping on the training part's own folds."""

    def __init__(self, task, seed: int = 0, check=None):
        self.task, self.seed, self.check = task, seed, check or _no_check

    def _params(self, n: int) -> dict:
        objective, loss = OBJECTIVES[self.task.problem]
        threads = (os.cpu_count() or 1) if n >= MULTI_THREAD_ROWS else 1
        params = {"objective": objective, "metric": loss, "learning_rate": 0.05, "num_leaves": 15,
                  "min_data_in_leaf": int(min(20, max(2, n // 20))), "lambda_l2": 1.0, "verbose": -1,
                  "seed": self.seed, "deterministic": True, "force_row_wise": True, "num_threads": threads}
        if objective == "multiclass":
            params["num_class"] = len(self.task.classes)
        return params

    def fit(self, x: np.ndarray, y: np.ndarray) -> "LightGBMMeta":
        lgb = lightgbm()
        target = _target(self.task, y) if self.task.problem == "regression" else y
        params = self._params(len(y))
        folds = _inner_folds(self.task, y, self.seed)
        rounds = 100        # a training part too small for inner folds: a fixed, short boosting
        if folds is not None:
            history = lgb.cv(params, lgb.Dataset(x, target), num_boost_round=MAX_ROUNDS,
                             folds=list(folds.split(x, y)),
                             callbacks=[lgb.early_stopping(PATIENCE, verbose=False), lambda env: self.check()])
            rounds = len(next(iter(history.values())))
        self.rounds_ = rounds
        self.model_ = lgb.train(params, lgb.Dataset(x, target), num_boost_round=rounds)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        p = self.model_.predict(x)
        return _untarget(self.task, p) if self.task.problem == "regression" else p


class WeightsMeta:
    """A convex combination of the runs' predictions, its weights fit to the training part's loss
    (pipelines/blend.fit_weights); `x` holds only the runs' columns (meta_inputs without raw ones)."""

    def __init__(self, task, seed: int = 0, check=None):
        self.task, self.seed = task, seed        # one fit on the simplex: nothing to check between

    def _members(self, x: np.ndarray) -> np.ndarray:
        """(runs, rows) or (runs, rows, classes): each run's prediction back from meta_inputs's columns,
        in the space they are averaged in (probabilities; values, log1p values for rmsle)."""
        if self.task.problem == "regression":
            return x.T
        if self.task.problem == "binary":
            return 1 / (1 + np.exp(-x.T))
        k = len(self.task.classes)
        return np.exp(x.reshape(len(x), -1, k).transpose(1, 0, 2))

    def fit(self, x: np.ndarray, y: np.ndarray) -> "WeightsMeta":
        """The weights that minimise `blend`'s loss (blend_loss: the log loss; for regression the
        task's own metric, on the combination back in the target's units), as `blend` fits its own."""
        from pipelines.blend import blend_loss, fit_weights
        loss = blend_loss(self.task)
        if self.task.problem == "regression":
            self.weights_ = fit_weights(self._members(x), y, lambda t, z: loss(t, _untarget(self.task, z)))
        else:
            self.weights_ = fit_weights(self._members(x), y, loss)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        p = np.tensordot(self.weights_, self._members(x), axes=1)
        return _untarget(self.task, p) if self.task.problem == "regression" else p
