"""`stack`: a meta-learner cross-fitted on the runs' own folds, a leaderboard, one submission, and
one line with exit code 2 (no file) for runs that cannot stack."""
from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cli import main
from pipelines.folds import make_folds
from pipelines.metrics import kaggle_logloss, rmse
from pipelines.stack import cross_fit
from pipelines.stack_meta import META, make_meta, meta_inputs
from tasks.task import TASKS
from tests.conftest import tiny_titanic

FAST = ["--folds", "2", "--quiet", "--jobs", "1", "--set", "bags=1"]


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    """Three tiny Titanic runs trained once for the module: logreg and lightgbm on the same folds
    (seed 0), and logreg on other folds (seed 1). Tests copy a run before damaging it."""
    root = tmp_path_factory.mktemp("stack")
    data = root / "data"
    data.mkdir()
    tiny_titanic(60).to_csv(data / "train.csv", index=False)
    test = tiny_titanic(20, seed=1).drop(columns="Survived")
    test["PassengerId"] += 1000
    test.to_csv(data / "test.csv", index=False)
    runs = root / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("pipelines.train.write_plots", lambda run_dir: [])
        for model, seed in (("logreg", 0), ("lightgbm", 0), ("logreg", 1)):
            args = ["train", "titanic", "--model", model, "--seed", str(seed), "--data-dir", str(data),
                    "--runs-dir", str(runs), "--out", str(root / f"{model}{seed}.csv"), *FAST]
            assert main(args) == 0
    found = sorted((runs / "titanic").iterdir())
    same = [r for r in found if r.name.endswith("-s0")]
    other = next(r for r in found if r.name.endswith("-s1"))
    return SimpleNamespace(data=data, runs=runs, same=same, other=other, root=root)


