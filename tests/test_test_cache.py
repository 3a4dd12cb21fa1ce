"""A run keeps the test predictions its submission was written from (pipelines/predict.TEST_CACHE);
blend and stack read them for those same rows instead of rebuilding every fold model, and rebuild
for any other rows, or when the kept file is damaged; predict always rebuilds."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cli import main
from pipelines import predict
from pipelines.predict import TEST_CACHE, run_test_predictions

FAST = ["--folds", "2", "--quiet", "--jobs", "1", "--model", "logreg"]


def _run(titanic_dir, runs_dir, tmp_path, seed: int = 0):
    before = set((runs_dir / "titanic").iterdir()) if (runs_dir / "titanic").is_dir() else set()
    assert main(["train", "titanic", *FAST, "--seed", str(seed), "--data-dir", str(titanic_dir),
                 "--runs-dir", str(runs_dir), "--out", str(tmp_path / f"sub{seed}.csv")]) == 0
    [run] = set((runs_dir / "titanic").iterdir()) - before
    return run


def _spy(monkeypatch):
    calls = []
    real = predict.ensemble_proba

    def counted(*args, **kw):
        calls.append(1)
        return real(*args, **kw)
    monkeypatch.setattr(predict, "ensemble_proba", counted)
    return calls


def test_the_kept_predictions_are_the_rebuilt_ones_and_are_read_for_the_same_rows(titanic_dir, runs_dir, tmp_path,
                                                                                   monkeypatch):
    run = _run(titanic_dir, runs_dir, tmp_path)
    assert (run / TEST_CACHE).is_file()
    calls = _spy(monkeypatch)
    *_, ids, kept, _ = run_test_predictions(run.name, "titanic", titanic_dir, runs_root=runs_dir, cached=True)
    assert calls == []                                   # read, not rebuilt
    *_, ids2, rebuilt, _ = run_test_predictions(run.name, "titanic", titanic_dir, runs_root=runs_dir)
    assert calls == [1] and np.array_equal(ids, ids2) and np.allclose(kept, rebuilt, atol=1e-12)


def test_other_rows_or_a_damaged_file_rebuild(titanic_dir, runs_dir, tmp_path, monkeypatch):
    run = _run(titanic_dir, runs_dir, tmp_path)
    calls = _spy(monkeypatch)
    other = pd.read_csv(titanic_dir / "test.csv")
    other.loc[0, "Age"] = 80.0                           # one cell changed: not the rows the file was made for
    other.to_csv(tmp_path / "other.csv", index=False)
    run_test_predictions(run.name, "titanic", input_path=tmp_path / "other.csv", runs_root=runs_dir, cached=True)
    assert calls == [1]
    warned = []
    monkeypatch.setattr(predict.log, "warning", lambda msg, *args: warned.append(msg % args))
    (run / TEST_CACHE).write_bytes(b"not an npz")
    *_, proba, _ = run_test_predictions(run.name, "titanic", titanic_dir, runs_root=runs_dir, cached=True)
    assert calls == [1, 1] and proba.shape == (20,) and warned == [f"{run / TEST_CACHE}: unreadable; rebuilding "
                                                                     "the test predictions"]


def test_predict_rebuilds_and_blend_reads_them(titanic_dir, runs_dir, tmp_path, monkeypatch):
    run, second = _run(titanic_dir, runs_dir, tmp_path), _run(titanic_dir, runs_dir, tmp_path, seed=1)
    calls = _spy(monkeypatch)
    assert main(["predict", "titanic", "--run", run.name, "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir),
                 "--out", str(tmp_path / "again.csv")]) == 0
    assert calls == [1] and (tmp_path / "again.csv").read_bytes() == (tmp_path / "sub0.csv").read_bytes()
    assert main(["blend", "titanic", run.name, second.name, "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir),
                 "--out", str(tmp_path / "blend.csv")]) == 0
    assert calls == [1]
