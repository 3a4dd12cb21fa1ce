"""Learner combinations (pipelines/learners_ensemble.py): `A+B` resolves to a learner that trains
its members on each fold and averages them with equal weights; the run predicts again from its
folder; names that are no combination are one line."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from core.errors import UsageError
from models.registry import all_options, check_options
from pipelines.learners import LEARNERS
from pipelines.learners_ensemble import EnsembleLearner
from pipelines.predict import predict
from pipelines.train import train
from tasks.task import Encoded
from tiny_tasks import labels_submission, regression_frame, registered, table_task, write_competition


def test_a_combination_resolves_to_a_learner_with_its_members_tags():
    factory = LEARNERS.get("mlp+lightgbm")
    assert issubclass(factory, EnsembleLearner) and factory.members == ("mlp", "lightgbm")
    assert LEARNERS.tags["mlp+lightgbm"] == {"kind": "tabular"} and LEARNERS.get("mlp+lightgbm") is factory
    LEARNERS.get("logreg+lightgbm")
    assert LEARNERS.tags["logreg+lightgbm"]["problems"] == ("binary", "multiclass")


@pytest.mark.parametrize("name,message", [
    ("mlp+mlp", r"name each learner once"), ("mlp+", r"name each learner once"),
    ("mlp+lightgbn", r"unknown model 'lightgbn'.*did you mean 'lightgbm'"),
    ("mlp+cifar_course", r"its learners are for different data \(image, tabular\)")])
def test_names_that_are_no_combination_are_one_line(name, message):
    with pytest.raises(UsageError, match=message):
        LEARNERS.get(name)


def test_set_options_are_those_its_nets_read():
    check_options("mlp+lightgbm", {"width", "dropout"}, all_options())        # the mlp reads them
    with pytest.raises(UsageError, match=r"model 'logreg\+lightgbm' does not read width \(it reads no net's options\)"):
        check_options("logreg+lightgbm", {"width"}, all_options())
    with pytest.raises(UsageError, match=r"model 'lightgbm' does not read width"):
        check_options("lightgbm", {"width"}, all_options())


def _toy(problem: str, metric: str, n: int = 240):
    rng = np.random.default_rng(0)
    k = rng.integers(0, 3, n)
    x = torch.tensor(np.eye(3)[k] + rng.normal(scale=0.7, size=(n, 3)), dtype=torch.float32)
    y = {"binary": (k == 1).astype(int), "regression": np.exp(x[:, 0].numpy()) + k}[problem]
    task = table_task("toy", problem=problem, metric=metric, classes=(0, 1) if problem == "binary" else ())
    cut = 2 * n // 3
    return task, Encoded(None, x[:cut], x[cut:], None, {"in_features": 3, "out_features": 1}, ["a", "b", "c"], None), y[:cut], y[cut:]


@pytest.mark.slow
@pytest.mark.parametrize("problem,metric", [("binary", "logloss"), ("regression", "rmsle")])
def test_the_prediction_is_the_members_mean_where_the_metric_measures(problem, metric, tmp_path):
    from core.config import TrainConfig
    task, enc, y_tr, y_va = _toy(problem, metric)
    cfg = TrainConfig(task="toy", model="mlp+lightgbm", epochs=3, batch_size=32, width=8, depth=1, patience=2)
    rows = []
    learner = LEARNERS.create("mlp+lightgbm", task=task, cfg=cfg, device=torch.device("cpu"), random_state=3)
    learner.fit(enc, y_tr, y_va, on_step=rows.append)
    mlp, gbm = (m.predict_proba(enc.x_val) for m in learner.members_)
    mean = np.expm1(np.mean([np.log1p(mlp), np.log1p(gbm)], 0)) if metric == "rmsle" else (mlp + gbm) / 2
    assert np.allclose(learner.predict_proba(enc.x_val), mean)
    assert rows == learner.history_ and [r["member"] for r in rows][:3] == ["mlp"] * 3
    assert {r["member"] for r in rows} == {"mlp", "lightgbm"} and learner.best_step_.count("+") == 1
    assert learner.members_[0].cfg.model == "mlp" and learner.members_[1].random_state == 3
    learner.save(tmp_path / "model0.json")
    names = {p.name for p in tmp_path.iterdir()}
    assert {"model0.json", "model0-mlp.pt", "model0-lightgbm.txt"} <= names
    assert ("target0-mlp.joblib" in names) == (problem == "regression")
    again = type(learner).load(tmp_path / "model0.json", task, torch.device("cpu"))
    assert np.allclose(again.predict_proba(enc.x_val), learner.predict_proba(enc.x_val))
    other = LEARNERS.get("logreg+lightgbm") if problem == "binary" else LEARNERS.get("ridge+lightgbm")
    with pytest.raises(UsageError, match=r"model0.json: holds mlp\+lightgbm, not"):
        other.load(tmp_path / "model0.json", task, torch.device("cpu"))


@pytest.mark.slow
def test_a_run_trains_predicts_again_and_scores_the_mean(tmp_path, runs_dir):
    frame, test = regression_frame(150), regression_frame(12, seed=1)
    frame["y"] = (frame["y"] > frame["y"].median()).astype(int)
    folder = write_competition(tmp_path / "bin", frame, test)
    with registered(table_task("ensbin", problem="binary", metric="logloss", classes=(0, 1),
                               submission=labels_submission)) as task:
        res = train(task.config(model="logreg+lightgbm"), data_dir=folder, runs_root=runs_dir, out=tmp_path / "a.csv")
        again = predict(res.run_dir.name, "ensbin", runs_root=runs_dir, out=tmp_path / "b.csv")
    assert again.read_bytes() == (tmp_path / "a.csv").read_bytes()
    history = pd.read_csv(res.run_dir / "history.csv")
    assert set(history["member"]) == {"logreg", "lightgbm"}
    fold = res.run_dir / "fold0"
    assert {"model0.json", "model0-logreg.joblib", "model0-lightgbm.txt"} <= {p.name for p in fold.iterdir()}
    assert not list(fold.glob("ckpt*"))


def test_an_inferred_competition_defaults_to_the_mean_of_a_net_and_trees():
    from tasks.generic import LARGE, SMALL, defaults
    assert defaults(1000)["model"] == "mlp+lightgbm" and defaults(1000)["bags"] == 3
    assert defaults(SMALL + 1)["bags"] == 1 and defaults(SMALL + 1)["batch_size"] == 256
    assert defaults(LARGE + 1)["bags"] == 1 and defaults(LARGE + 1)["batch_size"] == 1024


def test_trees_settings_go_to_the_tree_members_and_are_checked_before_the_run():
    from core.config import TrainConfig
    combo = LEARNERS.get("mlp+lightgbm")
    combo.check(TrainConfig(task="toy", model="mlp+lightgbm", trees={"learning_rate": 0.1}))
    with pytest.raises(UsageError, match=r"lightgbm does not read 'depth_of_field'"):
        combo.check(TrainConfig(task="toy", model="mlp+lightgbm", trees={"depth_of_field": 3}))
    with pytest.raises(UsageError, match=r"no learner of 'mlp\+logreg' reads it"):
        LEARNERS.get("mlp+logreg").check(TrainConfig(task="toy", model="mlp+logreg", trees={"learning_rate": 0.1}))


@pytest.mark.slow
def test_tuning_a_combination_prunes_on_its_first_members_steps(titanic_dir, runs_dir):
    """The MLP's epochs are reported as quarters of fold 0, as for the MLP alone; the LightGBM
    member's rounds report nothing (their counts would overrun the quarters)."""
    import optuna
    from pipelines.tune import FOLD_STEP, tune
    result = tune("titanic", 1, folds=2, data_dir=titanic_dir, runs_root=runs_dir, seed=0, device="cpu",
                  fixed={"bags": 1, "patience": 1000, "model": "mlp+lightgbm", "epochs": 4})
    trial, = optuna.load_study(study_name="titanic-tune", storage=f"sqlite:///{result.study_dir / 'study.db'}").trials
    assert sorted(trial.intermediate_values) == [1, 2, 3, 4, FOLD_STEP, FOLD_STEP + 1]


