"""Stack finished runs of one task: a level-2 learner (pipelines/stack_meta.py) fit on the runs'
out-of-fold predictions, as Kaggle's winning ensembles are built; `blend` stays the simple
weighted average.

    python cli.py stack titanic RUN_A RUN_B                  # logistic regression on the runs' OOF
    python cli.py stack otto --top 3 --meta lightgbm          # the 3 best runs of the best one's folds
    python cli.py stack titanic RUN_A RUN_B --with-features   # ... and the raw numeric columns

Cross-fitted on the runs' own folds, so the printed CV never saw a row's own label: fold k's rows are
scored by a meta-learner fit on the other folds' OOF rows only, and whatever it chooses (C, alpha,
boosting rounds) it chooses inside those rows. The runs must therefore share their folds, not only
their rows: runs record no fold per row, so each run's folds are rebuilt from its config (--folds,
--seed, --group, --folds-file: pipelines/inputs.py) and checked against what the run recorded of
them (each fold's validation rows and labels); runs split otherwise (another --seed) are refused.

The submission: the meta-learner fit on every OOF row, applied to each run's test predictions (its
fold models rebuilt from its folder and averaged, as `predict` does), written by the task's own
submission writer.

--with-features adds the train file's raw numeric columns, not the task's encoded ones: those are
fit per run and fold (target encodings among them), so for a meta-learner's training rows they are
in-sample encodings of the rows' own labels, and no one encoder exists for all rows and the test;
raw columns carry no label, need no fitting beyond the meta-learner's imputer and scaler (fit inside
its training part), and read the same in the train and the test.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UsageError
from data import ingest
from pipelines import TASKS, runs
from pipelines.blend import common_oof, select_runs, submission_path, test_predictions
from pipelines.inputs import checked_folds
from pipelines.metrics import METRICS, kaggle_logloss
from pipelines.predict import write_submission
from pipelines.proba import cv_scores
from pipelines.stack_meta import META, make_meta, meta_inputs
from submissions.format import check_writable

log = logging.getLogger(__name__)


@dataclass
class StackResult:
    task: str
    meta: str                    # the meta-learner (stack_meta.META)
    runs: list[str]
    run_cv: list[dict]           # each run's own CV scores on the stacked rows
    cv: dict                     # the stack's, cross-fitted on the runs' folds
    rows: int
    folds: int
    features: list[str] = field(default_factory=list)    # raw columns beside the runs' predictions
    submission: Path | None = None

    def leaderboard(self) -> list[tuple[str, dict]]:
        """(name, scores) for the stack and each run, best first by the task's metric."""
        metric = next(iter(self.cv))         # cv_scores puts the task's metric first
        sign = -1 if METRICS[metric].maximize else 1
        rows = [(f"stack ({self.meta}{', with features' if self.features else ''})", self.cv),
                *zip(self.runs, self.run_cv)]
        return sorted(rows, key=lambda r: sign * r[1][metric])


