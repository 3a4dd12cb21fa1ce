"""The three gradient-boosted trees learners (pipelines/learners_gbdt.py, learners_xgb_cat.py) side by
side: registered alike, each fits with a history row per round, saves in its library's format and
loads back to the same predictions, fails in one line before a run folder when its library is
missing; config key `trees` reaches the library and is checked; `tune` searches a tree learner's own
space, pruned on boosting rounds, and its best trial replays as a run; status.json's throttle."""
from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import optuna
import pandas as pd
import pytest
import torch

from cli import main
from core.errors import UsageError
from pipelines import runs
from pipelines.learners import LEARNERS
from pipelines.learners_gbdt import BoostedTrees, LightGBMLearner
from pipelines.learners_xgb_cat import CatBoostLearner, XGBoostLearner
from pipelines.metrics import METRICS
from pipelines.predict import predict
from pipelines.train import _heartbeat, train
from pipelines.tune import FOLD_STEP, tune
from test_gbdt import FAST, _toy
from tiny_tasks import labels_submission, regression_frame, registered, table_task, write_competition

TREES = {"lightgbm": LightGBMLearner, "xgboost": XGBoostLearner, "catboost": CatBoostLearner}
slow = pytest.mark.slow


def _fit(model, task, enc, y_tr, y_va, rows=None, trees=None):
    cfg = SimpleNamespace(patience=2, trees=trees or {})
    return LEARNERS.create(model, task=task, cfg=cfg, device=torch.device("cpu"),
                           random_state=3).fit(enc, y_tr, y_va, on_step=rows.append if rows is not None else None)


@pytest.mark.parametrize("model", TREES)
def test_every_tree_learner_is_registered_alike_and_declares_its_space(model):
    learner = LEARNERS.get(model)
    assert learner is TREES[model] and issubclass(learner, BoostedTrees) and LEARNERS.tags[model] == {"kind": "tabular"}
    assert learner.progress_unit == "round" and learner.learning_rate == 0.05
    defaults = learner.defaults()        # a study's first trial: drawn back unchanged by the space
    assert learner.space(optuna.trial.FixedTrial(defaults)) == defaults
    assert set(defaults) == set(learner.tunable) and {"learning_rate", "subsample", "colsample", "l2"} <= set(defaults)
    assert len({TREES[m].suffix for m in TREES}) == 3


@pytest.mark.parametrize("model,problem,metric", [
    ("xgboost", "binary", "roc_auc"), ("catboost", "multiclass", "accuracy"),
    pytest.param("xgboost", "multiclass", "logloss", marks=slow), pytest.param("xgboost", "regression", "rmsle", marks=slow),
    pytest.param("catboost", "binary", "roc_auc", marks=slow), pytest.param("catboost", "regression", "rmse", marks=slow)])
def test_history_rows_are_rounds_and_save_load_predicts_the_same(model, problem, metric, tmp_path):
    task, enc, y_tr, y_va = _toy(problem, metric, n=150)
    rows = []
    learner = _fit(model, task, enc, y_tr, y_va, rows)
    assert rows == learner.history_ and [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) == learner.best_step_ + 50          # stopped 50 rounds after the best
    assert {"epoch", "train_loss", "val_loss", "val_score", "lr", "seconds"} <= set(rows[0])
    assert learner.best_score_ == rows[learner.best_step_ - 1]["val_score"]
    p = learner.predict_proba(enc.x_val)
    assert p.shape == ((50, 3) if problem == "multiclass" else (50,))
    if metric == "accuracy":         # a label metric: early stopping watches the loss, the metric beside it
        assert all(r["val_score"] == r["val_loss"] for r in rows) and "val_accuracy" in rows[0]
    else:                            # the watched score is the task's metric on the kept trees' predictions
        assert learner.best_score_ == pytest.approx(METRICS[metric].fn(y_va, p))
    if problem == "multiclass":
        assert np.allclose(p.sum(1), 1) and (p.argmax(1) == y_va).mean() > 0.6
    path = tmp_path / f"model0{TREES[model].suffix}"
    learner.save(path)
    assert (tmp_path / "target0.joblib").is_file() == (problem == "regression")
    again = TREES[model].load(path, task, torch.device("cpu"))
    assert np.array_equal(again.predict_proba(enc.x_val), p)
    path.write_bytes(b"not a model")
    with pytest.raises(UsageError, match=rf"model0{TREES[model].suffix}: missing or corrupted \(\w+\)$"):
        TREES[model].load(path, task, torch.device("cpu"))


def test_trees_settings_reach_the_library():
    task, enc, y_tr, y_va = _toy("binary", "logloss", n=120)
    learner = _fit("xgboost", task, enc, y_tr, y_va, trees={"max_depth": 1, "learning_rate": 0.2, "max_rounds": 7})
    nodes = learner.model_.trees_to_dataframe().groupby("Tree").size()
    assert nodes.max() == 3                  # depth 1: a split and its two leaves
    assert len(learner.history_) <= 7 and learner.history_[0]["lr"] == 0.2


