"""Where folds are made: stratified, shuffled, seeded (`make_folds`); grouped by a column
(`group_folds`, --group); or as the user's own file assigns them (`file_folds`, --folds-file)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, ShuffleSplit, StratifiedGroupKFold, StratifiedKFold, StratifiedShuffleSplit

from core.errors import UsageError, first_line
from data import ingest
from data.ingest import first_row, show


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


def inner_split(tr: np.ndarray, y: np.ndarray, own_rows: int, share: float, seed: int,
                stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """A fold's training indices `tr` split into (fit, stop): `share` of its own rows (never --extra-train
    rows, which are never validated on) held out for early stopping (TrainConfig.stopping='inner'),
    stratified by class where every class has 2 rows, else shuffled; seeded per fold by `seed`."""
    own, extra = tr[tr < own_rows], tr[tr >= own_rows]
    counts = np.bincount(y[own]) if stratify else np.zeros(1)
    classes = int((counts > 0).sum())
    if stratify and counts[counts > 0].min() >= 2 and min(share * len(own), (1 - share) * len(own)) >= classes:
        split = StratifiedShuffleSplit(n_splits=1, test_size=share, random_state=seed)
        fit, stop = next(split.split(np.zeros(len(own)), y[own]))
    else:
        fit, stop = next(ShuffleSplit(n_splits=1, test_size=share, random_state=seed).split(np.zeros(len(own))))
    return np.sort(np.concatenate([own[fit], extra])), np.sort(own[stop])


def group_folds(y: np.ndarray, groups: pd.Series, folds: int, seed: int,
                stratify: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, val_idx) pairs in which rows sharing a value of `groups` (a train column; a missing
    value is a group of its own) never split: StratifiedGroupKFold for classes, GroupKFold for a
    regression target, both shuffled by `seed`. Rows of one group in two folds would let a model
    score on a group it trained on, as it never can on the test's new groups."""
    name = groups.name
    if folds < 2:
        raise UsageError(f"--group {name} needs --folds 2 or more, got {folds}")
    codes, uniques = pd.factorize(groups, use_na_sentinel=False)
    if len(uniques) < folds:
        raise UsageError(f"--group {name}: {len(uniques)} distinct value(s) for {folds} folds; "
                         f"each fold needs a group of its own (use --folds {max(len(uniques), 2)} or fewer)")
    kind = StratifiedGroupKFold if stratify else GroupKFold
    with warnings.catch_warnings():     # 'least populated class has fewer members than n_splits': groups
        warnings.simplefilter("ignore", UserWarning)     # decide, and the small-fold warning says the rest
        out = list(kind(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, codes))
    if any(len(va) == 0 for _, va in out):
        raise UsageError(f"--group {name}: {len(uniques)} groups left a fold empty; use fewer --folds")
    return out


def fold_count(path: Path | str, id_col: str | None, id_as_text: bool) -> int:
    """K, the folds a folds file numbers 0..K-1 (what --folds becomes when it is given)."""
    return int(read_folds_file(path, id_col, id_as_text)[1].max()) + 1


def file_folds(path: Path | str, train_ids: np.ndarray | None, n: int, id_col: str | None,
               id_as_text: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, val_idx) pairs as the user's folds file assigns the `n` train rows: by id (the
    file holds the id column and the fold), or, for a task without ids, one fold per row in order."""
    ids, fold = read_folds_file(path, id_col, id_as_text)
    if ids is None:
        if len(fold) != n:
            raise UsageError(f"folds file {path}: {len(fold)} rows for the train's {n}; without an id column "
                             "it holds one fold per train row, in order")
        per_row = fold
    else:
        pos = pd.Index(ids).get_indexer(train_ids)
        if (pos < 0).any():
            missing = train_ids[pos < 0]
            raise UsageError(f"folds file {path}: {len(missing)} train id(s) missing, first {show(missing[0])}; "
                             "every train row needs a fold")
        unknown = ~ids.isin(pd.Series(train_ids))
        if unknown.any():
            raise UsageError(f"folds file {path}: {int(unknown.sum())} id(s) not in the train, first "
                             f"{show(ids[unknown].iloc[0])} in data row {first_row(unknown)}")
        per_row = fold[pos]
    return [(np.flatnonzero(per_row != k), np.flatnonzero(per_row == k)) for k in range(int(per_row.max()) + 1)]


def read_folds_file(path: Path | str, id_col: str | None, id_as_text: bool) -> tuple[pd.Series | None, np.ndarray]:
    """(ids, or None for a task without an id column; the fold of each row), checked: a `fold`
    column, or the one column besides the id; whole numbers 0..K-1 with K >= 2, each with rows."""
    where = f"folds file {path}"
    if not Path(path).is_file():
        raise UsageError(f"{where}: file not found")
    try:
        df = pd.read_csv(path, dtype={id_col: str} if id_col and id_as_text else None)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{where}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as e:
        raise UsageError(f"{where}: cannot read as CSV: {first_line(e)}") from None
    if id_col and id_col not in df.columns:
        raise UsageError(f"{where}: no id column {id_col!r}; it holds {id_col} and fold, one row per train row")
    others = [c for c in df.columns if c != id_col]
    col = "fold" if "fold" in others else (others[0] if len(others) == 1 else None)
    if col is None:
        raise UsageError(f"{where}: no 'fold' column among {', '.join(map(str, others))}")
    if df.empty:
        raise UsageError(f"{where}: file has a header but no rows")
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna() | (values % 1 != 0) | (values < 0)
    if bad.any():
        raise UsageError(f"{where}: column {col}: {show(df[col][bad].iloc[0])} in data row {first_row(bad)} "
                         "is not a fold number 0, 1, 2, ...")
    fold = values.to_numpy().astype(np.int64)
    k = int(fold.max()) + 1
    if k < 2:
        raise UsageError(f"{where}: every row is in fold 0; a folds file numbers 2 or more folds 0..K-1")
    empty = sorted(set(range(k)) - set(fold.tolist()))
    if empty:
        raise UsageError(f"{where}: fold(s) {', '.join(map(str, empty[:5]))} of 0..{k - 1} have no rows; "
                         "number the folds 0..K-1 with none left out")
    ids = None
    if id_col:
        check = ingest.check_text_ids if id_as_text else ingest.check_ids
        ids = check(df[id_col], where, id_col).reset_index(drop=True)
    return ids, fold
