"""Run plots and `report`: PNGs after train, the summary, rebuilt plots, unfinished and unknown runs."""
from __future__ import annotations

import json
import logging
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss
from typer.testing import CliRunner

from cli import app, main
from pipelines import plots, report
from tests.conftest import tiny_titanic

PNG = b"\x89PNG\r\n\x1a\n"
FAST = ["--folds", "2", "--epochs", "2", "--quiet", "--set", "bags=1", "--jobs", "1"]
pytestmark = pytest.mark.plots        # these tests look at what train draws
BINARY_PLOTS = ["loss.png", "val_score.png", "confusion.png", "calibration.png"]


def is_png(path) -> bool:
    return path.is_file() and path.stat().st_size > 100 and path.read_bytes()[:8] == PNG


def run_ok(args) -> str:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


@pytest.fixture(scope="module")
def titanic_run(tmp_path_factory):
    """One tiny finished Titanic run, shared: tests that change it work on a copy."""
    root = tmp_path_factory.mktemp("report")
    (root / "data").mkdir()
    tiny_titanic(60).to_csv(root / "data" / "train.csv", index=False)
    test = tiny_titanic(20, seed=1).drop(columns="Survived")
    test["PassengerId"] += 1000
    test.to_csv(root / "data" / "test.csv", index=False)
    out = run_ok(["train", "titanic", *FAST, "--data-dir", str(root / "data"), "--runs-dir", str(root / "runs"),
                  "--out", str(root / "sub.csv")])
    [run] = list((root / "runs" / "titanic").iterdir())
    assert f"plots: {run / 'plots'}" in out
    return run


def copy_run(run, tmp_path):
    dest = tmp_path / "runs" / "titanic" / run.name
    shutil.copytree(run, dest)
    return dest


def test_train_writes_plots_and_report_names_them(titanic_run):
    folder = titanic_run / "plots"
    assert sorted(p.name for p in folder.iterdir()) == sorted(BINARY_PLOTS)
    assert all(is_png(folder / name) for name in BINARY_PLOTS)
    assert not (titanic_run / "tensorboard").exists()                   # off unless asked for
    cv = json.loads((titanic_run / "metrics.json").read_text())["cv"]["accuracy"]
    out = run_ok(["report", "titanic", "--run", titanic_run.name, "--runs-dir", str(titanic_run.parent.parent)])
    assert f"accuracy {cv:.5f}" in out and "state:       complete" in out
    assert "fold 0:" in out and "fold 1:" in out and "best epoch" in out and "submission:" in out
    assert all(str(folder / name) in out for name in BINARY_PLOTS)


def test_report_rebuilds_missing_plots_and_finds_runs_without_a_task(titanic_run, tmp_path):
    run = copy_run(titanic_run, tmp_path)
    shutil.rmtree(run / "plots")
    out = run_ok(["report", "--run", str(run)])                           # a path, no task
    assert all(is_png(run / "plots" / name) and str(run / "plots" / name) in out for name in BINARY_PLOTS)
    for spec in ("latest", run.name):                                     # 'latest' and an id across tasks
        assert f"run:         {run.name}" in run_ok(["report", "--run", spec, "--runs-dir", str(tmp_path / "runs")])


@pytest.mark.parametrize("args", [["titanic", "--run", "nope"], ["--run", "nope"], ["otto", "--run", "latest"]])
def test_unknown_run_is_one_line_and_exit_2(args, runs_dir, capsys):
    assert main(["report", *args, "--runs-dir", str(runs_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err


def test_report_of_another_tasks_run_is_refused(titanic_run, capsys):
    assert main(["report", "otto", "--run", str(titanic_run)]) == 2
    assert "is a titanic run, not otto" in capsys.readouterr().err


def test_unfinished_run_says_its_state_and_what_exists(titanic_run, tmp_path):
    run = copy_run(titanic_run, tmp_path)
    fold0 = json.loads((run / "metrics.json").read_text())["folds"][0]
    for name in ("metrics.json", "history.csv", "oof.csv", "fold1/bag0.json", "fold1/scores.json", "fold1/val.npz"):
        (run / name).unlink()
    for model in (run / "fold1").glob("model0*"):        # the default pair's model0.json and its members' files
        model.unlink()
    shutil.rmtree(run / "plots")
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "interrupted"}))
    out = run_ok(["report", "titanic", "--run", run.name, "--runs-dir", str(tmp_path / "runs")])
    assert "state:       interrupted" in out and "1 of 2 fold model(s) finished" in out
    assert f"--resume {run.name}" in out and "none yet" not in out
    assert f"fold 0:      accuracy {fold0['accuracy']:.5f}" in out and "fold 1:" not in out     # the finished fold
    assert f"CV so far:   accuracy {fold0['accuracy']:.5f}  (partial: 1 of 2 folds, {fold0['n_val']} rows)" in out
    assert is_png(run / "plots" / "loss.png") and not (run / "plots" / "confusion.png").exists()  # finished bags only
    for name in ("fold0/scores.json", "fold0/val.npz"):       # no fold finished: says so
        (run / name).unlink()
    assert "metrics:     none yet: no fold finished" in run_ok(["report", "titanic", "--run", run.name,
                                                                 "--runs-dir", str(tmp_path / "runs")])


