"""LightGBM through the learner seam (pipelines/learners_gbdt.py): train, predict from the run folder
alone, blend with an MLP run and report, for binary (Titanic-shaped and the bundled diabetes data),
multi-class and regression tasks; a history row per boosting round; save and load."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from cli import main
from core.errors import UsageError
from pipelines.learners import LEARNERS
from pipelines.learners_gbdt import MULTI_THREAD_ROWS, LightGBMLearner, round_patience, threads
from pipelines.predict import predict
from pipelines.report import report
from pipelines.train import train
from tasks.task import Encoded
from tiny_tasks import labels_submission, regression_frame, registered, table_task, write_competition

FAST = ["--folds", "2", "--quiet", "--jobs", "1", "--set", "bags=1"]


def _toy(problem: str, metric: str, n: int = 300, seed: int = 0):
    """A task stand-in, an encoded fold (two thirds train) and its targets, for the learner alone."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 3, n)
    x = torch.tensor(np.eye(3)[k] + rng.normal(scale=0.7, size=(n, 3)), dtype=torch.float32)
    y = {"multiclass": k, "binary": (k == 1).astype(int), "regression": np.exp(x[:, 0].numpy()) + k}[problem]
    classes = {"multiclass": (0, 1, 2), "binary": (0, 1), "regression": ()}[problem]
    task = SimpleNamespace(name="toy", problem=problem, binary=problem == "binary", classes=classes, monitor=None,
                           metric=metric, extra_metrics=(), steady_label_metrics=False)
    cut = 2 * n // 3
    return task, Encoded(None, x[:cut], x[cut:], None, {}, ["a", "b", "c"], None), y[:cut], y[cut:]


def _fit(task, enc, y_tr, y_va, rows=None, seed=0):
    cfg = SimpleNamespace(patience=2)
    return LEARNERS.create("lightgbm", task=task, cfg=cfg, device=torch.device("cpu"),
                           random_state=seed).fit(enc, y_tr, y_va, on_step=rows.append if rows is not None else None)


def test_lightgbm_is_registered_for_tables_and_patience_counts_rounds():
    assert LEARNERS.get("lightgbm") is LightGBMLearner and LEARNERS.tags["lightgbm"] == {"kind": "tabular"}
    assert LightGBMLearner.progress_unit == "round" and LightGBMLearner.suffix == ".txt"
    assert round_patience(2) == 50 and round_patience(8) == 80


def test_small_folds_grow_on_one_thread_large_ones_on_the_folds_share():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)          # what a fold worker on two cores gets (core/workers.py)
        assert threads(MULTI_THREAD_ROWS - 1) == 1 and threads(MULTI_THREAD_ROWS) == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("problem,metric,shape", [("binary", "roc_auc", (100,)), ("multiclass", "accuracy", (100, 3)),
                                                  ("regression", "rmse", (100,))])
def test_history_rows_are_rounds_and_save_load_predicts_the_same(problem, metric, shape, tmp_path):
    task, enc, y_tr, y_va = _toy(problem, metric)
    rows = []
    learner = _fit(task, enc, y_tr, y_va, rows)
    assert rows == learner.history_ and [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) == learner.best_step_ + 50 or len(rows) == LightGBMLearner.max_rounds   # stopped 50 rounds on
    assert {"epoch", "train_loss", "val_loss", "val_score", "lr", "seconds"} <= set(rows[0])
    assert learner.best_score_ == rows[learner.best_step_ - 1]["val_score"]
    if metric == "accuracy":         # a label metric: early stopping watches the loss, the metric beside it
        assert all(r["val_score"] == r["val_loss"] for r in rows) and "val_accuracy" in rows[0]
    p = learner.predict_proba(enc.x_val)
    assert p.shape == shape
    if problem == "multiclass":
        assert np.allclose(p.sum(1), 1) and (p.argmax(1) == y_va).mean() > 0.7
    path = tmp_path / "model0.txt"
    learner.save(path)
    assert (tmp_path / "target0.joblib").is_file() == (problem == "regression")
    again = LightGBMLearner.load(path, task, torch.device("cpu"))
    assert np.array_equal(again.predict_proba(enc.x_val), p)
    path.write_text("tree\nnot a model")
    with pytest.raises(UsageError, match=r"model0.txt: missing or corrupted \(LightGBMError\)"):
        LightGBMLearner.load(path, task, torch.device("cpu"))


def test_regression_fits_the_transformed_target_and_scores_in_its_units():
    task, enc, y_tr, y_va = _toy("regression", "rmsle")
    learner = _fit(task, enc, y_tr, y_va)
    pred = learner.predict_proba(enc.x_val)
    rmsle = np.sqrt(np.mean((np.log1p(y_va) - np.log1p(pred)) ** 2))
    assert learner.best_score_ == pytest.approx(rmsle) and learner.target_.metric == "rmsle"
    assert learner.history_[-1]["val_loss"] < 0.5        # l2 of the standardised log1p target


def test_the_seed_decides_the_trees():
    task, enc, y_tr, y_va = _toy("binary", "logloss")
    p = [_fit(task, enc, y_tr, y_va, seed=s).predict_proba(enc.x_val) for s in (1, 1, 2)]
    assert np.array_equal(p[0], p[1]) and not np.array_equal(p[0], p[2])


