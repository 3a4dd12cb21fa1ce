"""Regression through every stage, on a tiny competition registered for the test (tests/tiny_tasks.py):
train (an MLP and ridge), predict, blend, report; the target transform; the target's checks;
and ingest's na_values and text ids, kept verbatim in the submission."""
from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

from core.errors import UsageError
from data import ingest
from pipelines.blend import blend
from pipelines.predict import predict
from pipelines.report import report
from pipelines.target import TargetScaler
from pipelines.train import train
from pipelines.tune import tune
from tiny_tasks import (labels_submission, regression_frame, registered, table_task, write_competition)

TEXT_IDS = ["0013_01", "00042", "7", "0013_02"]


@pytest.fixture
def competition(tmp_path):
    """A --data-dir with 90 training rows and 12 test rows whose ids are text ("0013_01", "00042", ...)."""
    test_ids = TEXT_IDS + [f"{i:05d}" for i in range(8)]
    return write_competition(tmp_path / "data", regression_frame(90), regression_frame(12, seed=1, ids=test_ids))


@pytest.fixture
def rmse_task():
    with registered(table_task("tinyreg", id_as_text=True)) as task:
        yield task


def test_train_predict_blend_report(competition, rmse_task, runs_dir, tmp_path):
    mlp = train(rmse_task.config(), data_dir=competition, runs_root=runs_dir, out=tmp_path / "mlp.csv")
    ridge = train(rmse_task.config(model="ridge"), data_dir=competition, runs_root=runs_dir, out=tmp_path / "ridge.csv")
    assert ridge.scores["rmse"] < 1.0 < np.std(regression_frame(90)["y"])     # the linear truth, noise 0.3
    oof = pd.read_csv(mlp.run_dir / "oof.csv")
    assert list(oof.columns) == ["id", "target", "prediction"] and oof["prediction"].notna().all()
    assert oof["target"].to_numpy() == pytest.approx(regression_frame(90)["y"].to_numpy())
    sub = pd.read_csv(tmp_path / "mlp.csv", dtype={"id": str})
    assert list(sub.columns) == ["id", "y"] and list(sub["id"][:4]) == TEXT_IDS       # verbatim, sample order
    assert np.isfinite(sub["y"]).all() and sub["y"].std() > 0
    saved = sorted(p.name for p in (mlp.run_dir / "fold0").iterdir())
    assert {"model0.pt", "target0.joblib", "encoder.joblib"} <= set(saved)
    # predict rebuilds the same submission from the run folder alone (target transform included)
    again = predict(mlp.run_dir.name, "tinyreg", runs_root=runs_dir, out=tmp_path / "again.csv")
    assert again.read_bytes() == (tmp_path / "mlp.csv").read_bytes()
    res = blend("tinyreg", [mlp.run_dir.name, ridge.run_dir.name], runs_root=runs_dir, out=tmp_path / "blend.csv")
    assert res.temperature == 1.0 and res.weights.sum() == pytest.approx(1)
    assert res.weights[1] > 0.5 and res.cv["rmse"] <= mlp.scores["rmse"]     # ridge fits this data best
    assert list(pd.read_csv(tmp_path / "blend.csv", dtype={"id": str})["id"][:4]) == TEXT_IDS
    lines = report(mlp.run_dir.name, "tinyreg", runs_root=runs_dir)
    assert any(line.startswith("CV:") and "rmse" in line for line in lines)
    plots = sorted(line.split("/")[-1] for line in lines if line.startswith("plot:"))
    assert plots == ["loss.png", "predicted.png", "residuals.png", "val_score.png"]


def test_rmsle_trains_on_log1p_and_scores_in_the_targets_units(competition, runs_dir, tmp_path):
    with registered(table_task("tinylog", metric="rmsle", id_as_text=True)) as task:
        res = train(task.config(epochs=2, folds=2, calibrate=True), data_dir=competition, runs_root=runs_dir,
                    out=tmp_path / "sub.csv")
    oof = pd.read_csv(res.run_dir / "oof.csv")
    rmsle = np.sqrt(np.mean((np.log1p(oof["target"]) - np.log1p(oof["prediction"])) ** 2))
    assert res.scores["rmsle"] == pytest.approx(rmsle, rel=1e-6)
    assert not (res.run_dir / "calibration.json").exists()          # nothing to temperature-scale
    history = pd.read_csv(res.run_dir / "history.csv")
    assert "val_rmsle" not in history and (history["val_score"] < 1).all()    # rmsle itself, not the MSE


def test_target_transform_is_fit_on_the_given_rows_and_inverts():
    y = np.array([0.0, 9.0, 99.0, 999.0])
    log = TargetScaler("rmsle").fit(y)
    z = log.transform(y)
    assert z.dtype == np.float32 and z.mean() == pytest.approx(0, abs=1e-6) and z.std() == pytest.approx(1, rel=1e-5)
    assert log.inverse(z) == pytest.approx(y, rel=1e-5, abs=1e-4)
    assert log.inverse(np.array([-50.0]))[0] == 0.0                 # expm1 of a very low value: clipped at 0
    plain = TargetScaler("rmse").fit(y)
    assert plain.transform(np.array([y.mean()]))[0] == pytest.approx(0, abs=1e-6)


