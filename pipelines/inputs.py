"""Stage 1, the run's inputs: the task reads and checks its data (`load`: tables in tasks/task.py,
images in tasks/image_task.py); here the folds are planned and checked.

`prepare(cfg)` is what `train`, `resume`, tuning and the benches call first; it raises UsageError
before anything is written. Tables: `train`/`test` are DataFrames. Images: uint8 arrays (N, C, H, W).

Three options shape a table's folds and training rows (config keys, so a resumed run and every tuning
trial keep them): `group` (rows sharing a column's value stay in one fold), `folds_file` (the user's
own fold per row) and `extra_train` (labelled rows from elsewhere, e.g. a Playground competition's
original dataset). Extra rows go after the competition's in `Inputs.train` and `Inputs.y`, in every
fold's training part and in no validation part: the OOF file and the CV score are over the
competition's rows alone, while the data fingerprint (taken over all of `train`) tells the run apart
from runs without them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from core.config import TrainConfig
from core.errors import UsageError, did_you_mean
from core.runtime import resolve_device
from data import ingest
from pipelines import TASKS
from pipelines.folds import file_folds, fold_count, group_folds, make_folds
from pipelines.learners import LEARNERS
from pipelines.metrics import check_metric
from pipelines import runs
from tasks.task import TaskBase

MIN_VAL_ROWS = 10          # a validation fold below this is warned about: one row moves its accuracy by >10%
ROW_OPTIONS = {"group": "--group", "folds_file": "--folds-file", "extra_train": "--extra-train"}   # key: flag

log = logging.getLogger(__name__)


@dataclass
class Inputs:
    """Everything stage 1 produced: validated data, encoded target, folds, device.

    Tables: `train`/`test` are DataFrames. Images: uint8 arrays (N, C, H, W)."""
    task: TaskBase
    train: pd.DataFrame | np.ndarray
    test: pd.DataFrame | np.ndarray | None
    sample: pd.DataFrame | None
    y: np.ndarray
    folds: list
    device: torch.device
    test_ids: np.ndarray | None = None
    test_y: np.ndarray | None = None      # images whose layout knows the test labels
    extra: dict | None = None             # --extra-train: {"path", "rows"}, its rows last in train and y

    @property
    def own_rows(self) -> int:
        """The competition's own training rows (the first ones): what the OOF file and the CV cover."""
        return len(self.y) - (self.extra["rows"] if self.extra else 0)


def prepare(cfg: TrainConfig, data_dir: Path | None = None, runs_root: Path | None = None) -> Inputs:
    """Ingest and check everything a run needs; raises UsageError before anything is written."""
    task = TASKS.create(cfg.task)
    check_learner(task, cfg)
    check_metric(task)        # before reading: a wrong metric name needs no data to be found
    check_row_options(task, cfg.to_dict())
    device = resolve_device(cfg.device)
    train, test, sample, y, test_ids, test_y = task.load(cfg, device, data_dir, (runs_root or runs.RUNS_ROOT) / ".cache")
    check_metric(task, y)     # and what the targets allow (rmsle: none negative)
    folds, extra = checked_folds(task, y, cfg, train), None
    if cfg.extra_train:
        train, y, folds, extra = with_extra_rows(task, train, y, folds, cfg.extra_train)
    return Inputs(task, train, test, sample, y, folds, device, test_ids, test_y, extra)


def row_options(task, given: dict, group: str | None, folds_file: Path | None, extra_train: Path | None) -> dict:
    """The CLI's --group, --folds-file and --extra-train as config keys (`given`: the other overrides):
    paths made absolute, as a resumed run or a tuning worker may start in another folder; and `folds`
    the folds file's K unless --folds, --set or --params named one (`prepare` refuses a disagreement)."""
    out = {} if group is None else {"group": group}
    out |= {k: str(Path(p).resolve()) for k, p in (("folds_file", folds_file), ("extra_train", extra_train))
            if p is not None}
    merged = {**given, **out}
    check_row_options(task, merged)
    if merged.get("folds_file") and "folds" not in given:
        out["folds"] = fold_count(merged["folds_file"], task.id_col, task.id_as_text)
    return out


