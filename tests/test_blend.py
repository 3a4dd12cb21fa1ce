"""`blend`: weights on the simplex fit to out-of-fold predictions, cross-fitted CV, one submission."""
from __future__ import annotations

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
    fast = ["--folds", "2", "--epochs", "2", "--quiet", "--set", "bags=1", "--data-dir", str(titanic_dir),
            "--runs-dir", str(runs_dir)]
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


@pytest.mark.parametrize("args, message", [
    (["blend", "titanic", "{0}"], "two or more runs"),
    (["blend", "titanic", "{0}", "{0}"], "the same run is given twice"),
    (["blend", "titanic", "{0}", "nosuch"], "run 'nosuch' not found"),
    (["blend", "titanic", "--top", "3"], "only 2 complete titanic run(s)"),
    (["blend", "titanic", "--top", "1"], "--top wants at least 2 runs"),
    (["blend", "titanic", "{0}", "--top", "2"], "run ids or --top N, not both"),
    (["blend", "diabetes", "{0}", "{1}"], "is a titanic run, not diabetes"),
])
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
