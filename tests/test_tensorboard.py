"""`--tensorboard` on train (tables and images) and tune: the event files hold the expected tags."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from typer.testing import CliRunner

from cli import app
from pipelines.tune import study_dir
from tests.test_images import digits, write_idx
from tests.test_tune import tiny_space


def run_ok(args) -> str:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def events(log_dir) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


@pytest.mark.slow
def test_train_logs_per_fold_epoch_scalars_and_cv(titanic_dir, runs_dir, tmp_path):
    run_ok(["train", "titanic", "--folds", "2", "--epochs", "3", "--quiet", "--set", "bags=2", "--tensorboard",
            "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir), "--out", str(tmp_path / "sub.csv")])
    [run] = list((runs_dir / "titanic").iterdir())
    acc = events(run / "tensorboard")
    # the default stopping=refit: each bag's two fits, the one choosing the epochs and the refit
    expected = {f"fold{k}/{b}{phase}/{key}" for k in (0, 1) for b in ("", "bag1/") for phase in ("choose", "refit")
                for key in ("train_loss", "val_loss", "val_score", "lr")}
    assert expected | {"cv/accuracy", "fold_scores/accuracy"} <= set(acc.Tags()["scalars"])
    history = pd.read_csv(run / "history.csv")
    fold0 = history[(history["fold"] == 0) & (history["bag"] == 0) & (history["phase"] == "refit")]
    logged = acc.Scalars("fold0/refit/val_loss")
    assert [e.step for e in logged] == fold0["epoch"].tolist()
    assert np.allclose([e.value for e in logged], fold0["val_loss"], rtol=1e-4)
    cv = json.loads((run / "metrics.json").read_text())["cv"]["accuracy"]
    assert acc.Scalars("cv/accuracy")[0].value == np.float32(cv)
    assert acc.Tags()["images"] == []                                     # tables: no image grids


@pytest.mark.plots
def test_image_run_logs_training_and_misclassified_grids(tmp_path):
    raw = tmp_path / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (tx, ty), (vx, vy) = digits(120), digits(30, seed=1)
    for stem, arr in [("train-images-idx3-ubyte", tx), ("train-labels-idx1-ubyte", ty),
                      ("t10k-images-idx3-ubyte", vx), ("t10k-labels-idx1-ubyte", vy)]:
        write_idx(raw / stem, arr, gz=False)
    runs = tmp_path / "runs"
    run_ok(["train", "mnist", "--epochs", "1", "--quiet", "--set", "width=8", "--set", "holdout=0.25", "--tensorboard",
            "--data-dir", str(tmp_path / "tv"), "--runs-dir", str(runs), "--out", str(tmp_path / "sub.csv")])
    [run] = list((runs / "mnist").iterdir())
    acc = events(run / "tensorboard")
    assert {"fold0/train_loss", "cv/accuracy", "test/accuracy"} <= set(acc.Tags()["scalars"])
    oof = pd.read_csv(run / "oof.csv").dropna()                           # folds=1: holdout rows only
    wrong = (oof[[str(c) for c in range(10)]].to_numpy().argmax(1) != oof["target"]).any()
    assert set(acc.Tags()["images"]) == {"images/train_sample"} | ({"images/misclassified"} if wrong else set())
    sample = acc.Images("images/train_sample")[0]
    assert sample.width > 28 * 8 and sample.encoded_image_string[:4] == b"\x89PNG"
    assert (run / "plots" / "class_logloss.png").is_file()               # plots for image runs too


@pytest.mark.filterwarnings("ignore:Fixed parameter")      # the first trial replays the task defaults, outside tiny_space
@pytest.mark.slow
def test_tune_logs_each_trial_under_the_study(titanic_dir, runs_dir, monkeypatch):
    monkeypatch.setattr("tasks.titanic.search_space", tiny_space)
    run_ok(["tune", "titanic", "--trials", "2", "--folds", "2", "--set", "bags=1", "--set", "epochs=2", "--quiet", "--tensorboard",
            "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir)])
    log_dir = study_dir(runs_dir, "titanic", "titanic-tune") / "tensorboard"
    acc = events(log_dir)
    assert {"trial/value", "trial/best_value", "params/lr", "params/width"} <= set(acc.Tags()["scalars"])
    complete = [e.step for e in acc.Scalars("trial/value")]
    assert complete and set(complete) <= {0, 1}
    assert all((log_dir / f"trial{n:04d}").is_dir() for n in complete)    # one hparams entry per complete trial