def check_learner(task, cfg: TrainConfig) -> None:
    """That `cfg.model` can train this task: a known learner, for its kind of data and its problem,
    its library installed and its settings known (the learner's own check)."""
    kind = LEARNERS.get(cfg.model) and LEARNERS.tags[cfg.model].get("kind")     # an unknown name fails here
    if kind and kind != task.kind:      # Task.config checks the nets; this, every learner
        raise UsageError(f"model {cfg.model!r} is for {kind} data, but {task.name} has {task.kind} data")
    problems = LEARNERS.tags[cfg.model].get("problems")
    if problems and task.problem not in problems:
        fit = [n for n in LEARNERS.names(kind=task.kind) if task.problem in LEARNERS.tags[n].get("problems", (task.problem,))]
        raise UsageError(f"model {cfg.model!r} is for {' or '.join(problems)} problems, but {task.name} is "
                         f"{task.problem}; its models: {', '.join(fit)}")
    LEARNERS.get(cfg.model).check(cfg)      # its library installed, its settings known


def check_row_options(task, options: dict) -> None:
    """Refuse what cannot combine: the options on image tasks (their folds are a holdout of arrays
    with no columns), and --group with --folds-file (the file decides the folds alone)."""
    given = [flag for key, flag in ROW_OPTIONS.items() if options.get(key)]
    if given and task.kind == "image":
        raise UsageError(f"{', '.join(given)}: for tables only; {task.name} is an image task")
    if options.get("group") and options.get("folds_file"):
        raise UsageError("--group and --folds-file both decide the folds; give one (a folds file can keep groups together)")
    if options.get("stopping") in ("inner", "refit") and task.kind == "image":
        raise UsageError(f"stopping={options['stopping']}: for tables only; {task.name} is an image task")


def checked_folds(task, y: np.ndarray, cfg: TrainConfig, train: pd.DataFrame | None = None) -> list:
    """The folds for this target (`train`: the table, which `group` and `folds_file` need), and what
    the splitters cannot say: one class is refused (nothing to learn, nothing to score); classes of
    the task absent from the train are named in a warning (the models learn to give them ~0
    probability, and the CV never scores them); so are folds too small to score."""
    if task.problem == "regression":
        folds = _split(task, y, cfg, train)
        _warn_small(task, len(y), folds)
        return folds
    names = [str(c) for c in task.classes]
    present = set(np.unique(y).tolist())
    if len(present) < 2:
        only = f"only {names[min(present)]}" if present else "no rows"
        raise UsageError(f"{task.name}: the training data has {only} of the {len(names)} classes; nothing to "
                         f"learn, and {task.metric} needs at least two")
    folds = _split(task, y, cfg, train)      # its errors first: one line, no warnings before
    absent = [name for i, name in enumerate(names) if i not in present]
    if absent:
        log.warning("warning: %s: %d of the %d classes never appear in the training data (%s); the models learn "
                    "to give them ~0 probability and the CV cannot score them", task.name, len(absent), len(names),
                    ", ".join(absent))
    _warn_small(task, len(y), folds)
    return folds


def _split(task, y: np.ndarray, cfg: TrainConfig, train: pd.DataFrame | None) -> list:
    """The folds file's, the group column's, or the plain stratified (KFold for regression) split."""
    if cfg.folds_file:
        ids = task.row_ids(train) if task.id_col else None
        folds = file_folds(cfg.folds_file, ids, len(y), task.id_col, task.id_as_text)
        if len(folds) != cfg.folds:
            raise UsageError(f"--folds {cfg.folds} disagrees with folds file {cfg.folds_file}'s {len(folds)} folds; "
                             "leave --folds out, the file sets it")
        return folds
    if cfg.group:
        return group_folds(y, group_column(task, train, cfg.group), cfg.folds, cfg.seed,
                           stratify=task.problem != "regression")
    if task.problem == "regression":
        return regression_folds(len(y), cfg.folds, cfg.seed, cfg.holdout)
    return make_folds(y, cfg.folds, cfg.seed, cfg.holdout)


