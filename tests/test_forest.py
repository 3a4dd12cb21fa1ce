"""The forests (`--model randomforest|extratrees`): every problem, probabilities with no zeros, the
run folder predicts what train wrote, the `trees` settings reach scikit-learn and bad ones are one
line, each bag its own seed, and `tune` draws their space."""
from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest

from core.errors import UsageError
from pipelines.learners import LEARNERS, ExtraTreesLearner, RandomForestLearner
from pipelines.metrics import kaggle_logloss
from pipelines.predict import predict
from pipelines.train import train
from pipelines.tune import search_space
from tasks.task import Encoded
from tiny_tasks import labels_submission, problem_frames, registered, table_task, write_competition

FORESTS = ("randomforest", "extratrees")




@pytest.mark.slow
@pytest.mark.parametrize("model", FORESTS)
@pytest.mark.parametrize("problem,metric,classes", [("binary", "logloss", (0, 1)),
                                                    ("multiclass", "logloss", (0, 1, 2)),
                                                    ("regression", "rmse", ())])
def test_a_forest_trains_every_problem_and_predicts_from_its_folder(model, problem, metric, classes, tmp_path,
                                                                     runs_dir):
    frame, test = problem_frames(problem)
    folder = write_competition(tmp_path / "c", frame, test)
    kw = {"submission": labels_submission} if classes else {}
    with registered(table_task("rf", problem=problem, metric=metric, classes=classes, **kw)) as task:
        res = train(task.config(model=model, trees={"n_estimators": 40}), data_dir=folder, runs_root=runs_dir,
                    out=tmp_path / "a.csv")
        again = predict(res.run_dir.name, "rf", runs_root=runs_dir, out=tmp_path / "b.csv")
    assert again.read_bytes() == (tmp_path / "a.csv").read_bytes()
    saved = sorted(res.run_dir.glob("fold*/model0.joblib"))
    assert len(saved) == task.config().folds
    with open(saved[0], "rb") as f:
        assert f.read(1) == b"\x78"               # zlib's header: saved compressed
    oof = pd.read_csv(res.run_dir / "oof.csv")
    y = oof["target"].to_numpy()
    if problem == "regression":
        assert np.sqrt(np.mean((oof["prediction"] - y) ** 2)) < 0.8 * y.std()     # better than the mean
        return
    p = oof["proba"].to_numpy() if problem == "binary" else oof[[str(c) for c in classes]].to_numpy()
    assert (p > 0).all() and (p < 1).all()          # one pseudo-tree: never a 0 or a 1
    prior = np.bincount(y) / len(y)
    base = kaggle_logloss(y, np.tile(prior, (len(y), 1)) if p.ndim == 2 else np.full(len(y), prior[1]))
    assert kaggle_logloss(y, p) < base
    if p.ndim == 2:
        assert np.allclose(p.sum(1), 1)


def _learner(cls, trees: dict | None = None, problem="multiclass", seed=0):
    task = table_task("rf", problem=problem, metric="logloss" if problem != "regression" else "rmse",
                      classes=(0, 1, 2) if problem == "multiclass" else (0, 1) if problem == "binary" else ())
    return cls(task, task.config(model=cls.name, trees=trees or {}), None, random_state=seed)


def _fit(learner, x, y):
    enc = Encoded(encoder=None, x_train=x, x_val=x[:5], x_test=None, shape={}, columns=[f"c{i}" for i in range(x.shape[1])],
                  batch_fn=None)
    return learner.fit(enc, y, y[:5])


def test_the_shares_are_the_trees_votes_plus_one_uniform_tree():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int)
    learner = _fit(_learner(ExtraTreesLearner, {"n_estimators": 7}), x, y)
    shares = learner.model_.predict_proba(x)
    assert (shares == 0).any()                 # fully grown trees: a class with no vote
    assert np.allclose(learner.predict_proba(x), (shares * 7 + 1 / 3) / 8)
    assert learner.history_[0]["val_score"] == pytest.approx(kaggle_logloss(y[:5], learner.predict_proba(x[:5])))


def test_the_settings_reach_scikit_learn_and_each_bag_draws_its_own_trees(monkeypatch):
    monkeypatch.setattr("pipelines.learners.torch.get_num_threads", lambda: 2)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 4)), rng.integers(0, 2, 200)
    a = _fit(_learner(RandomForestLearner, {"n_estimators": 12, "max_features": 0.5, "min_samples_leaf": 3},
                      problem="binary"), x, y)
    got = a.model_.get_params()
    assert (got["n_estimators"], got["max_features"], got["min_samples_leaf"]) == (12, 0.5, 3)
    assert got["n_jobs"] == 2                  # every thread the fold has, small folds too (trees are independent tasks)
    assert a.predict_proba(x).shape == (200,)
    defaults = _fit(_learner(ExtraTreesLearner, problem="binary"), x, y).model_.get_params()
    assert (defaults["n_estimators"], defaults["max_features"], defaults["min_samples_leaf"]) == (300, "sqrt", 1)
    b = _fit(_learner(RandomForestLearner, {"n_estimators": 12}, problem="binary", seed=1), x, y)
    c = _fit(_learner(RandomForestLearner, {"n_estimators": 12}, problem="binary", seed=2), x, y)
    assert not np.allclose(b.predict_proba(x), c.predict_proba(x))
    assert RandomForestLearner.seeded and ExtraTreesLearner.seeded     # bags then differ (pipelines/cv.py)
    reg = _fit(_learner(RandomForestLearner, {"n_estimators": 5}, problem="regression"), x, x[:, 0] * 3.0)
    assert reg.model_.regressor_.get_params()["max_features"] == 1.0      # regression's default: every column


