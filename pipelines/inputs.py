"""Stage 1, the run's inputs: the task reads and checks its data (`load`: tables in tasks/task.py,
images in tasks/image_task.py); here the folds are planned and checked.

`prepare(cfg)` is what `train`, `resume`, tuning and the benches call first; it raises UsageError
before anything is written. Tables: `train`/`test` are DataFrames. Images: uint8 arrays (N, C, H, W).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from core.config import TrainConfig
from core.errors import UsageError
from core.runtime import resolve_device
from pipelines import TASKS
from pipelines.folds import make_folds
from pipelines.learners import LEARNERS
from pipelines.metrics import check_metric
from pipelines import runs
from tasks.task import TaskBase

MIN_VAL_ROWS = 10          # a validation fold below this is warned about: one row moves its accuracy by >10%

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


def prepare(cfg: TrainConfig, data_dir: Path | None = None, runs_root: Path | None = None) -> Inputs:
    """Ingest and check everything a run needs; raises UsageError before anything is written."""
    task = TASKS.create(cfg.task)
    kind = LEARNERS.get(cfg.model) and LEARNERS.tags[cfg.model].get("kind")     # an unknown name fails here
    if kind and kind != task.kind:      # Task.config checks the nets; this, every learner
        raise UsageError(f"model {cfg.model!r} is for {kind} data, but {task.name} has {task.kind} data")
    problems = LEARNERS.tags[cfg.model].get("problems")
    if problems and task.problem not in problems:
        fit = [n for n in LEARNERS.names(kind=task.kind) if task.problem in LEARNERS.tags[n].get("problems", (task.problem,))]
        raise UsageError(f"model {cfg.model!r} is for {' or '.join(problems)} problems, but {task.name} is "
                         f"{task.problem}; its models: {', '.join(fit)}")
    check_metric(task)        # before reading: a wrong metric name needs no data to be found
    device = resolve_device(cfg.device)
    train, test, sample, y, test_ids, test_y = task.load(cfg, device, data_dir, (runs_root or runs.RUNS_ROOT) / ".cache")
    check_metric(task, y)     # and what the targets allow (rmsle: none negative)
    return Inputs(task, train, test, sample, y, checked_folds(task, y, cfg), device, test_ids, test_y)


def checked_folds(task, y: np.ndarray, cfg: TrainConfig) -> list:
    """`make_folds` for this target, and what it cannot say: one class is refused (nothing to learn,
    nothing to score); classes of the task absent from the train are named in a warning (the models
    learn to give them ~0 probability, and the CV never scores them); so are folds too small to score."""
    if task.problem == "regression":
        folds = regression_folds(len(y), cfg.folds, cfg.seed, cfg.holdout)
        _warn_small(task, len(y), folds)
        return folds
    names = [str(c) for c in task.classes]
    present = set(np.unique(y).tolist())
    if len(present) < 2:
        only = f"only {names[min(present)]}" if present else "no rows"
        raise UsageError(f"{task.name}: the training data has {only} of the {len(names)} classes; nothing to "
                         f"learn, and {task.metric} needs at least two")
    folds = make_folds(y, cfg.folds, cfg.seed, cfg.holdout)      # its errors first: one line, no warnings before
    absent = [name for i, name in enumerate(names) if i not in present]
    if absent:
        log.warning("warning: %s: %d of the %d classes never appear in the training data (%s); the models learn "
                    "to give them ~0 probability and the CV cannot score them", task.name, len(absent), len(names),
                    ", ".join(absent))
    _warn_small(task, len(y), folds)
    return folds


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
