"""XGBoost (`--model xgboost`) and CatBoost (`--model catboost`) as learners, for every table problem:
the same training, early stopping, history rows, regression target and saved shape as LightGBM's
(pipelines/learners_gbdt.py, `BoostedTrees`, which documents them); here only what each library
calls its objective, loss and hooks.

XGBoost (the `xgboost-cpu` wheel, a core dependency): depth-wise trees grown on histograms
(tree_method hist), max_depth 6; saved as model<b>.ubj, XGBoost's binary JSON. CatBoost (optional:
`pip install catboost`, 97 MB with plotly): symmetric (oblivious) trees of depth 6, Bernoulli row
sampling; saved as model<b>.cbm, its own binary format. Both report squared error for regression's
losses (they compute RMSE), as LightGBM's l2 and the nets' MSE.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

from pipelines.learners_gbdt import BoostedTrees, Rounds, common_space, threads

# problem -> (objective, its loss as the library's evaluation names it)
XGB_OBJECTIVES = {"binary": ("binary:logistic", "logloss"), "multiclass": ("multi:softprob", "mlogloss"),
                  "regression": ("reg:squarederror", "rmse")}
CATBOOST_LOSSES = {"binary": "Logloss", "multiclass": "MultiClass", "regression": "RMSE"}


def objective_loss(problem: str, value: float) -> float:
    """A round's loss as the history records it: squared error where the library reports RMSE."""
    return value ** 2 if problem == "regression" else value


