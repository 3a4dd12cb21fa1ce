"""Predicting from a run: rebuild its fold encoders and models from the run directory alone,
average their probabilities (regression: their values, each model's target transform undone by
its learner) over a test set, and write the submission file.

`predict()` and `predict_images()` are what the CLI calls; `write_submission` is also how a
training run (pipelines/train.py) writes its own submission, and blending reuses
`run_test_predictions`.

A run also keeps the test predictions its submission was written from (TEST_CACHE: the fold
models' average, with a digest of the test rows and ids they were made for). `blend` and `stack`
read them instead of rebuilding every fold model when they predict those same rows (on Otto,
rebuilding a LightGBM run's 5 x 144,368 predictions took minutes; the preset's stack has only
what is left of its budget). `predict` always rebuilds: it is how a run proves it rebuilds itself.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import torch

from core.errors import UsageError
from core.runtime import resolve_device
from data.fingerprint import fingerprint
from pipelines import TASKS
from pipelines.calibrate import apply_temperature
from pipelines.learners import LEARNERS
from pipelines import runs
from submissions.format import SUBMISSIONS_DIR, check_submission, in_sample_order, write_atomic

log = logging.getLogger(__name__)
TEST_CACHE = "test_proba.npz"     # in a run folder: the test predictions its submission holds


def predict(run: str, task_name: str, data_dir: Path | None = None, input_path: Path | None = None,
            out: Path | None = None, runs_root: Path | None = None, device: str = "auto") -> Path:
    """Rebuild every fold's encoder and models from the run directory and predict a test set."""
    task, run_dir, ids, proba, sample = run_test_predictions(run, task_name, data_dir, input_path, runs_root, device)
    return write_submission(task, ids, proba, sample, out or SUBMISSIONS_DIR / f"{task.name}-{run_dir.name}-predict.csv")


def run_test_predictions(run: str, task_name: str, data_dir: Path | None = None, input_path: Path | None = None,
                     runs_root: Path | None = None, device: str = "auto", cached: bool = False):
    """A run's fold models, rebuilt from its directory, on a test set: (task, run_dir, ids, proba,
    sample), the ids in test-file order and `sample` the competition's sample submission if found.
    `cached`: the run's saved test predictions instead, when they were made for these very rows."""
    task, run_dir, fold_dirs, saved = load_run(task_name, run, runs_root)
    dev = resolve_device(device)
    if data_dir is None and input_path is None:     # the folder the run trained from, as --resume uses it
        if saved.get("data_dir") and Path(saved["data_dir"]).is_dir():
            data_dir = Path(saved["data_dir"])
            log.info("%s: test data from the run's --data-dir %s", task.name, data_dir)
    data, ids, sample = task.load_test(data_dir, input_path, (runs_root or runs.RUNS_ROOT) / ".cache")
    proba = cached_test_proba(run_dir, data, ids) if cached else None
    if proba is None:
        proba = ensemble_proba(task, run_dir, fold_dirs, saved, data, dev)
    return task, run_dir, ids, proba, sample


def _test_digest(data, ids) -> str:
    """SHA-256 of test rows (a DataFrame or uint8 images) and their ids, in order."""
    h = hashlib.sha256(fingerprint(data, np.zeros(0)).encode())
    h.update(pd.util.hash_pandas_object(pd.Series(np.asarray(ids)).astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()


def save_test_proba(run_dir: Path, data, ids, proba: np.ndarray) -> None:
    """Keep a run's test predictions beside its models, keyed by the rows they were made for."""
    np.savez(run_dir / TEST_CACHE, proba=proba, digest=_test_digest(data, ids))


def cached_test_proba(run_dir: Path, data, ids) -> np.ndarray | None:
    """The run's saved test predictions if they were made for exactly these rows and ids, else None."""
    path = run_dir / TEST_CACHE
    if not path.is_file():
        return None
    try:
        with np.load(path) as saved:
            if str(saved["digest"]) != _test_digest(data, ids):
                return None
            return saved["proba"]
    except (OSError, ValueError, KeyError):        # damaged: rebuild, as a run without one
        log.warning("%s: unreadable; rebuilding the test predictions", path)
        return None


def load_run(task_name: str, run: str, runs_root: Path | None):
    task = TASKS.create(task_name)
    found = runs.load(task.name, run, runs_root=runs_root)
    run_dir, saved = found.path, found.saved      # the run's config, data folder and versions
    fold_dirs = sorted(run_dir.glob("fold*"), key=lambda p: int(p.name[4:]))
    if not fold_dirs:
        raise UsageError(f"{run_dir}: no fold directories; the run is incomplete")
    return task, run_dir, fold_dirs, saved


def ensemble_proba(task, run_dir: Path, fold_dirs: list[Path], saved: dict, data, device: torch.device) -> np.ndarray:
    """Average the probabilities of every fold's models, each fold with its own fitted encoder,
    each model loaded by the run's learner (pipelines/learners.py) and temperature-scaled first (the run's calibration.json, when it has one), at the
    precision the run trained at. `saved`: the run's config.json, as `load_run` read it.

    `data`: a DataFrame (tables) or uint8 array (N, C, H, W) (images)."""
    temperature, precision = _temperature(run_dir), _precision(saved)
    trained_by = saved.get("versions", {}).get("code")      # named if a changed model no longer fits the weights
    learner = LEARNERS.get(saved["config"]["model"])       # the model's kind of learner (pipelines/learners.py)
    total, n = None, 0
    data = task.test_input(data, device)        # images: one copy on the device for all folds
    for fold_dir in fold_dirs:
        try:
            encoder = joblib.load(fold_dir / "encoder.joblib")
        except Exception as e:
            raise UsageError(f"{fold_dir / 'encoder.joblib'}: missing or corrupted ({type(e).__name__})") from None
        columns = runs.read_json(fold_dir / "columns.json")
        x, batch_fn = learner.fold_input(task, encoder, columns, data, device, fold_dir)   # tables: through the fold's encoder
        for path in sorted(fold_dir.glob(f"model*{learner.suffix}")):
            model = learner.load(path, task, device, precision, trained_by)
            p = apply_temperature(model.predict_proba(x, batch_fn), temperature)
            total = p if total is None else total + p
            n += 1
    if n == 0:
        raise UsageError(f"{fold_dirs[0].parent}: no model weights; the run is incomplete")
    return total / n


def _temperature(run_dir: Path) -> float:
    path = run_dir / "calibration.json"
    return float(runs.read_json(path)["temperature"]) if path.is_file() else 1.0


def _precision(saved: dict) -> str:
    """The precision a run trained at; runs from before the option trained in float32 on the CPU."""
    return saved["config"].get("precision", "fp32")


def write_submission(task, ids, proba: np.ndarray, sample: pd.DataFrame | None, out: Path) -> Path:
    """The task's submission file for these probabilities, in the sample's row order, checked, written atomically."""
    sub = in_sample_order(task.submission(ids, proba, task), sample, task.id_col)
    check_submission(sub, sample, task.id_col)
    return write_atomic(sub, out)


def predict_images(run: str, task_name: str, files: list[Path], runs_root: Path | None = None,
                   device: str = "auto") -> list[tuple[Path, str, float]]:
    """Classify image files of any size and mode: converted to the task's channels and size."""
    task, run_dir, fold_dirs, saved = load_run(task_name, run, runs_root)
    files, x = task.read_images(files)       # a table task says it is not an image task
    proba = ensemble_proba(task, run_dir, fold_dirs, saved, x, resolve_device(device))
    return [(Path(f), str(task.classes[i]), float(p[i])) for f, p, i in zip(files, proba, proba.argmax(1))]
