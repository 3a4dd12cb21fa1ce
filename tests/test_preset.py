"""`train --preset` (pipelines/preset.py): the portfolio inside a time budget, planned from what this
preset measured; a learner that cannot finish is stopped and its run discarded; the best submission
is written; a budget no learner fits is one line with nothing left behind."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cli import main
from core.errors import UsageError
from pipelines import preset
from pipelines.preset import BudgetSpent, _Hooks, candidates, parse_duration, run_preset
from pipelines.train import TrainResult
from tasks.task import TASKS
from tiny_tasks import regression_frame, write_competition


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("30m", 1800), ("1h30m", 5400), ("45", 45), ("1.5m", 90)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0s", "soon", "-5m", ""])
def test_bad_durations_are_one_line(text):
    with pytest.raises(UsageError, match=r"--time-limit .*: give a duration such as 90s, 30m or 1h"):
        parse_duration(text)


def test_the_portfolio_skips_what_cannot_train_here_and_says_why(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "catboost", None)          # the optional library missing
    task = TASKS.create("titanic")
    keep, skipped = candidates(task, "best")
    names = [n for n, _ in keep]
    assert names[:4] == ["lightgbm", "extratrees", "mlp", "xgboost"] and "lightgbm #2" in names and "mlp #2" in names
    assert "randomforest" in names
    assert any(e.name == "catboost" and "pip install catboost" in e.note for e in skipped)
    assert [spec["model"] for _, spec in candidates(task, "fast")[0]] == ["logreg", "lightgbm"]
    with pytest.raises(UsageError, match=r"--preset quick: unknown; choose best or fast"):
        candidates(task, "quick")
    with pytest.raises(UsageError, match=r"--preset: for tables only; mnist is an image task"):
        candidates(TASKS.create("mnist"), "fast")


def test_the_tasks_own_default_learner_leads_the_portfolio():
    """Otto's default, TabM, trains first, so a short budget still gets it; the rest keep their order.
    Titanic's default (mlp+lightgbm) is not a portfolio entry: its order stays (the test above)."""
    names = [n for n, _ in candidates(TASKS.create("otto"), "best")[0]]
    assert names[:4] == ["tabm", "lightgbm", "extratrees", "mlp"] and names.count("tabm") == 1
    assert [n for n, _ in candidates(TASKS.create("diabetes"), "best")[0]][:2] == ["mlp", "lightgbm"]


