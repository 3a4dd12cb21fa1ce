"""Honest out-of-fold predictions (TrainConfig.stopping='inner'): early stopping watches a share of
each fold's training rows, so the validation rows the OOF scores chose nothing; the split, the run
and the refusals. stopping='refit' (its own tests: tests/test_refit.py) shares the split.
stopping='fixed': no early stopping at all, every epoch of the schedule on every training row."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from cli import main
from core.errors import UsageError
from pipelines.folds import inner_split
from pipelines.train import train
from tiny_tasks import labels_submission, regression_frame, registered, table_task, write_competition


def test_the_inner_split_holds_out_a_stratified_share_of_the_folds_own_rows():
    y = np.array([0] * 60 + [1] * 40 + [0] * 10)           # the last 10 rows: --extra-train rows
    tr = np.arange(5, 110)
    fit, stop = inner_split(tr, y, own_rows=100, share=0.2, seed=3, stratify=True)
    assert np.array_equal(np.sort(np.concatenate([fit, stop])), tr) and not set(fit) & set(stop)
    assert len(stop) == 19 and stop.max() < 100 and set(range(100, 110)) <= set(fit)   # extra rows only fit
    assert abs(y[stop].mean() - y[tr[tr < 100]].mean()) < 0.05                    # stratified
    again = inner_split(tr, y, 100, 0.2, seed=3, stratify=True)
    assert all(np.array_equal(a, b) for a, b in zip((fit, stop), again))
    other = inner_split(tr, y, 100, 0.2, seed=4, stratify=True)
    assert not np.array_equal(stop, other[1])
    values = np.linspace(0, 1, 110)            # regression: shuffled, not stratified
    fit, stop = inner_split(tr, values, 100, 0.2, seed=3, stratify=False)
    assert len(stop) == 19 and stop.max() < 100


def test_stopping_inner_never_lets_a_validation_row_choose_the_epoch(tmp_path, runs_dir, monkeypatch):
    """Every row a learner's early stopping sees lies in its fold's training part; the OOF still
    covers every row, and `predict` from the run folder gives the submission train wrote."""
    from pipelines import cv
    seen = []
    real = cv._fit_bag

    def spy(inp, cfg, enc, k, b, fold_dir, on_epoch, fit, stop, *rest):
        tr, va = inp.folds[k]
        seen.append((set(stop) <= set(tr), not set(stop) & set(va), not set(fit) & set(stop), len(stop)))
        return real(inp, cfg, enc, k, b, fold_dir, on_epoch, fit, stop, *rest)
    monkeypatch.setattr(cv, "_fit_bag", spy)
    frame, test = regression_frame(120), regression_frame(10, seed=1)
    frame["y"] = (frame["y"] > frame["y"].median()).astype(int)
    folder = write_competition(tmp_path / "c", frame, test)
    with registered(table_task("honest", problem="binary", metric="logloss", classes=(0, 1),
                               submission=labels_submission)) as task:
        res = train(task.config(model="logreg", stopping="inner", inner=0.25), data_dir=folder,
                    runs_root=runs_dir, out=tmp_path / "a.csv")
        from pipelines.predict import predict
        again = predict(res.run_dir.name, "honest", runs_root=runs_dir, out=tmp_path / "b.csv")
    assert len(seen) == 3 and all(a and b and c for a, b, c, _ in seen) and all(n == 20 for *_, n in seen)
    oof = pd.read_csv(res.run_dir / "oof.csv")
    assert len(oof) == 120 and oof["proba"].notna().all()
    assert again.read_bytes() == (tmp_path / "a.csv").read_bytes()


@pytest.mark.parametrize("setting,message", [
    ("stopping=early", r"unknown stopping 'early'; choose val .*, inner .*, refit .* or fixed"),
    ("inner=0.6", r"inner must lie in \(0, 0.5\), got 0.6")])
def test_bad_stopping_settings_are_one_line(setting, message, capsys):
    assert main(["train", "titanic", "--set", setting, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and err.count("\n") == 1


@pytest.mark.parametrize("stopping", ["inner", "refit"])
def test_image_tasks_refuse_inner_stopping(stopping):
    from pipelines.inputs import check_row_options
    from tasks.task import TASKS
    with pytest.raises(UsageError, match=rf"stopping={stopping}: for tables only; mnist is an image task"):
        check_row_options(TASKS.create("mnist"), {"stopping": stopping})


@pytest.mark.slow     # 3 s: the quick suite stays under 90 s
def test_stopping_fixed_trains_every_epoch_on_every_training_row_and_no_label_scores_itself(tmp_path, runs_dir):
    """Each fold's net trains the whole `epochs` schedule on all its training rows and keeps the
    last weights; shifting fold 0's validation targets leaves their OOF predictions as they were
    (they chose nothing), where stopping on them ('val') moves them."""
    from test_refit import _competition

    def run(shift, how):
        folder, folds_file, va = _competition(tmp_path, shift)
        with registered(table_task("fixed", metric="rmse")) as task:
            res = train(task.config(model="mlp", epochs=4, batch_size=16, patience=1, stopping=how,
                                    folds_file=folds_file), data_dir=folder, runs_root=runs_dir,
                        out=tmp_path / f"{how}{shift}.csv")
        return res.run_dir, pd.read_csv(res.run_dir / "oof.csv")["prediction"].to_numpy()[va]
    run_dir, before = run(0.0, "fixed")
    history = pd.read_csv(run_dir / "history.csv")
    assert history.groupby("fold")["epoch"].apply(list).tolist() == [[1, 2, 3, 4]] * 3
    metrics = pd.read_json(run_dir / "metrics.json", typ="series")
    assert [f["best_epochs"] for f in metrics["folds"]] == [[4]] * 3 and [f["n_train"] for f in metrics["folds"]] == [100] * 3
    assert np.array_equal(before, run(5.0, "fixed")[1])
    assert not np.array_equal(run(0.0, "val")[1], run(5.0, "val")[1])


@pytest.mark.parametrize("model", ["lightgbm", "mlp+lightgbm"])
def test_stopping_fixed_is_refused_for_trees_in_one_line(model, capsys):
    assert main(["train", "titanic", "--model", model, "--set", "stopping=fixed", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "stopping=fixed trains a net's whole epochs schedule; lightgbm boosts until early stopping" in err
    assert err.count("\n") == 1