@pytest.mark.parametrize("model,trees,error", [
    ("lightgbm", {"max_depth": 3}, r"lightgbm does not read 'max_depth'; it reads learning_rate, .*num_leaves"),
    ("catboost", {"depth": "six"}, r"trees: depth wants a number >= 0, got 'six'"),
    ("mlp", {"num_leaves": 8}, r"config key trees holds gradient-boosted trees' settings; model 'mlp' does not read it")])
def test_trees_settings_are_checked_before_a_run(model, trees, error):
    from tasks.task import TASKS
    cfg = TASKS.create("diabetes").config(model=model, trees=trees)
    with pytest.raises(UsageError, match=error):
        LEARNERS.get(model).check(cfg)


def test_an_inferred_competitions_categories_reach_the_trees_as_codes():
    from pipelines.learners_tree_codes import TreeCodes
    train = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0], "planet": ["Mars", "Earth", None, "Mars"],
                          "vip": ["True", "False", "True", None], "same": [1, 1, 1, 1]})
    enc = TreeCodes({"x": "numeric", "planet": "categorical", "vip": "boolean", "same": "numeric"}, "binary")
    x = enc.fit_transform(train, np.array([0, 1, 0, 1]))
    assert list(enc.get_feature_names_out()) == ["numeric__x", "boolean__vip", "categorical__planet"]
    assert enc.categorical_ == [2]           # the constant column dropped; numbers unscaled, NaN kept
    assert np.isnan(x[1, 0]) and x[3, 0] == 4.0 and x[0, 1] == 1.0 and np.isnan(x[3, 1])
    codes = x[:, 2]
    assert codes[0] == codes[3] and len(set(codes)) == 3 and (codes >= 0).all()     # missing: a level
    unseen = enc.transform(pd.DataFrame({"x": [2.0], "planet": ["Venus"], "vip": ["False"], "same": [1]}))
    assert np.isnan(unseen[0, 2])             # a level the fold never saw: missing
    assert [TREES[m].native_categorical for m in TREES] == [0, 0, 0]     # asked for with trees, not by default


