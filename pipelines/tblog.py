"""TensorBoard event files for `train --tensorboard` and `tune --tensorboard` (view: `tensorboard --logdir runs/`).

train, under <run>/tensorboard/: per epoch `fold{k}/train_loss`, `fold{k}/val_loss`,
`fold{k}/val_score`, `fold{k}/lr` (step = epoch; bag b > 0 as `fold{k}/bag{b}/...`), per fold
`fold_scores/<metric>` (step = fold), at the end `cv/<metric>` and `test/<metric>`; image tasks
add grids of training images and of misclassified OOF / holdout images.
tune, under runs/<task>/studies/<name>/tensorboard/: per trial (step = trial number)
`trial/value`, `trial/best_value` and `params/<name>`, plus an hparams entry per complete trial.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UsageError, first_line

log = logging.getLogger(__name__)

GRID = 64      # images per grid (8 x 8)


def summary_writer(log_dir: Path):
    # tensorboard imports TensorFlow when it is installed: keep its C++ logging and the
    # protobuf / pkg_resources deprecation warnings of the import off the user's terminal
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise UsageError(f"--tensorboard needs the tensorboard package: pip install tensorboard ({first_line(e)})") from None
    return SummaryWriter(str(log_dir))


class TrainLog:
    """The `on_epoch` / `on_fold` hooks of one training run, writing scalars to <run>/tensorboard/."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.writer = summary_writer(self.run_dir / "tensorboard")

    def hooks(self, on_epoch=None, on_fold=None):
        """This log's hooks composed with the caller's (progress bars), ours first."""
        def epoch(fold, bag, row):
            self.on_epoch(fold, bag, row)
            if on_epoch:
                on_epoch(fold, bag, row)

        def fold_done(fold, row):
            self.on_fold(fold, row)
            if on_fold:
                on_fold(fold, row)
        return epoch, fold_done

    def on_epoch(self, fold: int, bag: int, row: dict) -> None:
        prefix = f"fold{fold}" + (f"/bag{bag}" if bag else "") + (f"/{row['phase']}" if row.get("phase") else "")
        for key in ("train_loss", "val_loss", "val_score", "lr"):
            self.writer.add_scalar(f"{prefix}/{key}", row[key], row["epoch"])

    def on_fold(self, fold: int, row: dict) -> None:
        for key, value in row.items():
            if isinstance(value, float) and key != "seconds":
                self.writer.add_scalar(f"fold_scores/{key}", value, fold)

    def finish(self, metrics: dict, inp) -> None:
        """CV (and test) scores; for image tasks the training-image and misclassified grids."""
        for key, value in metrics["cv"].items():
            self.writer.add_scalar(f"cv/{key}", value, 0)
        for key, value in (metrics.get("test_scores") or {}).items():
            self.writer.add_scalar(f"test/{key}", value, 0)
        if inp.task.image_grids:
            try:
                self._image_grids(inp.train, inp.y, inp.task.classes)
            except Exception as e:      # a picture is not worth a finished run
                log.warning("warning: tensorboard image grids not written (%s: %s)", type(e).__name__, first_line(e))
        self.writer.flush()

    def _image_grids(self, images: np.ndarray, y: np.ndarray, classes) -> None:
        """`images` uint8 (N, C, H, W) in training order, the order of oof.csv's rows."""
        import torch
        from torchvision.utils import make_grid
        grid = lambda idx: make_grid(torch.from_numpy(np.ascontiguousarray(images[idx])), nrow=8)
        self.writer.add_image("images/train_sample", grid(np.arange(min(GRID, len(images)))), 0)
        oof = pd.read_csv(self.run_dir / "oof.csv")
        p = oof[[c for c in oof.columns if c not in ("id", "target")]].to_numpy(float)
        scored = ~np.isnan(p).any(1)                      # folds=1: only the holdout rows
        pred = np.where(scored, np.nan_to_num(p).argmax(1), -1)
        wrong = np.flatnonzero(scored & (pred != y))[:GRID]
        if len(wrong):
            self.writer.add_image("images/misclassified", grid(wrong), 0)
            self.writer.add_text("images/misclassified", "  \n".join(
                f"{n}: row {i}, true {classes[y[i]]}, predicted {classes[pred[i]]} (p={p[i, pred[i]]:.2f})"
                for n, i in enumerate(wrong)), 0)     # grid order: left to right, top to bottom

    def close(self) -> None:
        self.writer.close()


class StudyLog:
    """An Optuna callback writing one event stream per study, under <study>/tensorboard/."""

    def __init__(self, study_dir: Path):
        self.writer = summary_writer(Path(study_dir) / "tensorboard")

    def on_trial(self, study, trial) -> None:
        n = trial.number
        for key, value in trial.params.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"params/{key}", value, n)
        if trial.state != trial.state.COMPLETE:   # pruned or failed: params only (a pruned trial's
            return                                  # value is its last intermediate report, not a score)
        self.writer.add_scalar("trial/value", trial.value, n)
        self.writer.add_scalar("trial/best_value", study.best_value, n)
        hparams = {k: v for k, v in trial.params.items() if isinstance(v, (int, float, str, bool))}
        self.writer.add_hparams(hparams, {"hparam/value": trial.value}, run_name=f"trial{n:04d}")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