def test_a_fold_projection_past_the_deadline_stops_the_learner(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(preset, "clock", clock)
    hooks = _Hooks(deadline=100.0, folds=5, start=0.0)
    clock.now = 15.0
    hooks.on_fold(0, {})                     # 15 s a fold: 75 s in all, inside 100
    hooks.on_epoch(1, 0, {})
    clock.now = 50.0
    with pytest.raises(BudgetSpent, match=r"2 of 5 folds in 50s project 125s, past the deadline"):
        hooks.on_fold(1, {})
    clock.now = 101.0
    with pytest.raises(BudgetSpent, match=r"deadline passed mid-fold"):
        hooks.on_epoch(2, 0, {})


def test_the_projection_counts_folds_trained_side_by_side(monkeypatch):
    """5 folds 2 at a time train in 3 rounds: the first fold done at 40 s projects 120 s, not 200 s;
    the third (the second round's) at 100 s projects 3 rounds of 50 s."""
    clock = Clock()
    monkeypatch.setattr(preset, "clock", clock)
    hooks = _Hooks(deadline=130.0, folds=5, start=0.0)
    clock.now = 40.0
    hooks.on_fold(0, {"jobs": 2})
    clock.now = 42.0
    hooks.on_fold(1, {"jobs": 2})
    clock.now = 100.0
    with pytest.raises(BudgetSpent, match=r"3 of 5 folds in 100s \(2 at a time\) project 150s, past the deadline"):
        hooks.on_fold(2, {"jobs": 2})


def test_the_budget_is_planned_from_what_this_preset_measured(monkeypatch, tmp_path):
    """Fake learners on a fake clock: lightgbm takes 30 s, the extra trees 10 s, the mlp 40 s,
    xgboost 5 s a fold (its first fold projects past the learners' deadline at 90 s: stopped, its
    run discarded); the second lightgbm is not started, as the first took 30 s and 5 s are left;
    the best run's submission is written, then the stack's, which scores better."""
    clock = Clock()
    monkeypatch.setattr(preset, "clock", clock)
    root = tmp_path / "runs"
    took = {"lightgbm": 30.0, "extratrees": 10.0, "mlp": 40.0}
    cv = {"lightgbm": 0.80, "extratrees": 0.78, "mlp": 0.82}
    started = []

    def fake_train(cfg, data_dir=None, out=None, runs_root=None, on_epoch=None, on_fold=None, tensorboard=False):
        # honest OOF, the shared folds; a one-fit learner (a forest) has no count to choose: every row
        assert cfg.stopping == ("fixed" if cfg.model in ("extratrees", "randomforest") else "inner") and cfg.folds == 5
        started.append(cfg.model)
        run = Path(runs_root) / "titanic" / f"run{len(started)}-{cfg.model}"
        run.mkdir(parents=True)
        if cfg.model not in took:
            clock.now += 5.0
            on_fold(0, {})                   # raises: 5 folds of 5 s from 80 s end past 90 s
        clock.now += took[cfg.model]
        sub = tmp_path / f"{run.name}.csv"
        sub.write_text(f"PassengerId,Survived\n1,{cfg.model}\n")
        (run / "metrics.json").write_text(f'{{"submission": "{sub}"}}')
        return TrainResult(run, {"accuracy": cv[cfg.model]}, sub, took[cfg.model])

    stacks = []

    def fake_stack(task, run_ids, meta="linear", submit=True, out=None, **kw):
        stacks.append((meta, submit))
        if submit:
            out.write_text(f"PassengerId,Survived\n1,stack-{meta}\n")
        return type("S", (), {"cv": {"accuracy": {"linear": 0.83, "weights": 0.84}[meta]},
                              "submission": out if submit else None})()
    monkeypatch.setattr("pipelines.train.train", fake_train)
    monkeypatch.setattr("pipelines.stack.stack", fake_stack)
    out = tmp_path / "best.csv"
    lines = []
    res = run_preset("titanic", "best", 100.0, {"folds": 5}, runs_root=root, out=out, say=lines.append)
    # the random forest, catboost and tabm (where installed) start, as no run of theirs was measured, and
    # are stopped the same way; the second lightgbm and mlp are not started: their kind's measured time does not fit
    assert started[:4] == ["lightgbm", "extratrees", "mlp", "xgboost"]
    assert set(started[4:]) <= {"randomforest", "catboost", "tabm"}
    assert not any("xgboost" in d.name for d in (root / "titanic").iterdir())       # discarded
    notes = {e.name: e.note for e in res.entries}
    assert notes["xgboost"].startswith("stopped: 1 of 5 folds in 5s project 25s")
    assert notes["lightgbm #2"].startswith("not started: its kind took 30s here")
    # both stacks scored on the OOF alone, then test predictions for the better one only
    assert stacks == [("weights", False), ("linear", False), ("weights", True)]
    assert res.best == "stack (weights)" and out.read_text().endswith("stack-weights\n")
    assert [n for n, _ in res.leaderboard()][:2] == ["stack (weights)", "stack (linear)"] and clock.now <= 100
    assert not list(tmp_path.glob("best-stack.csv"))


def test_a_budget_that_ends_during_the_stack_keeps_the_best_single_runs_file(monkeypatch, tmp_path):
    """The stack checks the budget between its meta-learner's fits: past it, the preset stops
    stacking and the best single run's submission, written before the stack, stands."""
    clock = Clock()
    monkeypatch.setattr(preset, "clock", clock)

    def fake_train(cfg, data_dir=None, out=None, runs_root=None, on_epoch=None, on_fold=None, tensorboard=False):
        run = Path(runs_root) / "titanic" / f"run-{cfg.model}"
        run.mkdir(parents=True)
        sub = tmp_path / f"{run.name}.csv"
        sub.write_text(f"PassengerId,Survived\n1,{cfg.model}\n")
        clock.now += 10.0
        return TrainResult(run, {"accuracy": {"logreg": 0.80, "lightgbm": 0.82}[cfg.model]}, sub, 10.0)

    def slow_stack(task, run_ids, meta="linear", check=None, **kw):
        clock.now = 61.0                     # the meta-learner's fits ran past the 60 s budget
        check()
        raise AssertionError("check() should have raised")
    monkeypatch.setattr("pipelines.train.train", fake_train)
    monkeypatch.setattr("pipelines.stack.stack", slow_stack)
    lines, out = [], tmp_path / "fast.csv"
    res = run_preset("titanic", "fast", 60.0, {}, runs_root=tmp_path / "runs", out=out, say=lines.append)
    assert res.best == "lightgbm" and res.stacks == {} and out.read_text().endswith("lightgbm\n")
    assert lines[-1] == "stack (weights) stopped: the budget ended"

    # the cheap stack finished and beat the runs, the other was stopped: the finished one is submitted
    def second_too_slow(task, run_ids, meta="linear", submit=True, check=None, out=None, **kw):
        if meta == "linear":
            clock.now = 1e6
            check()
        if submit:
            out.write_text("PassengerId,Survived\n1,stack\n")
        return type("S", (), {"cv": {"accuracy": 0.9}, "submission": out if submit else None})()
    monkeypatch.setattr("pipelines.stack.stack", second_too_slow)
    clock.now, lines = 0.0, []
    res = run_preset("titanic", "fast", 60.0, {}, runs_root=tmp_path / "runs2", out=out, say=lines.append)
    assert res.best == "stack (weights)" and list(res.stacks) == ["weights"] and out.read_text().endswith("stack\n")
    assert "stack (linear) stopped: the budget ended" in lines


def test_a_budget_no_learner_fits_is_one_line_and_leaves_nothing(tmp_path, capsys):
    runs_dir, out = tmp_path / "runs", tmp_path / "sub.csv"
    assert main(["train", "titanic", "--preset", "fast", "--time-limit", "0.001s", "--folds", "2", "--jobs", "1",
                 "--runs-dir", str(runs_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no learner of preset fast finished inside it" in err and err.count("\n") == 1
    assert not out.exists() and not runs_dir.exists()


@pytest.mark.parametrize("argv,message", [
    (["--preset", "best", "--model", "mlp"], r"--preset picks each learner's settings; drop --model"),
    (["--time-limit", "5m"], r"--time-limit is the budget of a --preset"),
    (["--preset", "slow"], r"--preset slow: unknown; choose best or fast")])
def test_preset_options_that_do_not_combine_are_one_line(argv, message, capsys, tmp_path):
    import re
    assert main(["train", "titanic", *argv, "--runs-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and err.count("\n") == 1 and not (tmp_path / "r").exists()


@pytest.mark.slow
def test_the_fast_preset_trains_stacks_and_writes_the_best_submission(tmp_path, capsys, monkeypatch):
    # each learner is a normal run and writes its own submission; here, not into the repo's submissions/
    monkeypatch.setattr("pipelines.train.SUBMISSIONS_DIR", tmp_path / "submissions")
    frame, test = regression_frame(200), regression_frame(20, seed=1)
    frame["y"] = (frame["y"] > frame["y"].median()).astype(int)
    folder = write_competition(tmp_path / "c", frame, test)
    (folder / "sample.csv").rename(folder / "sample_submission.csv")        # an inferred competition
    out = tmp_path / "preset.csv"
    assert main(["train", "presetbin", "--preset", "fast", "--time-limit", "10m", "--data-dir", str(folder),
                 "--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--jobs", "1", "--folds", "3"]) == 0
    text = capsys.readouterr().out
    assert "leaderboard (CV accuracy)" in text and "stack (linear)" in text and "logreg (" in text
    sub = pd.read_csv(out)
    assert len(sub) == 20 and set(sub["y"]) <= {0, 1}
    assert len([d for d in (tmp_path / "runs" / "presetbin").iterdir() if d.is_dir()]) == 2
    assert len(list((tmp_path / "submissions").glob("presetbin-*.csv"))) == 2


def test_a_task_without_test_rows_gets_runs_stack_cv_and_no_file(monkeypatch, tmp_path):
    root = tmp_path / "runs"
    stacked = {}

    def no_test(cfg, data_dir=None, out=None, runs_root=None, on_epoch=None, on_fold=None, tensorboard=False):
        run = Path(runs_root) / "diabetes" / f"run-{cfg.model}"
        run.mkdir(parents=True)
        return TrainResult(run, {"accuracy": {"logreg": 0.70, "lightgbm": 0.72}[cfg.model]}, None, 1.0)

    def cv_only(task, run_ids, meta="linear", submit=True, **kw):
        stacked.update(runs=run_ids, submit=submit)
        return type("St", (), {"cv": {"accuracy": 0.75}, "submission": None})()
    monkeypatch.setattr("pipelines.train.train", no_test)
    monkeypatch.setattr("pipelines.stack.stack", cv_only)
    res = run_preset("diabetes", "fast", 60.0, {}, runs_root=root, out=tmp_path / "d.csv", say=lambda line: None)
    assert stacked == {"runs": ["run-logreg", "run-lightgbm"], "submit": False}
    assert res.submission is None and res.best == "stack (weights)" and res.runs == ["run-logreg", "run-lightgbm"]
    assert [name for name, _ in res.leaderboard()] == ["stack (weights)", "stack (linear)", "lightgbm (run-lightgbm)",
                                                      "logreg (run-logreg)"]
    assert not (tmp_path / "d.csv").exists()


@pytest.mark.slow
def test_the_fast_preset_on_diabetes_prints_its_leaderboard_and_how_to_predict(tmp_path, capsys):
    runs_dir = tmp_path / "runs"
    assert main(["train", "diabetes", "--preset", "fast", "--time-limit", "5m", "--runs-dir", str(runs_dir),
                 "--out", str(tmp_path / "d.csv"), "--jobs", "1", "--folds", "3"]) == 0
    text = capsys.readouterr().out
    assert "leaderboard (CV accuracy)" in text and "stack (linear)" in text and "lightgbm (" in text
    assert "diabetes has no test rows, so no submission" in text and "--input FILE" in text
    assert not (tmp_path / "d.csv").exists() and len(list((runs_dir / "diabetes").iterdir())) == 2


def test_tune_takes_no_preset(capsys):
    assert main(["tune", "titanic", "--preset", "best"]) == 2
    assert "No such option: --preset" in capsys.readouterr().err


def test_each_finished_folds_row_says_how_many_folds_train_at_once(tmp_path, runs_dir):
    from pipelines.train import train
    from tiny_tasks import labels_submission, regression_frame, registered, table_task, write_competition
    frame, test = regression_frame(90), regression_frame(6, seed=1)
    frame["y"] = (frame["y"] > frame["y"].median()).astype(int)
    folder = write_competition(tmp_path / "c", frame, test)
    rows = []
    with registered(table_task("jobs", problem="binary", metric="logloss", classes=(0, 1),
                               submission=labels_submission)) as task:
        train(task.config(model="logreg", jobs=1), data_dir=folder, runs_root=runs_dir, out=tmp_path / "a.csv",
              on_fold=lambda k, row: rows.append(row["jobs"]))
    assert rows == [1, 1, 1]


def test_each_preset_learner_stops_honestly_in_one_fit():
    """'inner' rows choose a tree's rounds and a net's epochs; a net trains its whole schedule where
    the task's defaults fix the count (stopping=fixed), and a one-fit learner on every training row."""
    import dataclasses

    from tiny_tasks import table_task
    plain = table_task("plain")
    fixed = dataclasses.replace(plain, defaults={**plain.defaults, "stopping": "fixed"})
    models = ("mlp", "tabm", "lightgbm", "mlp+lightgbm", "logreg")
    assert [preset.stopping(plain, m) for m in models] == ["inner", "inner", "inner", "inner", "fixed"]
    assert [preset.stopping(fixed, m) for m in models] == ["fixed", "fixed", "inner", "inner", "fixed"]
    # a recipe fixes its own model's count only: Otto's TabM, not the MLP it keeps for --model mlp
    otto = TASKS.create("otto")
    assert [preset.stopping(otto, m) for m in ("tabm", "mlp", "xgboost")] == ["fixed", "inner", "inner"]