def test_a_missing_lightgbm_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)        # import lightgbm raises ImportError
    task, enc, y_tr, y_va = _toy("binary", "roc_auc", n=30)
    with pytest.raises(UsageError, match=r"needs the lightgbm package: pip install lightgbm"):
        _fit(task, enc, y_tr, y_va)


def test_a_library_that_does_not_load_is_one_line(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_openmp(name, *args, **kwargs):     # what macOS raises without libomp
        if name == "lightgbm":
            raise OSError("dlopen(lib_lightgbm.dylib): Library not loaded: libomp.dylib\nmore")
        return real(name, *args, **kwargs)
    monkeypatch.delitem(sys.modules, "lightgbm", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_openmp)
    with pytest.raises(UsageError, match=r"did not load \(dlopen.*libomp.dylib\); on macOS .*brew install libomp$"):
        LightGBMLearner.load(Path("model0.txt"), SimpleNamespace(problem="binary"), torch.device("cpu"))


@pytest.mark.slow     # several seconds; CI's whole suite runs it
def test_titanic_trains_predicts_blends_and_reports(titanic_dir, runs_dir, tmp_path, capsys):
    where = ["--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir)]
    out = tmp_path / "gbdt.csv"
    assert main(["train", "titanic", "--model", "lightgbm", "--out", str(out), *FAST, *where]) == 0
    run = next(d.name for d in (runs_dir / "titanic").iterdir() if "-lightgbm-" in d.name)
    fold = runs_dir / "titanic" / run / "fold0"
    assert {p.suffix for p in fold.glob("model*")} == {".txt"} and not list(fold.glob("*.pt"))
    history = pd.read_csv(runs_dir / "titanic" / run / "history.csv")
    assert (history.groupby("fold")["epoch"].max() >= 50).all() and history["lr"].eq(0.05).all()
    again = tmp_path / "predict.csv"
    assert main(["predict", "titanic", "--run", run, "--runs-dir", str(runs_dir), "--out", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()
    assert main(["train", "titanic", "--epochs", "2", "--out", str(tmp_path / "mlp.csv"), *FAST, *where]) == 0
    runs = sorted(d.name for d in (runs_dir / "titanic").iterdir())
    capsys.readouterr()
    assert main(["blend", "titanic", *runs, "--runs-dir", str(runs_dir), "--out", str(tmp_path / "blend.csv")]) == 0
    assert "blend CV accuracy" in capsys.readouterr().out
    assert main(["report", "titanic", "--run", run, "--runs-dir", str(runs_dir)]) == 0
    text = capsys.readouterr().out
    assert "model:       lightgbm" in text and "state:       complete" in text and "CV:" in text


@pytest.mark.slow
def test_diabetes_scores_as_trees_should(runs_dir, tmp_path):
    out = tmp_path / "diabetes.csv"
    assert main(["train", "diabetes", "--model", "lightgbm", "--out", str(out), "--runs-dir", str(runs_dir), *FAST]) == 0
    run = next((runs_dir / "diabetes").iterdir())
    metrics = pd.read_json(run / "metrics.json", typ="series")
    assert metrics["cv"]["roc_auc"] > 0.78       # gradient-boosted trees on the Pima data: about 0.82


@pytest.mark.slow     # several seconds; CI's whole suite runs it
def test_regression_and_multiclass_runs_predict_from_their_folders(tmp_path, runs_dir):
    frame, test = regression_frame(150), regression_frame(12, seed=1)
    reg = write_competition(tmp_path / "reg", frame, test)
    with registered(table_task("gbreg", metric="rmsle")) as task:
        res = train(task.config(model="lightgbm"), data_dir=reg, runs_root=runs_dir, out=tmp_path / "reg.csv")
        again = predict(res.run_dir.name, "gbreg", runs_root=runs_dir, out=tmp_path / "reg-again.csv")
        assert any(line.startswith("CV:") and "rmsle" in line for line in report(res.run_dir.name, "gbreg", runs_root=runs_dir))
    assert again.read_bytes() == (tmp_path / "reg.csv").read_bytes()
    assert res.scores["rmsle"] < 0.1 and {"target0.joblib", "model0.txt"} <= {p.name for p in (res.run_dir / "fold0").iterdir()}
    frame["y"] = pd.cut(frame["y"], 3, labels=False)
    multi = write_competition(tmp_path / "multi", frame, test)
    with registered(table_task("gbmulti", problem="multiclass", metric="logloss", classes=(0, 1, 2),
                               submission=labels_submission, extra_metrics=("accuracy",))) as task:
        res = train(task.config(model="lightgbm"), data_dir=multi, runs_root=runs_dir, out=tmp_path / "multi.csv")
        again = predict(res.run_dir.name, "gbmulti", runs_root=runs_dir, out=tmp_path / "multi-again.csv")
    assert again.read_bytes() == (tmp_path / "multi.csv").read_bytes()
    oof = pd.read_csv(res.run_dir / "oof.csv")
    assert list(oof.columns) == ["id", "target", "0", "1", "2"] and res.scores["accuracy"] > 0.6