def stack(task_name: str, run_ids: list[str], meta: str = "linear", with_features: bool = False,
          data_dir: Path | None = None, out: Path | None = None, runs_root: Path | None = None,
          device: str = "auto", top: int | None = None, input_path: Path | None = None,
          seed: int = 0, submit: bool = True, cv: dict | None = None, check=None) -> StackResult:
    """Stack `run_ids` (or the `top` best runs) of a task with meta-learner `meta`; the submission
    predicts the task's test file (or `input_path`). `seed`: the meta-learner's inner folds and trees.
    `submit=False`: the cross-fitted CV only, no test predictions and no file (a task without test
    rows). `cv`: these runs' cross-fitted scores with this meta-learner, from an earlier call, so the
    cross-fit is not run again; `check()`: called between the meta-learners' fits, and may raise
    (pipelines/preset.py's budget). Every check comes before the submission is written: a refused
    stack leaves no file."""
    if meta not in META:
        raise UsageError(f"--meta {meta}: unknown; choose {' or '.join(META)}")
    task = TASKS.create(task_name)
    root = runs_root or runs.RUNS_ROOT
    if out is not None:
        check_writable(out)
    if with_features and meta == "weights":
        raise UsageError("--meta weights averages the runs' predictions; it takes no --with-features")
    if with_features and task.kind != "tabular":
        raise UsageError(f"--with-features: for tables only; {task.name} is an image task")
    dirs = select_runs(task, run_ids, top, data_dir, root, verb="stack", same=lambda d: describe_split(task, d))
    for d in dirs if submit else ():
        check_predicts(d)
    ids, y, probas = common_oof(task, dirs)
    train = _TrainTable(task, dirs[0])
    fold_of = shared_folds(task, dirs, train)
    if len(ids) != len(fold_of):
        raise UsageError(f"the runs' out-of-fold files cover {len(ids)} of the {len(fold_of)} rows their folds split")
    if not np.array_equal(np.asarray(ids).astype(str), pd.read_csv(dirs[0] / "oof.csv")["id"].to_numpy().astype(str)):
        raise UsageError(f"run {dirs[0].name}'s out-of-fold rows are not in train order; the run is damaged")
    columns, raw = [], None
    if with_features:
        columns, raw = raw_columns(task, train.get(), ids)

    # the test rows first: a task without a test file (and no --input) fails before the cross-fit
    if submit:
        test_ids, tests, sample = test_predictions(task, dirs, data_dir, input_path, runs_root, device)
    test_raw = None
    if with_features and submit:
        test = task.load_test(data_dir if data_dir is not None or input_path is not None else train.data_dir,
                              input_path, root / ".cache")[0]
        missing = [c for c in columns if c not in test.columns]
        if missing:
            raise UsageError(f"--with-features: the test rows lack column(s) {', '.join(missing)}")
        test_raw = numeric(test[columns])

    x = meta_inputs(task, probas, raw)
    if cv is None:
        cv = scores(task, y, cross_fit(lambda: make_meta(meta, task, seed, check), x, y, fold_of))
    result = StackResult(task.name, meta, [d.name for d in dirs], [scores(task, y, p) for p in probas],
                         cv, len(y), int(fold_of.max()) + 1, columns)
    if not submit:
        return result
    final = make_meta(meta, task, seed, check).fit(x, y)
    proba = final.predict(meta_inputs(task, np.stack(tests), test_raw))
    out = out or submission_path(task, dirs, f"stack-{meta}")
    result.submission = write_submission(task, test_ids, proba, sample, out)
    return result


