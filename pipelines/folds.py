"""The one place folds are made: stratified, shuffled, seeded."""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from core.errors import UsageError


def make_folds(y: np.ndarray, folds: int, seed: int, holdout: float = 0.1) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, val_idx) pairs. folds >= 2: StratifiedKFold; folds == 1: one stratified holdout."""
    if folds < 1:
        raise UsageError(f"--folds must be at least 1, got {folds}")
    counts = np.bincount(y)
    counts = counts[counts > 0]
    if len(counts) < 2:
        raise UsageError("the target has a single class; nothing to learn")
    if folds > counts.min():
        raise UsageError(f"--folds {folds} is more than the {counts.min()} rows of the rarest class")
    if folds == 1:
        if counts.min() < 2:
            raise UsageError("a class has a single row; a stratified holdout needs at least 2 of each class")
        held = round(holdout * len(y))
        if held < len(counts):
            raise UsageError(f"holdout {holdout} of {len(y)} rows cannot hold one row of each class")
        if len(y) - held < len(counts):
            raise UsageError(f"holdout {holdout} of {len(y)} rows leaves fewer training rows than classes")
        split = StratifiedShuffleSplit(n_splits=1, test_size=holdout, random_state=seed)
    else:
        split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(split.split(np.zeros(len(y)), y))