def test_multiclass_holdout_plots_drop_unscored_rows(tmp_path):
    """Otto-like: a confusion matrix and per-class logloss; folds=1 leaves NaN rows in oof.csv."""
    rng = np.random.default_rng(0)
    names = ["Class_1", "Class_2", "Class_3"]
    y = rng.integers(0, 3, 40)
    p = rng.dirichlet(np.ones(3), 40)
    p[:10] = np.nan                                                        # rows the holdout never scored
    oof = pd.DataFrame({"id": np.arange(1, 41), "target": y, **{n: p[:, i] for i, n in enumerate(names)}})
    oof.to_csv(tmp_path / "oof.csv", index=False)
    pd.DataFrame({"fold": 0, "bag": 0, "epoch": [1, 2, 3], "train_loss": [1.1, 0.9, 0.8], "val_loss": [1.0, 0.95, 0.97],
                  "val_score": [1.0, 0.95, 0.97], "lr": 1e-3, "seconds": [1, 2, 3]}).to_csv(tmp_path / "history.csv", index=False)
    paths = plots.make_plots(tmp_path)
    assert sorted(p.name for p in paths) == ["class_logloss.png", "confusion.png", "loss.png", "val_score.png"]
    assert all(is_png(path) for path in paths)
    ys, ps, got_names = plots.load_oof(tmp_path)
    assert len(ys) == 30 and got_names == names
    per_class = plots.class_logloss(ys, ps)                              # count-weighted mean = Kaggle's logloss
    assert np.average(per_class, weights=np.bincount(ys, minlength=3)) == pytest.approx(log_loss(ys, ps, labels=[0, 1, 2]))


@pytest.mark.slow      # a whole train run (1.5-1.7 s): the quick suite measured 92-96 s against its 90 s (2026-12-05)
def test_a_plotting_failure_warns_and_the_run_completes(titanic_dir, runs_dir, tmp_path, monkeypatch, caplog):
    def broken(run_dir):
        raise RuntimeError("no fonts")
    monkeypatch.setattr(plots, "make_plots", broken)
    with caplog.at_level(logging.WARNING, logger="pipelines.plots"):
        run_ok(["train", "titanic", *FAST, "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir),
                "--out", str(tmp_path / "sub.csv")])
    assert any("plots not written (RuntimeError: no fonts)" in r.getMessage() for r in caplog.records)
    [run] = list((runs_dir / "titanic").iterdir())
    assert json.loads((run / "status.json").read_text())["state"] == "complete" and (tmp_path / "sub.csv").is_file()


def test_report_of_an_interrupted_run_shows_the_scores_train_printed(titanic_dir, runs_dir, tmp_path):
    """Interrupted after fold 1 of 3: report lists folds 0 and 1 with the scores the fold lines
    showed, and their CV (the running CV the progress bar showed), labelled partial."""
    from core.config import TrainConfig
    from pipelines.train import RunInterrupted, train
    seen = []

    def stop_after_two(fold, row):
        seen.append(row)
        if len(seen) == 2:
            raise KeyboardInterrupt
    cfg = TrainConfig(task="titanic", folds=3, epochs=2, jobs=1, device="cpu")
    with pytest.raises(RunInterrupted):
        train(cfg, data_dir=titanic_dir, out=tmp_path / "s.csv", runs_root=runs_dir, on_fold=stop_after_two)
    [run] = list((runs_dir / "titanic").iterdir())
    out = "\n".join(report.report(run.name, "titanic", runs_root=runs_dir))
    for row in seen:
        assert f"fold {row['fold']}:      accuracy {row['accuracy']:.5f}" in out, out
    assert seen[1]["folds_done"] == 2
    assert f"CV so far:   accuracy {seen[1]['cv_so_far']['accuracy']:.5f}  (partial: 2 of 3 folds, 40 rows)" in out, out
    assert "fold 2:" not in out and "state:       interrupted" in out


@pytest.mark.slow      # a whole train run (1.5-1.7 s): the quick suite measured 92-96 s against its 90 s (2026-12-05)
def test_running_cv_on_the_fold_lines_ends_on_the_cv(titanic_dir, runs_dir, tmp_path, capsys):
    from cli import main
    assert main(["train", "titanic", "--folds", "3", "--epochs", "2", "--set", "bags=1", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(runs_dir), "--out", str(tmp_path / "s.csv")]) == 0
    out, err = capsys.readouterr()
    [run] = list((runs_dir / "titanic").iterdir())
    cv = json.loads((run / "metrics.json").read_text())["cv"]["accuracy"]
    assert f"CV of 3 folds so far: accuracy {cv:.4f}" in err and f"CV accuracy {cv:.5f}" in out, err
    assert "uncalibrated" not in err + out                       # titanic does not calibrate