class XGBoostLearner(BoostedTrees):
    """XGBoost: `xgboost.train` with a callback per round; validation scores through its custom
    metric, which XGBoost hands the transformed predictions (probabilities)."""
    name, module, package, suffix = "xgboost", "xgboost", "xgboost", ".ubj"
    max_depth = 6                # levels per tree
    min_child_weight = 1.0       # hessian a child holds at least (rows, for squared error)
    l2 = 1.0                     # L2 penalty on leaf weights (reg_lambda)
    tunable = BoostedTrees.tunable + ("max_depth", "min_child_weight")

    @classmethod
    def space(cls, trial) -> dict:
        return common_space(trial) | {"max_depth": trial.suggest_int("max_depth", 3, 10),
                                      "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 50, log=True)}

    def params(self, rows: int) -> dict:
        objective, loss = XGB_OBJECTIVES[self.task.problem]
        s = self.setting
        out = {"objective": objective, "eval_metric": [loss], "learning_rate": s("learning_rate"),
               "max_depth": s("max_depth"), "min_child_weight": s("min_child_weight"), "reg_lambda": s("l2"),
               "subsample": s("subsample"), "colsample_bytree": s("colsample"), "tree_method": "hist",
               "seed": self.seed, "nthread": threads(rows), "verbosity": 0}
        return out | ({"num_class": len(self.task.classes)} if self.task.problem == "multiclass" else {})

    def boost(self, xgb, x_tr, y_tr, x_va, y_va, rounds: Rounds, categorical: list[int]) -> bytes:
        types = [("c" if i in categorical else "q") for i in range(x_tr.shape[1])] if categorical else None
        train, val = (xgb.DMatrix(x, label=y, feature_types=types, enable_categorical=bool(categorical))
                      for x, y in ((x_tr, y_tr), (x_va, y_va)))
        loss, problem = XGB_OBJECTIVES[self.task.problem][1], self.task.problem

        def scores(pred, data) -> list:       # on the training rows too: skipped, a placeholder
            return [(k, v) for k, v in (rounds.scores(pred) if data is val else rounds.last).items()]

        class Hook(xgb.callback.TrainingCallback):
            def after_iteration(self, model, epoch: int, log: dict) -> bool:
                return rounds.end(epoch + 1, objective_loss(problem, log["train"][loss][-1]),
                                  objective_loss(problem, log["val"][loss][-1]))
        booster = xgb.train(self.params(len(y_tr)), train, num_boost_round=rounds.limit,
                            evals=[(train, "train"), (val, "val")], verbose_eval=False,
                            custom_metric=scores if rounds.needs_scores else None, callbacks=[Hook()])
        return bytes(booster[:rounds.best_step].save_raw("ubj"))

    def raw_predict(self, x: np.ndarray) -> np.ndarray:
        types = self.model_.feature_types        # the model keeps which columns were categories
        return self.model_.predict(self.library().DMatrix(x, feature_types=types, enable_categorical="c" in (types or ())))

    def model_bytes(self) -> bytes:
        return bytes(self.model_.save_raw("ubj"))

    @staticmethod
    def from_bytes(xgb, data: bytes):
        booster = xgb.Booster()
        booster.load_model(bytearray(data))
        return booster

    @staticmethod
    def load_errors(xgb) -> tuple:
        return (xgb.core.XGBoostError,)


class CatBoostLearner(BoostedTrees):
    """CatBoost: `CatBoost.fit` with a callback per round; validation scores through a custom eval
    metric, which CatBoost hands the raw formula values (logits), made probabilities here."""
    name, module, package, suffix = "catboost", "catboost", "catboost", ".cbm"
    depth = 6                    # levels of each symmetric tree
    l2 = 3.0                     # L2 penalty on leaf values (l2_leaf_reg)
    colsample = 1.0              # columns per split choice (rsm); CatBoost's default
    tunable = BoostedTrees.tunable + ("depth",)

    @classmethod
    def space(cls, trial) -> dict:
        return common_space(trial) | {"depth": trial.suggest_int("depth", 4, 10)}

    def params(self, rows: int, rounds: int) -> dict:
        """CatBoost's parameters for a fold of `rows` training rows, boosting `rounds` at most."""
        s, problem = self.setting, self.task.problem
        out = {"loss_function": CATBOOST_LOSSES[problem], "iterations": rounds,
               "learning_rate": s("learning_rate"), "depth": s("depth"), "l2_leaf_reg": s("l2"),
               "bootstrap_type": "Bernoulli", "subsample": s("subsample"), "rsm": s("colsample"),
               "random_seed": self.seed, "thread_count": threads(rows), "use_best_model": False,
               "allow_writing_files": False, "verbose": False}
        return out | ({"classes_count": len(self.task.classes)} if problem == "multiclass" else {})

    def boost(self, cb, x_tr, y_tr, x_va, y_va, rounds: Rounds, categorical: list[int]) -> bytes:
        problem, loss, n_val = self.task.problem, CATBOOST_LOSSES[self.task.problem], len(y_va)
        params = self.params(len(y_tr), rounds.limit)

        class Scores:             # CatBoost's custom metric protocol; its value is unused
            def is_max_optimal(self) -> bool:
                return True

            def evaluate(self, approxes, target, weight):
                if len(target) == n_val:      # the training rows come first each round: skipped
                    rounds.scores(from_raw(problem, np.asarray(approxes)))
                return 0.0, 1.0

            def get_final_error(self, error: float, weight: float) -> float:
                return error

        class Hook:
            def after_iteration(self, info) -> bool:       # False stops
                got = info.metrics
                return not rounds.end(info.iteration, objective_loss(problem, got["learn"][loss][-1]),
                                      objective_loss(problem, got["validation"][loss][-1]))
        model = cb.CatBoost(params | ({"eval_metric": Scores()} if rounds.needs_scores else {}))
        with warnings.catch_warnings():       # "Failed to import numba for optimizing custom metrics"
            warnings.simplefilter("ignore", UserWarning)
            model.fit(with_codes(x_tr, categorical), y_tr, eval_set=(with_codes(x_va, categorical), y_va),
                      cat_features=categorical or None, callbacks=[Hook()])
        model.shrink(ntree_end=rounds.best_step)
        return cbm_bytes(model)

    def raw_predict(self, x: np.ndarray) -> np.ndarray:
        data = with_codes(x, list(self.model_.get_cat_feature_indices()))
        return from_raw(self.task.problem, self.model_.predict(data, prediction_type="RawFormulaVal").T)

    def model_bytes(self) -> bytes:
        return cbm_bytes(self.model_)

    @staticmethod
    def from_bytes(cb, data: bytes):
        model = cb.CatBoost()
        model.load_model(blob=data)
        return model

    @staticmethod
    def load_errors(cb) -> tuple:
        return (cb.CatBoostError,)


def from_raw(problem: str, raw: np.ndarray) -> np.ndarray:
    """CatBoost's raw values, (classes, N) or (1, N) or (N,), as the seam's predictions: P(class 1),
    softmax probabilities (N, classes), or the regression value."""
    raw = np.atleast_2d(np.asarray(raw, np.float64))
    if problem == "binary":
        return 1.0 / (1.0 + np.exp(-raw[0]))
    if problem == "multiclass":
        z = np.exp(raw - raw.max(0))
        return (z / z.sum(0)).T
    return raw[0]


def with_codes(x: np.ndarray, categorical: list[int]):
    """The matrix as CatBoost takes categories: their columns as whole numbers (missing: -1, a level
    of its own), in a DataFrame; without any, the matrix itself."""
    if not categorical:
        return x
    import pandas as pd
    frame = pd.DataFrame(x)
    for c in categorical:
        frame[c] = np.nan_to_num(frame[c].to_numpy(), nan=-1).astype(np.int64)
    return frame


def cbm_bytes(model) -> bytes:
    """A CatBoost model as its .cbm file holds it (CatBoost writes models to files only)."""
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.cbm"
        model.save_model(str(path), format="cbm")
        return path.read_bytes()