def test_missing_or_infinite_targets_are_one_line_with_their_count(rmse_task):
    target = pd.Series([1.0, np.nan, 3.0, np.inf, np.nan])
    with pytest.raises(UsageError) as e:
        ingest.encode_target(rmse_task, target)
    assert str(e.value) == ("tinyreg: column y: 3 of 5 target values are missing or infinite (first in data row 2); "
                            "regression needs a number on every training row")
    with pytest.raises(UsageError, match="column y is 4.0 on every training row; nothing to learn"):
        ingest.encode_target(rmse_task, pd.Series([4.0, 4.0, 4.0]))
    assert ingest.encode_target(rmse_task, pd.Series([1, 2])).dtype == np.float64


def test_nan_target_stops_training_before_a_run(tmp_path, rmse_task, runs_dir):
    train_df = regression_frame(30)
    train_df.loc[[3, 7], "y"] = np.nan
    folder = write_competition(tmp_path / "bad", train_df, regression_frame(5, seed=1))
    with pytest.raises(UsageError, match="2 of 30 target values are missing or infinite"):
        train(rmse_task.config(), data_dir=folder, runs_root=runs_dir)
    assert not (runs_dir / "tinyreg").exists()          # refused while reading: no run folder made


def test_logreg_and_a_label_metric_are_refused_for_regression(competition, rmse_task, runs_dir):
    with pytest.raises(UsageError, match="model 'logreg' is for binary or multiclass problems, but tinyreg is "
                                         "regression; its models: .*ridge"):
        train(rmse_task.config(model="logreg"), data_dir=competition, runs_root=runs_dir)
    with registered(table_task("tinyacc", metric="accuracy")) as task:
        with pytest.raises(UsageError, match="metric accuracy does not score a regression problem"):
            train(task.config(), data_dir=competition, runs_root=runs_dir)


def test_na_values_and_text_ids_in_a_labels_competition(tmp_path, runs_dir):
    """Binary labels scored by mcc: '?' cells read as missing (imputed, not a parse error), the ids
    "0013_01" and "00042" kept as written from test file to submission."""
    frame = regression_frame(60)
    frame["y"] = np.where(frame["y"] > frame["y"].median(), "yes", "no")
    frame = frame.astype({"x2": object})
    frame.loc[[2, 5], "x2"] = "?"
    test = regression_frame(4, seed=2, ids=TEXT_IDS).assign(y="no")
    folder = write_competition(tmp_path / "labels", frame, test)
    task = table_task("tinylab", problem="binary", metric="mcc", classes=("no", "yes"), submission=labels_submission,
                      na_values=("?",), id_as_text=True)
    assert ingest.load(task, "train", folder)["x2"].isna().sum() == 2
    with registered(task):
        res = train(task.config(model="logreg"), data_dir=folder, runs_root=runs_dir, out=tmp_path / "sub.csv")
    assert res.scores["mcc"] > 0.5
    assert (tmp_path / "sub.csv").read_text().splitlines()[1].startswith("0013_01,")
    sub = pd.read_csv(tmp_path / "sub.csv", dtype=str)
    assert list(sub["id"]) == TEXT_IDS and set(sub["y"]) <= {"no", "yes"}


def test_multiclass_with_a_label_metric_stops_on_the_loss(tmp_path, runs_dir):
    frame = regression_frame(90)
    frame["y"] = pd.cut(frame["y"], 3, labels=False)
    folder = write_competition(tmp_path / "multi", frame, regression_frame(6, seed=1))
    task = table_task("tinyqwk", problem="multiclass", metric="qwk", classes=(0, 1, 2), submission=labels_submission,
                      extra_metrics=("f1",))
    with registered(task):
        res = train(task.config(epochs=2), data_dir=folder, runs_root=runs_dir, out=tmp_path / "sub.csv")
    history = pd.read_csv(res.run_dir / "history.csv")
    assert (history["val_score"] == history["val_loss"]).all() and "val_qwk" in history
    assert set(res.scores) == {"qwk", "f1"}
    assert set(pd.read_csv(tmp_path / "sub.csv")["y"]) <= {0, 1, 2}


@pytest.mark.slow          # a study's database and plots: ~6 s, as tests/test_tune.py's
def test_tune_minimises_rmse(competition, rmse_task, runs_dir):
    res = tune("tinyreg", 2, folds=2, data_dir=competition, runs_root=runs_dir, fixed={"epochs": 2})
    st = optuna.load_study(study_name="tinyreg-tune", storage=f"sqlite:///{res.study_dir / 'study.db'}")
    values = [t.value for t in st.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert st.direction == optuna.study.StudyDirection.MINIMIZE and res.best_value == min(values)
