"""What every learner shares (the seam itself is described in pipelines/learners.py): the `Learner`
defaults and the small helpers its implementations use. A module of its own so that a learner
kept in another file (pipelines/learners_gbdt.py) builds on it while pipelines/learners.py, which
registers every learner, imports that file: no import cycle."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.config import TrainConfig
from core.errors import UsageError
from core.registry import Registry
from tasks.task import Encoded, TaskBase


class Learner:
    """The defaults every learner shares: the task's own encoding, for training and for test rows."""
    suffix = ""
    progress_unit = "epoch"
    seeded = True       # its fit depends on random_state; False: the same rows give the same model
    parallel_folds = True   # False: its folds train one at a time on every core, not one per core (cv.fold_plan)

    def __init__(self, task: TaskBase, cfg: TrainConfig | None, device: torch.device, random_state: int = 0):
        self.task, self.cfg, self.device, self.random_state = task, cfg, device, random_state

    @classmethod
    def check(cls, cfg: TrainConfig) -> None:
        """Before a run folder is made (pipelines/inputs.prepare): what this learner needs, e.g. its
        library installed. Config key `trees` is the tree learners' alone."""
        if cfg.trees:
            raise UsageError(f"config key trees holds gradient-boosted trees' settings; model {cfg.model!r} does not read it")

    @classmethod
    def encode_fold(cls, task: TaskBase, cfg: TrainConfig, inp, tr, va, test) -> Encoded:
        return task.encode_fold(cfg, inp, tr, va, test)

    @classmethod
    def encoding(cls, task: TaskBase, cfg: TrainConfig) -> str:
        """Which encoding `encode_fold` gives for this task and config: learners of a combination
        (pipelines/learners_ensemble.py) that answer alike share one fold encoding."""
        return "task"

    @classmethod
    def fold_input(cls, task: TaskBase, encoder, columns: list[str], data, device, fold_dir: Path):
        return task.fold_input(encoder, columns, data, device, fold_dir)


# the learner registry (filled by pipelines/learners.py, which every caller imports it from); here,
# below every learner module, so that a combination (pipelines/learners_ensemble.py) reads it
# without importing the module that registers it
LEARNERS: Registry["Learner"] = Registry("model")


def target_path(model_path: Path) -> Path:
    """A regression model's target transform beside it: model<b><suffix> -> target<b>.joblib."""
    return model_path.with_name(model_path.stem.replace("model", "target", 1) + ".joblib")


def load_joblib(path: Path):
    import joblib
    try:
        return joblib.load(path)
    except Exception as e:
        raise UsageError(f"{path}: missing or corrupted ({type(e).__name__})") from None


def as_numpy(x) -> np.ndarray:
    """A fold matrix as NumPy: the task's encoding gives tensors (on the run's device)."""
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