@slow
@pytest.mark.parametrize("model", ["lightgbm", "xgboost", "catboost"])
def test_trees_split_an_inferred_competitions_categories_natively_and_predict_from_the_folder(model, tmp_path, runs_dir):
    from test_generic_task import competition
    folder = competition(tmp_path / "ship", rows=60)
    out, again = tmp_path / "sub.csv", tmp_path / "again.csv"
    assert main(["train", "ship", "--data-dir", str(folder), "--runs-dir", str(runs_dir), "--out", str(out),
                 "--model", model, *FAST, "--set", 'trees={"native_categorical": 1}']) == 0
    (run,) = (runs_dir / "ship").iterdir()
    assert type(joblib_load(run / "fold0" / "encoder.joblib")).__name__ == "TreeCodes"
    assert main(["predict", "ship", "--runs-dir", str(runs_dir), "--out", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()


def joblib_load(path):
    import joblib
    return joblib.load(path)


@pytest.mark.parametrize("model,package", [("lightgbm", "lightgbm"), ("xgboost", "xgboost"), ("catboost", "catboost")])
def test_a_missing_library_is_one_line_before_any_run_folder(model, package, runs_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, package, None)        # import raises ImportError
    assert main(["train", "diabetes", "--model", model, "--runs-dir", str(runs_dir), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --model {model} needs the {package} package: pip install {package}"
    assert not runs_dir.exists()


def test_the_heartbeat_writes_status_at_most_once_a_second(monkeypatch, tmp_path):
    writes, rows = [], []
    monkeypatch.setattr(runs, "set_status", lambda run, state, **extra: writes.append(extra["seconds"]))
    hook = _heartbeat(tmp_path, 0.0, lambda fold, bag, row: rows.append(row))
    for step in range(200):               # 200 rounds in far less than a second
        hook(0, 0, {"epoch": step})
    assert len(rows) == 200 and len(writes) == 1


@slow
@pytest.mark.parametrize("model", ["xgboost", "catboost"])
def test_titanic_trains_predicts_blends_and_reports(model, titanic_dir, runs_dir, tmp_path, capsys):
    where = ["--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir)]
    out = tmp_path / "trees.csv"
    assert main(["train", "titanic", "--model", model, "--out", str(out), *FAST, *where]) == 0
    run = next(d.name for d in (runs_dir / "titanic").iterdir() if f"-{model}-" in d.name)
    assert {p.suffix for p in (runs_dir / "titanic" / run / "fold0").glob("model*")} == {TREES[model].suffix}
    again = tmp_path / "predict.csv"
    assert main(["predict", "titanic", "--run", run, "--runs-dir", str(runs_dir), "--out", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()
    assert main(["train", "titanic", "--model", "lightgbm", "--out", str(tmp_path / "lgb.csv"), *FAST, *where]) == 0
    capsys.readouterr()
    both = sorted(d.name for d in (runs_dir / "titanic").iterdir())
    assert main(["blend", "titanic", *both, "--runs-dir", str(runs_dir), "--out", str(tmp_path / "blend.csv")]) == 0
    assert "blend CV accuracy" in capsys.readouterr().out
    assert main(["report", "titanic", "--run", run, "--runs-dir", str(runs_dir)]) == 0
    assert f"model:       {model}" in capsys.readouterr().out


@slow
@pytest.mark.parametrize("model", ["xgboost", "catboost"])
def test_regression_and_multiclass_runs_predict_from_their_folders(model, tmp_path, runs_dir):
    frame, test = regression_frame(150), regression_frame(12, seed=1)
    reg = write_competition(tmp_path / "reg", frame, test)
    with registered(table_task("treg", metric="rmsle")) as task:
        res = train(task.config(model=model), data_dir=reg, runs_root=runs_dir, out=tmp_path / "reg.csv")
        again = predict(res.run_dir.name, "treg", runs_root=runs_dir, out=tmp_path / "reg-again.csv")
    assert again.read_bytes() == (tmp_path / "reg.csv").read_bytes() and res.scores["rmsle"] < 0.1
    frame["y"] = pd.cut(frame["y"], 3, labels=False)
    multi = write_competition(tmp_path / "multi", frame, test)
    with registered(table_task("tmulti", problem="multiclass", metric="logloss", classes=(0, 1, 2),
                               submission=labels_submission, extra_metrics=("accuracy",))) as task:
        res = train(task.config(model=model), data_dir=multi, runs_root=runs_dir, out=tmp_path / "multi.csv")
        again = predict(res.run_dir.name, "tmulti", runs_root=runs_dir, out=tmp_path / "multi-again.csv")
    assert again.read_bytes() == (tmp_path / "multi.csv").read_bytes() and res.scores["accuracy"] > 0.6


@slow
def test_tune_searches_the_trees_space_pruned_on_rounds_and_the_best_replays(tmp_path, runs_dir):
    frame = regression_frame(150)
    data = write_competition(tmp_path / "reg", frame, regression_frame(12, seed=1))
    with registered(table_task("ttune", metric="rmse")) as task:
        res = tune("ttune", trials=3, folds=2, data_dir=data, runs_root=runs_dir, fixed={"model": "xgboost"})
        st = optuna.load_study(study_name="ttune-tune", storage=f"sqlite:///{res.study_dir / 'study.db'}")
        first = st.trials[0]
        assert first.params == XGBoostLearner.defaults()         # trial 0: the learner's own defaults
        assert all(set(t.params) == set(XGBoostLearner.defaults()) for t in st.trials)
        steps = set(first.intermediate_values)       # best-so-far every 100 rounds at lr 0.05, then per fold
        rounds = sorted(s for s in steps if s < FOLD_STEP)
        assert {FOLD_STEP, FOLD_STEP + 1} <= steps and rounds == list(range(1, len(rounds) + 1))
        assert res.best_params["model"] == "xgboost" and set(res.best_params["trees"]) == set(XGBoostLearner.defaults())
        replay = train(task.config(**res.best_params), data_dir=data, runs_root=runs_dir, out=tmp_path / "replay.csv")
        assert runs.read_json(replay.run_dir / "config.json")["config"]["trees"] == res.best_params["trees"]
        with pytest.raises(UsageError, match="searches xgboost's trees, not the task's search space"):
            tune("ttune", trials=1, folds=2, data_dir=data, runs_root=runs_dir)
        tune("ttune", trials=1, folds=2, data_dir=data, runs_root=runs_dir, fixed={"model": "xgboost"})   # continues
        assert len(optuna.load_study(study_name="ttune-tune", storage=f"sqlite:///{res.study_dir / 'study.db'}").trials) == 4


@slow
def test_tune_model_option_and_train_params_best_through_the_cli(runs_dir, tmp_path, capsys):
    where = ["--runs-dir", str(runs_dir), "--quiet"]
    assert main(["tune", "diabetes", "--model", "lightgbm", "--trials", "2", "--folds", "2", "--set", "bags=1", *where]) == 0
    assert "num_leaves" in capsys.readouterr().out            # the trials' table shows the trees' params
    assert main(["train", "diabetes", "--params", "best", "--folds", "2", "--out", str(tmp_path / "s.csv"), *where]) == 0
    (run,) = [d for d in (runs_dir / "diabetes").iterdir() if d.name != "studies"]
    assert "-lightgbm-" in run.name and set(runs.read_json(run / "config.json")["config"]["trees"]) == set(LightGBMLearner.defaults())