def test_calibrated_runs_label_the_fold_scores_in_train_and_report(titanic_dir, runs_dir, tmp_path, capsys):
    """train's fold lines are the uncalibrated scores, report's the calibrated ones: each says so,
    and report repeats the ones train printed."""
    from cli import main
    assert main(["train", "titanic", "--folds", "2", "--epochs", "2", "--set", "calibrate=true", "--set", "bags=1",
                 "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir), "--out", str(tmp_path / "s.csv")]) == 0
    out, err = capsys.readouterr()
    [run] = list((runs_dir / "titanic").iterdir())
    m = json.loads((run / "metrics.json").read_text())
    raw = m["calibration"]["cv_uncalibrated"]["accuracy"]
    assert "(uncalibrated; the CV at the end is calibrated)" in err, err
    assert f"(calibrated; uncalibrated, as the fold lines: accuracy {raw:.5f})" in out, out
    printed = re.findall(r"fold (\d): accuracy ([\d.]+) \(uncalibrated", err)
    assert len(printed) == 2
    text = run_ok(["report", "titanic", "--run", run.name, "--runs-dir", str(runs_dir)])
    for fold, score in printed:
        f = m["folds"][int(fold)]
        assert re.search(rf"fold {fold}: +accuracy {f['accuracy']:.5f}  \(calibrated, temperature "
                         rf"{f['temperature']:.3f}; uncalibrated, as train printed: accuracy {score}\d\)", text), text


class Saved:
    """plots._save stand-in keeping the figure, to look at what was drawn."""

    def __init__(self):
        self.figs = {}

    def __call__(self, fig, path):
        self.figs[path.name] = fig
        return path


def test_val_score_plots_the_tasks_metric_not_the_early_stopping_loss(titanic_run, tmp_path, monkeypatch):
    history = pd.read_csv(titanic_run / "history.csv")
    assert {"val_score", "val_accuracy"} <= set(history.columns)     # titanic stops early on the loss
    assert np.allclose(history["val_score"], history["val_loss"], rtol=1e-4)
    saved = Saved()
    monkeypatch.setattr(plots, "_save", saved)
    plots.make_plots(titanic_run)
    ax = saved.figs["val_score.png"].axes[0]
    assert ax.get_ylabel() == "validation accuracy" and "best loss" in ax.get_title()
    drawn = np.concatenate([line.get_ydata() for line in ax.lines])
    assert set(np.round(drawn, 4)) <= set(np.round(history["val_accuracy"], 4))
    # a run from before val_<metric> was recorded: the loss, said to be the loss
    run = copy_run(titanic_run, tmp_path)
    history.drop(columns="val_accuracy").to_csv(run / "history.csv", index=False)
    plots.make_plots(run)
    ax = saved.figs["val_score.png"].axes[0]
    assert ax.get_ylabel() == "validation loss" and "no per-epoch accuracy" in ax.get_title()


def _history(folds: int, bags: int, epochs: int) -> pd.DataFrame:
    rows = [{"fold": f, "bag": b, "epoch": e, "train_loss": 1 / e + f, "val_loss": 1 / e + b, "val_score": 0.5 + e / 10,
             "lr": 1e-3, "seconds": e} for f in range(folds) for b in range(bags) for e in range(1, epochs + 1)]
    return pd.DataFrame(rows)


def test_loss_plot_one_colour_per_fold_one_style_per_bag_and_a_short_legend(tmp_path, monkeypatch):
    saved = Saved()
    monkeypatch.setattr(plots, "_save", saved)
    _history(5, 3, 4).to_csv(tmp_path / "history.csv", index=False)
    plots.make_plots(tmp_path)
    train_ax, val_ax = saved.figs["loss.png"].axes
    assert len(val_ax.lines) == 15 and len(train_ax.lines) == 15
    assert {(ln.get_color(), ln.get_linestyle()) for ln in val_ax.lines} == \
           {(f"C{f}", style) for f in range(5) for style in ("-", "--", ":")}
    labels = [t.get_text() for t in val_ax.get_legend().get_texts()]
    assert labels == [f"fold {f}" for f in range(5)] + [f"bag {b}" for b in range(3)]     # 8 entries, not 15
    ax = saved.figs["val_score.png"].axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels


def test_a_one_epoch_run_draws_markers(tmp_path, monkeypatch):
    saved = Saved()
    monkeypatch.setattr(plots, "_save", saved)
    _history(2, 1, 1).to_csv(tmp_path / "history.csv", index=False)
    paths = plots.make_plots(tmp_path)
    assert [p.name for p in paths] == ["loss.png", "val_score.png"]
    for name in ("loss.png", "val_score.png"):
        for ax in saved.figs[name].axes:
            curves = [ln for ln in ax.lines if len(ln.get_xdata()) == 1]
            assert len(curves) == 2 and all(ln.get_marker() == "o" for ln in curves)
            assert ax.get_xlim()[0] < 1 < ax.get_xlim()[1]
