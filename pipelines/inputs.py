"""Stage 1, the run's inputs: read and check the competition's files, encode the target, plan the folds.

`prepare(cfg)` is what `train`, `resume`, tuning and the benches call first; it raises UsageError
before anything is written. Tables: `train`/`test` are DataFrames. Images: uint8 arrays (N, C, H, W).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

import numpy as np
import pandas as pd
import torch

from core.config import TrainConfig
from core.errors import UsageError
from core.runtime import autocast_dtype, resolve_device
from data import ingest
from data.images import load_images
from models import MODELS
from pipelines import TASKS, Task
from pipelines.folds import make_folds
from pipelines import runs
from submissions import kaggle
from submissions.format import check_test_ids

MIN_VAL_ROWS = 10          # a validation fold below this is warned about: one row moves its accuracy by >10%

log = logging.getLogger(__name__)


@dataclass
class Inputs:
    """Everything stage 1 produced: validated data, encoded target, folds, device.

    Tables: `train`/`test` are DataFrames. Images: uint8 arrays (N, C, H, W)."""
    task: Task
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
    MODELS.get(cfg.model)
    device = resolve_device(cfg.device)
    if task.kind == "image":
        if cfg.precision == "auto" and autocast_dtype(device, "auto") is None:
            log.info("%s: this CPU has no native bfloat16, so the run trains in float32 and takes ~1.7-2.5x as "
                     "long as where it has (BENCHMARKS.md); --epochs and --set width=N trade accuracy for time",
                     task.name)
        imgs = load_images(task, data_dir, (runs_root or runs.RUNS_ROOT) / ".cache")
        folds = checked_folds(task, imgs.train_y, cfg)
        return Inputs(task, imgs.train_x, imgs.test_x, None, imgs.train_y, folds, device, imgs.test_ids, imgs.test_y)
    train_df, test_df, sample = load_inputs(task, data_dir)
    y = ingest.encode_target(task, train_df[task.target])
    test_ids = row_ids(task, test_df).to_numpy() if test_df is not None else None
    if test_ids is not None:
        check_test_ids(test_ids, sample, task.id_col, task.files["test"], task.files.get("sample", "the sample"))
    return Inputs(task, train_df, test_df, sample, y, checked_folds(task, y, cfg), device, test_ids)



def load_inputs(task: Task, data_dir: Path | None):
    fetch_if_missing(task, data_dir)
    train_df = ingest.load(task, "train", data_dir)
    test_df = ingest.load(task, "test", data_dir) if "test" in task.files else None
    return train_df, test_df, load_sample(task, data_dir)


def load_sample(task: Task, data_dir: Path | None) -> pd.DataFrame | None:
    """The sample submission beside the test file, if the competition ships one there.

    Only the test file's own folder is searched: a sample from elsewhere (the bundled
    copy) would describe a different test set.
    """
    if "sample" not in task.files or "test" not in task.files:
        return None
    test_source = str(ingest.locate(task, "test", data_dir))
    folder = Path(test_source.split("::")[0]).parent
    source = ingest.find_in(folder, task.files["sample"], task)
    return ingest.read_csv(task, source) if source else None

def fetch_if_missing(task: Task, data_dir: Path | None, roles: Collection[str] = ("train", "test")) -> None:
    """Download the competition's files into data/<task>/ when one of `roles` is found nowhere and
    Kaggle API credentials exist: the one place a run downloads (data/ingest.py only locates).
    Without credentials the not-found error stands; it names `download TASK` and --data-dir."""
    for role in [r for r in roles if r in task.files]:
        try:
            ingest.locate(task, role, data_dir, warn=False)
        except ingest.DataNotFound:
            if not (task.kaggle and kaggle.has_credentials()):
                raise
            log.info("%s: %s found nowhere; downloading %s into %s", task.name, task.files[role], task.kaggle,
                     task.bundled)
            kaggle.download(task, task.bundled)
            return



def row_ids(task: Task, df: pd.DataFrame) -> pd.Series:
    return df[task.id_col] if task.id_col else pd.Series(np.arange(1, len(df) + 1))


def checked_folds(task, y: np.ndarray, cfg: TrainConfig) -> list:
    """`make_folds` for this target, and what it cannot say: one class is refused (nothing to learn,
    nothing to score); classes of the task absent from the train are named in a warning (the models
    learn to give them ~0 probability, and the CV never scores them); so are folds too small to score."""
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
    sizes = sorted(len(va) for _, va in folds)
    if sizes[0] < MIN_VAL_ROWS:
        rows = f"{sizes[0]}" if sizes[0] == sizes[-1] else f"{sizes[0]}-{sizes[-1]}"
        split = f"{len(folds)} folds: each fold validates on" if len(folds) > 1 else "a holdout: it validates on"
        log.warning("warning: %s: %d training rows in %s %s rows, too few for a steady score or early stopping; "
                    "use more rows%s", task.name, len(y), split, rows, " or fewer --folds" if len(folds) > 2 else "")
    return folds