def test_stack_prints_a_leaderboard_and_writes_the_task_submission(stacked, tmp_path, capsys):
    out = tmp_path / "stack.csv"
    names = [r.name for r in stacked.same]
    capsys.readouterr()
    assert main(["stack", "titanic", *names, "--runs-dir", str(stacked.runs), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["accuracy", "logloss"]          # the task's metric, and what the stack fits
    board = [line.split() for line in lines[1:4]]
    assert [row[0] for row in board] == ["1", "2", "3"]
    assert {row[1] for row in board} == {*names, "stack"}      # 'stack (linear)'
    scores = [float(row[-2]) for row in board]
    assert scores == sorted(scores, reverse=True)              # accuracy: best first
    assert lines[4].startswith("stack CV accuracy ") and "cross-fitted on the runs' 2 folds (linear)" in lines[4]
    assert lines[5] == f"submission: {out}"
    sub = pd.read_csv(out)
    test = pd.read_csv(stacked.data / "test.csv")
    assert list(sub.columns) == ["PassengerId", "Survived"] and sub["PassengerId"].tolist() == test["PassengerId"].tolist()
    assert set(sub["Survived"]) <= {0, 1}
    # the other meta-learner, with the train file's raw numeric columns
    out2 = tmp_path / "lgb.csv"
    assert main(["stack", "titanic", *names, "--meta", "lightgbm", "--with-features", "--runs-dir", str(stacked.runs),
                 "--out", str(out2)]) == 0
    text = capsys.readouterr().out
    assert "stack (lightgbm, with features)" in text and "(lightgbm, with 5 raw column(s))" in text
    assert pd.read_csv(out2)["PassengerId"].tolist() == test["PassengerId"].tolist()


def test_the_meta_learner_scoring_fold_k_was_fit_on_the_other_folds_rows_only(stacked, tmp_path, monkeypatch):
    """Through the whole pipeline: every fit of the cross-fit saw exactly the rows outside the fold
    it then scored, the folds being the runs' own (rebuilt from seed 0 and 2 folds); the final fit,
    for the submission, saw every row."""
    import pipelines.stack as stack_module
    fits = []

    class Spy:
        def __init__(self, *args):
            self.inner = make_meta(*args)

        def fit(self, x, y):
            fits.append(x.copy())
            self.inner.fit(x, y)
            return self

        def predict(self, x):
            return self.inner.predict(x)
    monkeypatch.setattr(stack_module, "make_meta", Spy)
    res = stack_module.stack("titanic", [r.name for r in stacked.same], runs_root=stacked.runs, out=tmp_path / "s.csv")
    oofs = [pd.read_csv(r / "oof.csv") for r in stacked.same]
    y = oofs[0]["target"].to_numpy()
    x = meta_inputs(TASKS.create("titanic"), np.stack([o["proba"].to_numpy() for o in oofs]))
    folds = make_folds(y, 2, 0)
    assert len(fits) == 3
    for fitted, (train_rows, _) in zip(fits, folds):
        assert np.array_equal(fitted, x[train_rows])          # fold k's validation rows never in it
    assert np.array_equal(fits[2], x)
    assert res.folds == 2 and res.rows == 60


def _with_cv(run, root, cv):
    twin = _copy(run, root)
    metrics = json.loads((twin / "metrics.json").read_text())
    metrics["cv"]["accuracy"] = cv
    (twin / "metrics.json").write_text(json.dumps(metrics))
    return twin


def test_top_takes_the_best_runs_that_share_the_best_ones_folds(stacked, tmp_path, capsys):
    root, out = tmp_path / "runs", tmp_path / "top.csv"
    same = [_copy(r, root) for r in stacked.same]
    other = _with_cv(stacked.other, root, 0.01)                  # the worst: never picked
    assert main(["stack", "titanic", "--top", "2", "--runs-dir", str(root), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert all(r.name in text for r in same) and other.name not in text and out.is_file()
    out.unlink()
    shutil.rmtree(other)
    other = _with_cv(stacked.other, root, 0.99)                  # the best, alone on its folds
    assert main(["stack", "titanic", "--top", "2", "--runs-dir", str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--top 2: only 1 complete titanic run(s)" in err, err
    assert "(2 other complete run(s) left out: other data or folds, or none recorded)" in err and not out.exists()


class Memoriser:
    """A meta-learner that remembers every row it was fit on (1-nearest neighbour): perfect on those
    rows, chance on others. Scored on any row it saw, a stack's CV would say so."""

    def __init__(self, *args):
        pass

    def fit(self, x, y):
        self.x_, self.y_ = x, y
        return self

    def predict(self, x):
        nearest = ((x[:, None, :] - self.x_[None]) ** 2).sum(-1).argmin(1)
        return self.y_[nearest].astype(float)


def test_a_memorising_meta_learner_scores_as_noise_so_no_row_was_scored_by_a_model_that_saw_it(
        stacked, tmp_path, monkeypatch):
    """The leak the cross-fit prevents: the runs' OOF predictions replaced by noise, and a
    meta-learner that memorises its training rows (in-sample accuracy 1): the printed CV is near
    chance (60 rows: ~0.5), as no fold was scored by a model fit on it."""
    import pipelines.stack as stack_module
    rng = np.random.default_rng(0)
    copies = []
    for run in stacked.same:
        twin = _copy(run, tmp_path / "runs")
        oof = pd.read_csv(twin / "oof.csv")
        oof["proba"] = rng.random(len(oof)).round(6)
        oof.to_csv(twin / "oof.csv", index=False)
        copies.append(twin)
    monkeypatch.setattr(stack_module, "make_meta", Memoriser)
    res = stack_module.stack("titanic", [str(c) for c in copies], runs_root=tmp_path / "runs", out=tmp_path / "n.csv")
    oofs = [pd.read_csv(c / "oof.csv") for c in copies]
    x = meta_inputs(TASKS.create("titanic"), np.stack([o["proba"].to_numpy() for o in oofs]))
    y = oofs[0]["target"].to_numpy()
    assert (Memoriser().fit(x, y).predict(x) == y).all()      # in-sample: perfect
    assert res.cv["accuracy"] < 0.7


PROBLEMS = {
    "binary": (SimpleNamespace(problem="binary", classes=(0, 1), metric="logloss"), kaggle_logloss),
    "multiclass": (SimpleNamespace(problem="multiclass", classes=(0, 1, 2), metric="logloss"), kaggle_logloss),
    "regression": (SimpleNamespace(problem="regression", classes=(), metric="rmse"), rmse),
}


@pytest.mark.parametrize("meta", META)
@pytest.mark.parametrize("problem", PROBLEMS)
def test_every_meta_learner_stacks_every_problem(problem, meta):
    """A good run and a noise run on 300 rows in 3 folds: the cross-fitted stack scores near the good
    run and far from the noise, in the shape the OOF files hold (probabilities summing to 1)."""
    task, score = PROBLEMS[problem]
    rng = np.random.default_rng(1)
    n = 300
    if problem == "regression":
        y = rng.normal(10, 3, n)
        good, noise = y + rng.normal(0, 1, n), rng.normal(10, 3, n)
    else:
        k = len(task.classes)
        y = rng.integers(0, k, n)
        good = np.full((n, k), 0.2 / (k - 1))
        good[np.arange(n), y] = 0.8
        good[rng.random(n) < 0.2] = 1 / k          # some rows it cannot tell
        noise = rng.dirichlet(np.ones(k), n)
        if k == 2:
            good, noise = good[:, 1], noise[:, 1]
    fold_of = np.arange(n) % 3
    crossed = cross_fit(lambda: make_meta(meta, task), meta_inputs(task, np.stack([good, noise])), y, fold_of)
    assert crossed.shape == good.shape
    if problem == "multiclass":
        assert np.allclose(crossed.sum(1), 1)
    assert score(y, crossed) < score(y, noise) * 0.75
    assert score(y, crossed) < score(y, good) * 1.3


def _copy(run, root, name=None):
    twin = root / "titanic" / (name or run.name)
    shutil.copytree(run, twin)
    return twin


def _no_oof(run, root):
    twin = _copy(run, root)
    (twin / "oof.csv").unlink()
    return twin


def _no_models(run, root):
    twin = _copy(run, root)
    for f in twin.glob("fold0/model*"):
        f.unlink()
    return twin


def _edited(run, root, suffix: str, edit):
    """A copy of `run` whose config.json `edit` changed in place."""
    twin = _copy(run, root, run.name + suffix)
    saved = json.loads((twin / "config.json").read_text())
    edit(saved)
    (twin / "config.json").write_text(json.dumps(saved))
    return twin


def _other_data(run, root):
    return _edited(run, root, "-other", lambda saved: saved.update(
        data={"source": "/elsewhere/train.csv", "rows": 7, "fingerprint": "f" * 64}))


def _holdout(run, root):
    return _edited(run, root, "-holdout", lambda saved: saved["config"].update(folds=1))


def _seed_edited(run, root):
    """A run whose config says seed 1 while its folds (recorded labels per fold) were seed 0's."""
    return _edited(run, root, "-edited", lambda saved: saved["config"].update(seed=1))


BAD_STACK = [       # (the second run given: made from the first of the same-fold runs, or the other-fold run)
    ("one run", None, "stack wants two or more runs"),
    ("other folds", "other", "runs split into different folds do not stack"),
    ("other task", "task", "is a titanic run, not diabetes"),
    ("other rows", _other_data, "runs of different data do not stack"),
    ("no oof", _no_oof, "oof.csv: missing"),
    ("no test predictions", _no_models, "has no test predictions: fold0 lacks its encoder or model"),
    ("a holdout run", _holdout, "trained on one holdout (--folds 1)"),
    ("folds not as recorded", _seed_edited, "its folds cannot be rebuilt from its config"),
    ("weights with features", "weights", "--meta weights averages the runs' predictions; it takes no --with-features"),
]


@pytest.mark.parametrize("case, second, message", BAD_STACK, ids=[c[0] for c in BAD_STACK])
def test_a_stack_that_cannot_be_is_one_line_exit_2_and_no_file(case, second, message, stacked, tmp_path, capsys):
    first = stacked.same[0]
    task, flags = "titanic", []
    if second is None:
        given = [str(first)]
    elif second == "weights":
        given, flags = [str(first), str(stacked.same[1])], ["--meta", "weights", "--with-features"]
    elif second == "other":
        given = [str(first), str(stacked.other)]
    elif second == "task":
        given, task = [str(first), str(stacked.same[1])], "diabetes"
    else:
        given = [str(first), str(second(first, tmp_path / "runs"))]
    out = tmp_path / "never.csv"
    capsys.readouterr()
    code = main(["stack", task, *given, *flags, "--runs-dir", str(stacked.runs), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not out.exists() and not any(tmp_path.glob("*.csv"))


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["regression", "multiclass"])
def test_regression_and_multiclass_runs_stack_end_to_end(problem, tmp_path, runs_dir):
    """Two learners of a tiny competition on the same 3 folds, stacked by each meta-learner (with the
    raw columns x1, x2 where it takes them): a leaderboard of three and the task's own submission format."""
    from pipelines.stack import stack
    from pipelines.train import train
    from tests.tiny_tasks import labels_submission, registered, regression_frame, table_task, write_competition
    frame, test = regression_frame(150), regression_frame(12, seed=1)
    if problem == "regression":
        task, models = table_task("stackreg", metric="rmsle"), ("ridge", "lightgbm")
    else:
        frame["y"] = pd.cut(frame["y"], 3, labels=False)
        task = table_task("stackmulti", problem="multiclass", metric="logloss", classes=(0, 1, 2),
                          submission=labels_submission, extra_metrics=("accuracy",))
        models = ("logreg", "lightgbm")
    data = write_competition(tmp_path / "data", frame, test)
    with registered(task):
        names = [train(task.config(model=m), data_dir=data, runs_root=runs_dir, out=tmp_path / f"{m}.csv").run_dir.name
                 for m in models]
        for meta in META:
            features = meta != "weights"         # a convex combination of the runs takes no raw columns
            res = stack(task.name, names, meta=meta, with_features=features, runs_root=runs_dir,
                        out=tmp_path / f"{meta}.csv")
            assert res.folds == 3 and res.rows == 150 and res.features == (["x1", "x2"] if features else [])
            label = f"stack ({meta}, with features)" if features else f"stack ({meta})"
            assert [name for name, _ in res.leaderboard()].count(label) == 1
            assert len(res.leaderboard()) == 3 and list(res.cv) == [task.metric, *task.extra_metrics]
            sub = pd.read_csv(res.submission)
            assert list(sub.columns) == ["id", "y"] and sub["id"].tolist() == test["id"].tolist()
            if problem == "regression":
                assert (sub["y"] >= 0).all() and res.cv["rmsle"] < 0.1
            else:
                assert set(sub["y"]) <= {0, 1, 2} and res.cv["accuracy"] > 0.6


@pytest.mark.slow
def test_a_task_without_a_test_file_is_refused_before_the_cross_fit_unless_input_names_rows(tmp_path, runs_dir, capsys):
    import pipelines.stack as stack_module
    for model in ("logreg", "lightgbm"):
        assert main(["train", "diabetes", "--model", model, "--runs-dir", str(runs_dir), *FAST]) == 0
    names = [r.name for r in sorted((runs_dir / "diabetes").iterdir())]
    out = tmp_path / "never.csv"
    capsys.readouterr()
    assert main(["stack", "diabetes", *names, "--runs-dir", str(runs_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "diabetes has no test file; pass --input FILE" in err and not out.exists()
    rows = tmp_path / "patients.csv"
    pd.read_csv(stack_module.ingest.locate(TASKS.create("diabetes"), "train", None), header=None).iloc[:5, :8] \
        .to_csv(rows, header=False, index=False)
    assert main(["stack", "diabetes", *names, "--input", str(rows), "--runs-dir", str(runs_dir), "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 5


@pytest.mark.parametrize("metric", ["mae", "rmsle"])
def test_the_weights_meta_learner_fits_the_metric_blend_fits(metric):
    """Regression: the weights minimise the task's own metric on the combination in the target's
    units, as `blend` fits its weights (blend_loss), not a squared error of their own: on an MAE
    task a run with rare huge errors keeps more weight than squared error would give it."""
    from pipelines.blend import blend_loss, fit_weights
    from pipelines.stack_meta import WeightsMeta, _target
    from tiny_tasks import table_task
    task = table_task("w", metric=metric)
    rng = np.random.default_rng(0)
    y = rng.uniform(5, 50, 400)
    spiky = y + np.where(rng.random(400) < 0.05, 40.0, 0.0)        # exact but for 5% of rows far off
    noisy = y + rng.normal(0, 3, 400)
    x = np.column_stack([_target(task, np.maximum(spiky, 0)), _target(task, np.maximum(noisy, 0))])
    meta = WeightsMeta(task).fit(x, y)
    expected = fit_weights(np.stack([spiky, noisy]), y, blend_loss(task)) if metric == "mae" else None
    if expected is not None:
        assert np.allclose(meta.weights_, expected, atol=1e-3)
        squared = fit_weights(np.stack([spiky, noisy]), y, lambda t, p: float(np.mean((t - p) ** 2)))
        assert meta.weights_[0] > squared[0] + 0.1
    loss = blend_loss(task)
    assert loss(y, meta.predict(x)) <= min(loss(y, np.maximum(spiky, 0)), loss(y, np.maximum(noisy, 0))) * (1 + 1e-4)