def scores(task, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The task's metrics, and for classification the log loss too (what the meta-learners fit: a
    stack may gain in it while a label metric such as accuracy moves by a few rows either way)."""
    out = cv_scores(task, y, pred)
    return out if task.problem == "regression" or "logloss" in out else out | {"logloss": kaggle_logloss(y, pred)}


def cross_fit(make, x: np.ndarray, y: np.ndarray, fold_of: np.ndarray) -> np.ndarray:
    """Each fold's rows predicted by a fresh meta-learner `make()` fit on the other folds' rows only."""
    out = None
    for k in np.unique(fold_of):
        score = fold_of == k
        p = make().fit(x[~score], y[~score]).predict(x[score])
        if out is None:
            out = np.zeros((len(y),) + p.shape[1:])
        out[score] = p
    return out


def check_predicts(run_dir: Path) -> None:
    """The run can predict the test: every fold folder holds its encoder and at least one model."""
    folds = sorted(run_dir.glob("fold*"))
    if not folds:
        raise UsageError(f"run {run_dir.name} has no fold models, so no test predictions to stack")
    for f in folds:
        if not (f / "encoder.joblib").is_file() or not any(f.glob("model*")):
            raise UsageError(f"run {run_dir.name} has no test predictions: {f.name} lacks its encoder or model")


class _TrainTable:
    """The train table the runs trained on, read once and only if needed (--group, --folds-file,
    --with-features): from the folder the first run trained from (its --data-dir, else the bundled copy)."""

    def __init__(self, task, run_dir: Path):
        self.task, self.run_dir, self._df = task, run_dir, None
        self.data_dir = runs.read_json(run_dir / "config.json").get("data_dir")
        self.data_dir = Path(self.data_dir) if self.data_dir else None

    def get(self) -> pd.DataFrame:
        if self._df is None:
            self._df = ingest.load(self.task, "train", self.data_dir)
        return self._df


def run_folds(task, run_dir: Path, train: _TrainTable) -> np.ndarray:
    """The fold (0..K-1) of every row of the run's OOF file, rebuilt from the run's config as training
    split them, and checked against the fold sizes and validation labels the run recorded."""
    cfg = runs.load(task.name, str(run_dir), require=None).config
    if cfg.folds < 2:
        raise UsageError(f"run {run_dir.name} trained on one holdout (--folds 1); stack needs runs cross-validated "
                         "with --folds 2 or more, whose every row has an out-of-fold prediction")
    y = pd.read_csv(run_dir / "oof.csv")["target"].to_numpy()
    folds = checked_folds(task, y, cfg, train.get() if cfg.group or cfg.folds_file else None)
    recorded = (runs.read_json(run_dir / "metrics.json") or {}).get("folds", [])
    fold_of = np.full(len(y), -1)
    for k, (_, va) in enumerate(folds):
        fold_of[va] = k
        val = run_dir / f"fold{k}" / "val.npz"
        sizes_differ = k < len(recorded) and recorded[k].get("n_val", len(va)) != len(va)
        labels_differ = val.is_file() and not np.allclose(np.load(val)["y"], y[va])
        if sizes_differ or labels_differ or len(recorded) != len(folds):
            raise UsageError(f"run {run_dir.name}: its folds cannot be rebuilt from its config (fold {k} differs "
                             "from the one it recorded; a changed --folds-file?), so stack cannot cross-fit on them")
    return fold_of


def describe_split(task, run_dir: Path) -> str:
    """How the run split its rows, from its config: runs of one data alike here share their folds."""
    cfg = runs.load(task.name, str(run_dir), require=None).config
    if cfg.folds_file:
        return f"--folds-file {cfg.folds_file}"
    return f"{f'--group {cfg.group}, ' if cfg.group else ''}{cfg.folds} folds, seed {cfg.seed}"


def shared_folds(task, dirs: list[Path], train: _TrainTable) -> np.ndarray:
    """The runs' common fold per row; runs split into other folds are refused."""
    first = run_folds(task, dirs[0], train)
    for d in dirs[1:]:
        if not np.array_equal(run_folds(task, d, train), first):
            raise UsageError(f"runs split into different folds do not stack: {dirs[0].name} ({describe_split(task, dirs[0])})"
                             f", {d.name} ({describe_split(task, d)}); stack runs trained with the same --folds and --seed")
    return first


def numeric(df: pd.DataFrame) -> np.ndarray:
    return df.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)


def raw_columns(task, train: pd.DataFrame, ids) -> tuple[list[str], np.ndarray]:
    """The train table's numeric columns (not the id or target) for the OOF rows `ids`, in their order."""
    if not np.array_equal(task.row_ids(train).astype(str), np.asarray(ids).astype(str)):
        raise UsageError("--with-features: the train file the runs trained from has other rows than their out-of-fold files")
    columns = [str(c) for c in train.columns if c not in (task.id_col, task.target)
               and (pd.api.types.is_numeric_dtype(train[c]) or pd.api.types.is_bool_dtype(train[c]))]
    if not columns:
        raise UsageError(f"--with-features: {task.name}'s train file has no numeric column besides the id and target")
    return columns, numeric(train[columns])