@pytest.mark.parametrize("trees,message", [
    ({"num_leaves": 31}, "config key trees: extratrees does not read 'num_leaves'; it reads n_estimators, "
                         "max_features, min_samples_leaf"),
    ({"max_features": 2}, "config key trees: max_features wants a share of the columns in (0, 1], got 2"),
    ({"max_features": 0}, "config key trees: max_features wants a share of the columns in (0, 1], got 0"),
    ({"n_estimators": 0}, "config key trees: n_estimators wants a whole number >= 1, got 0"),
    ({"min_samples_leaf": 1.5}, "config key trees: min_samples_leaf wants a whole number >= 1, got 1.5"),
    ({"n_estimators": True}, "config key trees: n_estimators wants a whole number >= 1, got True"),
])
def test_bad_tree_settings_are_one_line(trees, message):
    task = table_task("rf", problem="binary", metric="logloss", classes=(0, 1))
    with pytest.raises(UsageError) as e:
        LEARNERS.get("extratrees").check(task.config(model="extratrees", trees=trees))
    assert str(e.value) == message


@pytest.mark.parametrize("model", FORESTS)
def test_tune_draws_a_forests_space_with_fully_grown_trees_first(model):
    task = table_task("rf", problem="binary", metric="logloss", classes=(0, 1))
    space, defaults, label = search_space(task, {"model": model})
    assert (label, defaults) == (model, {"min_samples_leaf": 1})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(defaults)
    drawn = []
    for _ in range(6):
        trial = study.ask()
        overrides = space(trial)
        cfg = task.config(model=model, **overrides)
        LEARNERS.get(model).check(cfg)          # every draw is a valid setting
        drawn.append(json.dumps(cfg.trees, sort_keys=True))
        study.tell(trial, 0.0)
    assert json.loads(drawn[0])["min_samples_leaf"] == 1 and len(set(drawn)) > 1


@pytest.mark.parametrize("problem", ["multiclass", "regression"])
def test_a_forest_grows_in_chunks_to_the_trees_of_one_fit_and_can_be_stopped_between_them(problem):
    """A history row per `chunk` trees, each scored on the validation rows; the forest grown so is
    the one a single fit of every tree gives (warm start), and a hook that raises after a chunk
    (the preset's budget) stops it there."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 4))
    y = np.digitize(x[:, 0], [-0.5, 0.5]) if problem == "multiclass" else np.exp(x[:, 0])
    learner = _learner(ExtraTreesLearner, {"n_estimators": 25}, problem=problem)
    learner.chunk = 10
    _fit(learner, x, y)
    assert [r["trees"] for r in learner.history_] == [10, 20, 25] and learner.best_step_ == 3
    assert [r["epoch"] for r in learner.history_] == [1, 2, 3]
    assert learner.best_score_ == learner.history_[-1]["val_score"]
    whole = _learner(ExtraTreesLearner, {"n_estimators": 25}, problem=problem)
    whole.chunk = 25
    _fit(whole, x, y)
    assert len(whole.history_) == 1
    assert np.array_equal(learner.predict_proba(x), whole.predict_proba(x))

    class Stop(Exception):
        pass

    def hook(row):
        raise Stop
    stopped = _learner(ExtraTreesLearner, {"n_estimators": 25}, problem=problem)
    stopped.chunk = 10
    enc = Encoded(encoder=None, x_train=x, x_val=x[:5], x_test=None, shape={}, columns=["a", "b", "c", "d"],
                  batch_fn=None)
    with pytest.raises(Stop):
        stopped.fit(enc, y, y[:5], on_step=hook)
    forest = stopped.model_ if problem != "regression" else stopped.model_.regressor_
    assert len(forest.estimators_) == 10


def test_a_forests_folds_train_one_at_a_time_on_every_core(monkeypatch):
    """The trees spread over the cores themselves, and two folds' forests at once would hold twice
    the memory: one fold at a time on every thread, unless `jobs` says otherwise."""
    from types import SimpleNamespace

    import torch

    from core.config import TrainConfig
    from pipelines.cv import fold_plan
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    inp = SimpleNamespace(device=torch.device("cpu"), task=SimpleNamespace(parallel_folds=True))
    folds = list(range(5))
    assert fold_plan(TrainConfig(task="x", model="extratrees"), inp, folds) == [(folds, 1, 2)]
    assert fold_plan(TrainConfig(task="x", model="randomforest"), inp, folds) == [(folds, 1, 2)]
    assert fold_plan(TrainConfig(task="x", model="lightgbm"), inp, folds) == [(folds, 2, 1)]
    assert fold_plan(TrainConfig(task="x", model="extratrees", jobs=2), inp, folds) == [(folds, 2, 1)]