@pytest.mark.slow
def test_members_that_encode_differently_each_get_their_encoding_and_predict_again(tmp_path, runs_dir):
    """The tree member on an inferred competition's categories as codes, the net on the generic
    encoding: both fit once per fold, kept together in encoder.joblib; predict gives the same file."""
    import joblib
    from cli import main
    from pipelines.learners_ensemble import Parts
    from test_generic_task import competition
    folder = competition(tmp_path / "ship", rows=60)
    out, again = tmp_path / "sub.csv", tmp_path / "again.csv"
    assert main(["train", "ship", "--data-dir", str(folder), "--runs-dir", str(runs_dir), "--out", str(out),
                 "--model", "mlp+lightgbm", "--folds", "2", "--epochs", "2", "--jobs", "1", "--quiet", "--set", "bags=1",
                 "--set", 'trees={"native_categorical": 1}']) == 0
    (run,) = (runs_dir / "ship").iterdir()
    parts = joblib.load(run / "fold0" / "encoder.joblib")
    assert isinstance(parts, Parts) and parts.members == ("mlp", "lightgbm")
    assert [type(e).__name__ for e in parts.encoders][1] == "TreeCodes" and parts.encoders[0] is not parts.encoders[1]
    assert main(["predict", "ship", "--runs-dir", str(runs_dir), "--out", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()
