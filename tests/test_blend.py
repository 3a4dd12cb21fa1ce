"""`blend`: weights on the simplex fit to out-of-fold predictions, cross-fitted CV, one submission."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from cli import main
from pipelines.blend import fit_weights
from pipelines.metrics import kaggle_logloss


def test_weights_lie_on_the_simplex_and_favour_the_better_run():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    good = np.full((2000, 3), 0.1)
    good[np.arange(2000), y] = 0.8
    noise = rng.dirichlet(np.ones(3), 2000)
    w = fit_weights(np.stack([noise, good]), y)
    assert w.min() >= 0 and abs(w.sum() - 1) < 1e-9 and w[1] > 0.9
    # the blend is never worse than its best member (the best member alone is a point of the simplex)
    blended = np.tensordot(w, np.stack([noise, good]), axes=1)
    assert kaggle_logloss(y, blended) <= kaggle_logloss(y, good) + 1e-4     # softmax weights reach 1 only in the limit
    # binary: (runs, rows) of P(class 1)
    yb = (rng.random(500) < 0.4).astype(int)
    wb = fit_weights(np.stack([np.where(yb == 1, 0.7, 0.3), np.full(500, 0.5)]), yb)
    assert wb[0] > 0.9


@pytest.fixture
def two_runs(titanic_dir, runs_dir, tmp_path):
    # stopping=inner: one fit per fold (the default refit fits twice); blending reads only the runs' files
    fast = ["--folds", "2", "--epochs", "2", "--quiet", "--set", "bags=1", "--set", "stopping=inner", "--jobs", "1",
            "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir)]
    for seed in (0, 1):
        assert main(["train", "titanic", "--seed", str(seed), "--out", str(tmp_path / f"s{seed}.csv"), *fast]) == 0
    return sorted((runs_dir / "titanic").iterdir())


def test_blend_writes_a_checked_submission_and_a_cross_fitted_cv(two_runs, titanic_dir, runs_dir, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "blend.csv"
    assert main(["blend", "titanic", *(r.name for r in two_runs), "--runs-dir", str(runs_dir), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "blend CV accuracy" in text and f"submission: {out}" in text
    sub = pd.read_csv(out)
    test = pd.read_csv(titanic_dir / "test.csv")
    assert list(sub.columns) == ["PassengerId", "Survived"] and sub["PassengerId"].tolist() == test["PassengerId"].tolist()
    assert set(sub["Survived"]) <= {0, 1}
    # --top 2 picks the same two runs (the only ones), data folder taken from the runs
    out2 = tmp_path / "top.csv"
    assert main(["blend", "titanic", "--top", "2", "--runs-dir", str(runs_dir), "--out", str(out2)]) == 0
    assert out2.read_bytes() == out.read_bytes()


def test_a_run_blended_with_its_own_copy_scores_as_the_run(two_runs, runs_dir, tmp_path):
    """Two identical members: equal weights, and the cross-fitted blend's accuracy is the run's own
    (a temperature never moves a predicted class)."""
    from pipelines.blend import blend
    from pipelines.runs import read_json
    run = two_runs[0]
    twin = run.parent / (run.name + "-twin")
    shutil.copytree(run, twin)
    res = blend("titanic", [run.name, twin.name], runs_root=runs_dir, out=tmp_path / "b.csv")
    assert np.allclose(res.weights, 0.5)
    assert res.cv["accuracy"] == pytest.approx(read_json(run / "metrics.json")["cv"]["accuracy"])


BAD_BLEND = [
    (["blend", "titanic", "{0}"], "two or more runs"),
    (["blend", "titanic", "{0}", "{0}"], "the same run is given twice"),
    (["blend", "titanic", "{0}", "nosuch"], "run 'nosuch' not found"),
    (["blend", "titanic", "--top", "3"], "only 2 complete titanic run(s)"),
    (["blend", "titanic", "--top", "1"], "--top wants at least 2 runs"),
    (["blend", "titanic", "{0}", "--top", "2"], "run ids or --top N, not both"),
    (["blend", "diabetes", "{0}", "{1}"], "is a titanic run, not diabetes"),
]


# each case trains its two runs afresh: the quick check keeps the first
@pytest.mark.parametrize("args, message", BAD_BLEND[:1] + [pytest.param(*case, marks=pytest.mark.slow) for case in BAD_BLEND[1:]])
def test_blend_bad_input_is_one_line_and_writes_nothing(args, message, two_runs, runs_dir, tmp_path, capsys):
    names = [r.name for r in two_runs]
    if args[1] == "diabetes":           # a titanic run given by path to a diabetes blend
        names = [str(r) for r in two_runs]
    out = tmp_path / "never.csv"
    capsys.readouterr()
    code = main([a.format(*names) for a in args] + ["--runs-dir", str(runs_dir), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_blend_refuses_runs_trained_on_other_data(two_runs, runs_dir, tmp_path, capsys):
    oof = two_runs[1] / "oof.csv"
    df = pd.read_csv(oof)
    df["target"] = 1 - df["target"]
    df.to_csv(oof, index=False)
    assert main(["blend", "titanic", "--top", "2", "--runs-dir", str(runs_dir), "--out", str(tmp_path / "x.csv")]) == 2
    assert "other labels for the same ids" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()


def recorded_as(run, name: str, data: dict | None, cv: float | None = None):
    """A copy of `run` named `name` whose config.json records `data` (None: no record, as runs from
    before data fingerprints), and CV score `cv`: runs of other data without training them."""
    twin = run.parent / name
    shutil.copytree(run, twin)
    saved = json.loads((twin / "config.json").read_text())
    saved.pop("data")
    if data is not None:
        saved["data"] = data
    (twin / "config.json").write_text(json.dumps(saved))
    if cv is not None:
        metrics = json.loads((twin / "metrics.json").read_text())
        metrics["cv"]["accuracy"] = cv
        (twin / "metrics.json").write_text(json.dumps(metrics))
    return twin


OTHER = {"source": "/elsewhere/train.csv", "rows": 7, "fingerprint": "f" * 64}


def test_runs_of_other_data_neither_rank_nor_blend_together(two_runs, titanic_dir, runs_dir, tmp_path, capsys):
    """The issue's case: the newest run, best by CV, trained on other rows (2 classes of Otto's
    class-sorted first 3,001) used to be picked by --top and blended on the few ids both had."""
    other = recorded_as(two_runs[0], "99991231-000000-mlp-s9", OTHER, cv=1.0)
    capsys.readouterr()
    assert main(["runs", "titanic", "--runs-dir", str(runs_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "titanic, data ffffffff (7 rows, /elsewhere/train.csv):" and other.name in lines[2]
    fp = json.loads((two_runs[0] / "config.json").read_text())["data"]["fingerprint"]
    assert lines[3] == f"titanic, data {fp[:8]} (60 rows, {(titanic_dir / 'train.csv').resolve()}):"
    assert {lines[4].split()[1], lines[5].split()[1]} == {r.name for r in two_runs}
    assert re.search(r" \d{4}-\d\d-\d\d \d\d:\d\d$", lines[4])          # when it finished

    out = tmp_path / "blend.csv"
    never = ["--runs-dir", str(runs_dir), "--out", str(out)]
    assert main(["blend", "titanic", "--top", "2", *never]) == 2       # the newest run's data: one run of it
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only 1 complete titanic run(s) of the newest run's data ffffffff" in err, err
    assert "(2 other complete run(s) left out: other data, or none recorded)" in err
    assert main(["blend", "titanic", other.name, two_runs[0].name, *never]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: runs of different data do not blend: {other.name} trained on data ffffffff (7 rows, "
                   f"/elsewhere/train.csv), {two_runs[0].name} on data {fp[:8]} (60 rows, "
                   f"{(titanic_dir / 'train.csv').resolve()})\n")
    assert not out.exists()
    # --data-dir picks the runs trained on its train file
    assert main(["blend", "titanic", "--top", "2", "--data-dir", str(titanic_dir), *never]) == 0
    text = capsys.readouterr().out
    assert all(r.name in text for r in two_runs) and other.name not in text and out.is_file()


def test_a_run_recorded_before_data_fingerprints_does_not_blend_but_still_predicts(two_runs, titanic_dir, runs_dir,
                                                                                  tmp_path, capsys):
    old = recorded_as(two_runs[1], "00000101-000000-mlp-s9", None, cv=1.0)
    capsys.readouterr()
    assert main(["runs", "titanic", "--runs-dir", str(runs_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2] == "titanic, data not recorded (trained before runs recorded their data):"
    assert old.name in lines[-1]
    out = tmp_path / "blend.csv"
    assert main(["blend", "titanic", two_runs[0].name, old.name, "--runs-dir", str(runs_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: run {old.name} has no data fingerprint (trained before runs recorded their data), so blend "
                   "cannot tell which rows it trained on; retrain it to blend it\n")
    # --top leaves it out, best CV or not
    assert main(["blend", "titanic", "--top", "2", "--runs-dir", str(runs_dir), "--out", str(out)]) == 0
    assert old.name not in capsys.readouterr().out
    for cmd in (["predict", "titanic", "--run", old.name, "--out", str(tmp_path / "p.csv")],
                ["report", "titanic", "--run", old.name]):
        assert main([*cmd, "--runs-dir", str(runs_dir)]) == 0, cmd