def group_column(task, train: pd.DataFrame, col: str) -> pd.Series:
    """--group's column of the train table (a feature or not); never the target, whose groups would
    leave each validation fold a class or a value range of its own."""
    if col == task.target:
        raise UsageError(f"--group {col} is the target; group by a column of what the rows share (a patient, a store, ...)")
    if col not in train.columns:
        known = [str(c) for c in train.columns]
        raise UsageError(f"--group {col}: no such column in the train{did_you_mean(col, known)}; "
                         f"columns: {ingest.show(', '.join(known), 200)}")
    return train[col]


def with_extra_rows(task, train: pd.DataFrame, y: np.ndarray, folds: list, path: str):
    """(train and y with the extra rows after the competition's, folds whose training parts all hold
    them, the record {"path", "rows"}). The rows are read and checked as the train file is (ingest),
    need every train column but the id (absent: numbered -1, -2, ... or 'extra-0', ...; extra
    rows never reach the OOF file or a submission) and keep only the train's columns."""
    if not Path(path).is_file():
        raise UsageError(f"--extra-train {path}: file not found")
    df = ingest.read_csv(task, path)
    missing = [str(c) for c in train.columns if c not in df.columns and c != task.id_col]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise UsageError(f"{path}: missing column(s) {', '.join(missing[:5])}{more}; extra rows need the train's columns")
    if task.id_col and task.id_col not in df.columns:
        n = np.arange(1, len(df) + 1)
        df[task.id_col] = [f"extra-{i}" for i in n] if task.id_as_text else -n
    ignored = [str(c) for c in df.columns if c not in train.columns]
    if ignored:
        log.warning("warning: %s: column(s) %s not in the train; ignored", path, ingest.show(", ".join(ignored), 120))
    df = ingest.validate(task, df, path, "train")[list(train.columns)]
    if task.problem == "regression":
        extra_y = df[task.target].to_numpy(np.float64)
        bad = pd.Series(~np.isfinite(extra_y))
        if bad.any():
            raise UsageError(f"{path}: column {task.target}: missing or infinite target in data row {ingest.first_row(bad)}")
    else:
        extra_y = ingest.encode_target(task, df[task.target])
    check_metric(task, extra_y)
    first = len(train)
    rows = np.arange(first, first + len(df))
    folds = [(np.concatenate([tr, rows]), va) for tr, va in folds]
    log.info("%s: %d extra training rows from %s in every fold's training part", task.name, len(df), path)
    return (pd.concat([train, df], ignore_index=True), np.concatenate([y, extra_y]), folds,
            {"path": str(path), "rows": len(df)})


def regression_folds(n: int, folds: int, seed: int, holdout: float = 0.1) -> list:
    """(train_idx, val_idx) pairs for a regression target: KFold, shuffled and seeded (no classes to
    stratify), or folds == 1 one shuffled holdout. pipelines/folds.py's stratified splits need classes."""
    from sklearn.model_selection import KFold, ShuffleSplit
    if folds < 1:
        raise UsageError(f"--folds must be at least 1, got {folds}")
    if folds > n:
        raise UsageError(f"--folds {folds} is more than the {n} training rows")
    if folds == 1:
        held = int(np.ceil(holdout * n))      # as ShuffleSplit rounds
        if not 1 <= held < n:
            raise UsageError(f"holdout {holdout} of {n} rows leaves no {'holdout' if held < 1 else 'training'} rows")
        split = ShuffleSplit(n_splits=1, test_size=holdout, random_state=seed)
    else:
        split = KFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(split.split(np.zeros(n)))


def _warn_small(task, n: int, folds: list) -> None:
    """Warn when a validation fold is too small to score or early-stop on steadily."""
    sizes = sorted(len(va) for _, va in folds)
    if sizes[0] < MIN_VAL_ROWS:
        rows = f"{sizes[0]}" if sizes[0] == sizes[-1] else f"{sizes[0]}-{sizes[-1]}"
        split = f"{len(folds)} folds: each fold validates on" if len(folds) > 1 else "a holdout: it validates on"
        log.warning("warning: %s: %d training rows in %s %s rows, too few for a steady score or early stopping; "
                    "use more rows%s", task.name, n, split, rows, " or fewer --folds" if len(folds) > 2 else "")
