"""Blend finished runs of one task, as Kaggle competitors blend models: weights on the probability
simplex fit to the runs' out-of-fold predictions, the test predictions rebuilt from each run
directory and averaged with those weights.

    python cli.py blend otto RUN_A RUN_B RUN_C --data-dir DIR
    python cli.py blend otto --top 3 --data-dir DIR      # the 3 best complete runs by CV trained on DIR's data
    python cli.py blend otto --top 3                     # ... of the data the newest run trained on

Only runs of the same training rows blend (their `data` fingerprint, data/fingerprint.py): `--top`
ranks the runs of --data-dir's train data, or without --data-dir those of the newest run's data;
run ids of different data, or a run recorded before runs had a fingerprint, are an error. With run
ids, --data-dir only says where the test file is.

Every OOF row was predicted by a model that never trained on it, whatever each run's folds were,
so runs with different seeds, models or fold counts blend alike. Weights are chosen to minimise
the log loss (smooth, and what a probability blend should get right; Titanic's accuracy follows
from it); then one temperature rescales the weighted average, which is less confident than its
members (pipelines/calibrate.py; it moves log loss only, never a predicted class). The blend's
CV score is cross-fitted: each of 5 slices of the rows is scored with weights and temperature
fit on the other four, so the figure never used a row's own label. The submission uses the
weights and temperature fit on every row.

Regression blends predicted values: the weights minimise the task's own metric (its negative
where higher is better, r2), there is no temperature, and the slices are plain KFold's.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.model_selection import KFold, StratifiedKFold

from core.errors import UsageError
from data import fingerprint
from pipelines import TASKS, listing, runs
from pipelines.calibrate import apply_temperature, fit_temperature
from pipelines.metrics import METRICS, kaggle_logloss
from pipelines.predict import SUBMISSIONS_DIR, run_test_predictions, write_submission
from pipelines.proba import cv_scores
from submissions.format import check_writable

log = logging.getLogger(__name__)


@dataclass
class BlendResult:
    task: str
    runs: list[str]
    run_cv: list[dict]             # each run's own CV scores on the blended rows
    weights: np.ndarray            # fit on every OOF row, used for the submission
    temperature: float             # of the weighted average, fit on every OOF row (pipelines/calibrate.py)
    cv: dict                       # the blend's scores, weights cross-fitted
    rows: int
    submission: Path


def read_oof(task, run_dir: Path) -> pd.DataFrame:
    """A run's oof.csv: id, target, then one probability column (binary), one per class, or the
    predicted value (regression); rows without a prediction (a holdout run's training rows) dropped."""
    path = run_dir / "oof.csv"
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise UsageError(f"{path}: missing; the run is incomplete") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: unreadable ({type(e).__name__})") from None
    want = ["id", "target"] + prediction_columns(task)
    if list(df.columns) != want:
        raise UsageError(f"{path}: columns {list(df.columns)}, want {want}")
    return df[df[want[2:]].notna().all(axis=1)]


def prediction_columns(task) -> list[str]:
    """oof.csv's columns after id and target (pipelines/cv.py writes them)."""
    if task.problem == "regression":
        return ["prediction"]
    return ["proba"] if task.binary else [str(c) for c in task.classes]


def blend_loss(task):
    """What the weights minimise: the log loss of probabilities (smooth, and what a probability
    blend should get right), or for regression the task's metric, signed so lower is better."""
    if task.problem != "regression":
        return kaggle_logloss
    metric = METRICS[task.metric]
    return (lambda y, p: -metric.fn(y, p)) if metric.maximize else metric.fn


def check_same_data(dirs: list[Path], verb: str = "blend") -> None:
    """Every run trained on the same rows, by the fingerprint each recorded; a run without one
    cannot be checked, so it does not blend (out-of-fold ids and labels that happen to agree on a
    few rows say little: 3,000 random Otto rows and the first 3,001 share 152). `verb`: the
    command the lines name (blend, stack)."""
    records = [listing.data_of(d) for d in dirs]
    for d, rec in zip(dirs, records):
        if rec is None:
            raise UsageError(f"run {d.name} has no data fingerprint (trained before runs recorded their data), "
                             f"so {verb} cannot tell which rows it trained on; retrain it to {verb} it")
    for d, rec in zip(dirs[1:], records[1:]):
        if rec["fingerprint"] != records[0]["fingerprint"]:
            raise UsageError(f"runs of different data do not {verb}: {dirs[0].name} trained on "
                             f"{fingerprint.describe(records[0])}, {d.name} on {fingerprint.describe(rec)}")


def select_runs(task, run_ids: list[str], top: int | None, data_dir: Path | None, root: Path,
                verb: str = "blend", same: Callable[[Path], object] | None = None) -> list[Path]:
    """The run folders `run_ids` name, or the `top` best complete runs by CV of one data (--data-dir's
    train file, else the newest run's), checked: two or more, none twice, all of the same rows.
    `same`: a key that --top's runs must share with the best of them (stack: the fold split)."""
    if top is not None:
        if run_ids:
            raise UsageError("give run ids or --top N, not both")
        if top < 2:
            raise UsageError(f"--top wants at least 2 runs, got {top}")
        if data_dir is not None:
            want, whose = fingerprint.of_folder(task, data_dir, root / ".cache"), "--data-dir's"
        else:
            want, whose = listing.newest_data(root, task.name), "the newest run's"
        ranked = listing.ranked_runs(root, task.name, want["fingerprint"]) if want else []
        if same is not None and ranked:
            ranked = [r for r in ranked if same(r) == same(ranked[0])]
        others = len(runs.list_runs(root, task.name)) - len(ranked)
        other = "other data or folds" if same is not None else "other data"
        apart = f" ({others} other complete run(s) left out: {other}, or none recorded)" if others else ""
        if len(ranked) < top:
            of = f" of {whose} {fingerprint.describe(want)}" if want else " with recorded data"
            raise UsageError(f"--top {top}: only {len(ranked)} complete {task.name} run(s){of} under "
                             f"{root / task.name}{apart}; `runs {task.name}` lists each run's data")
        if others:
            log.info("%s: --top %d ranks the runs of %s %s only%s", verb, top, whose, fingerprint.describe(want), apart)
        run_ids = [str(r) for r in ranked[:top]]
    if len(run_ids) < 2:
        raise UsageError(f"{verb} wants two or more runs (run ids, paths, or --top N)")
    dirs = [runs.load(task.name, r, require="complete", runs_root=root).path for r in run_ids]
    if len(set(dirs)) < len(dirs):
        raise UsageError("the same run is given twice")
    check_same_data(dirs, verb)
    return dirs


def common_oof(task, dirs: list[Path]) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """(ids, labels, predictions) of the OOF rows every run predicted, in the first run's row order;
    predictions (runs, rows) or (runs, rows, classes). The same id must carry the same label in every run."""
    oofs = [read_oof(task, d).set_index("id") for d in dirs]
    common = oofs[0].index
    for o in oofs[1:]:
        common = common.intersection(o.index)
    if len(common) == 0:
        raise UsageError("the runs have no out-of-fold rows in common (holdout runs with different holdouts?)")
    y = oofs[0].loc[common, "target"].to_numpy()
    for d, o in zip(dirs[1:], oofs[1:]):
        if not np.array_equal(o.loc[common, "target"].to_numpy(), y):
            raise UsageError(f"run {d.name} has other labels for the same ids than {dirs[0].name}: "
                             "the runs trained on different data")
    cols = prediction_columns(task)
    probas = np.stack([o.loc[common, cols].to_numpy(np.float64) for o in oofs])
    return common, y, probas[..., 0] if len(cols) == 1 else probas


def test_predictions(task, dirs: list[Path], data_dir: Path | None, input_path: Path | None,
                     runs_root: Path | None, device: str) -> tuple[np.ndarray, list[np.ndarray], pd.DataFrame | None]:
    """(test ids, each run's fold-averaged test predictions, the sample submission): every run's fold
    models rebuilt from its folder and run on one test set, which must give the same ids for each
    (or the predictions the run kept, where they were made for these rows: pipelines/predict.py)."""
    ids0, sample0, out = None, None, []
    for d in dirs:
        _, _, ids, proba, sample = run_test_predictions(str(d), task.name, data_dir, input_path, runs_root, device,
                                                        cached=True)
        if ids0 is None:
            ids0, sample0 = ids, sample
        elif not np.array_equal(ids, ids0):
            raise UsageError(f"run {d.name} predicts other test ids than {dirs[0].name}")
        out.append(proba)
    return ids0, out, sample0


def submission_path(task, dirs: list[Path], kind: str) -> Path:
    """submissions/<task>-<kind>-<run>+<run>....csv, shortened when the names run long."""
    out = SUBMISSIONS_DIR / f"{task.name}-{kind}-{'+'.join(d.name for d in dirs)}.csv"
    return out.with_name(f"{task.name}-{kind}-{len(dirs)}-runs-{dirs[0].name}.csv") if len(out.name) > 200 else out


def fit_weights(probas: np.ndarray, y: np.ndarray, loss=kaggle_logloss) -> np.ndarray:
    """Weights >= 0 summing to 1 (a softmax of free parameters) that minimise the blend's `loss`
    (y, blended) -> float, by default the log loss. `probas`: (runs, rows) or (runs, rows, classes)."""
    k = len(probas)
    if k == 1:
        return np.ones(1)

    def objective(z):
        w = np.exp(z - z.max())
        w /= w.sum()
        return loss(y, np.tensordot(w, probas, axes=1))
    res = minimize(objective, np.zeros(k), method="L-BFGS-B")
    w = np.exp(res.x - res.x.max())
    return w / w.sum()


def blend(task_name: str, run_ids: list[str], data_dir: Path | None = None, out: Path | None = None,
          runs_root: Path | None = None, device: str = "auto", top: int | None = None,
          input_path: Path | None = None, seed: int = 0) -> BlendResult:
    """Blend `run_ids` (or the `top` best runs) of a task; the submission predicts the task's test
    file (or `input_path`, as `predict --input`). `seed` splits the rows that cross-fit the weights."""
    task = TASKS.create(task_name)
    root = runs_root or runs.RUNS_ROOT
    if out is not None:
        check_writable(out)
    dirs = select_runs(task, run_ids, top, data_dir, root)
    _, y, probas = common_oof(task, dirs)

    regression, loss = task.problem == "regression", blend_loss(task)
    # regression: no probabilities to temperature-scale (T = 1 leaves a prediction as it is)
    temperature_of = (lambda p, y: 1.0) if regression else fit_temperature       # noqa: E731
    if regression:
        if len(y) < 2:
            raise UsageError(f"too few blended rows ({len(y)}) to cross-fit the weights")
        splitter = KFold(min(5, len(y)), shuffle=True, random_state=seed)
    else:
        n_splits = min(5, int(np.bincount(y).min()))
        if n_splits < 2:
            raise UsageError(f"too few blended rows of a class ({int(np.bincount(y).min())}) to cross-fit the weights")
        splitter = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    weights = fit_weights(probas, y, loss)
    temperature = temperature_of(np.tensordot(weights, probas, axes=1), y)
    crossed = np.zeros_like(probas[0])
    for fit_rows, score_rows in splitter.split(y, y):
        w = fit_weights(probas[:, fit_rows], y[fit_rows], loss)
        t = temperature_of(np.tensordot(w, probas[:, fit_rows], axes=1), y[fit_rows])
        crossed[score_rows] = apply_temperature(np.tensordot(w, probas[:, score_rows], axes=1), t)
    run_cv = [cv_scores(task, y, p) for p in probas]

    # test predictions: each run's fold models on the same test set, weighted
    ids0, tests, sample0 = test_predictions(task, dirs, data_dir, input_path, runs_root, device)
    total = np.tensordot(weights, np.stack(tests), axes=1)
    out = out or submission_path(task, dirs, "blend")
    path = write_submission(task, ids0, apply_temperature(total, temperature), sample0, out)
    return BlendResult(task.name, [d.name for d in dirs], run_cv, weights, temperature,
                       cv_scores(task, y, crossed), len(y), path)
