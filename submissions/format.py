"""Check a submission frame against the sample submission and write it atomically."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UsageError
from core.files import replace_atomically

SUBMISSIONS_DIR = Path(__file__).resolve().parent


def check_submission(sub: pd.DataFrame, sample: pd.DataFrame | None, id_col: str | None) -> None:
    """Columns, row count, ids and their order must match the sample; probabilities must be finite."""
    if sub.isna().any().any() or not np.isfinite(sub.select_dtypes("number").to_numpy(dtype=float)).all():
        raise UsageError("submission has missing or non-finite values")
    if sample is None:
        return
    if list(sub.columns) != [str(c) for c in sample.columns]:
        raise UsageError(f"submission columns {list(sub.columns)} differ from the sample's {list(sample.columns)}")
    if len(sub) != len(sample):
        raise UsageError(f"submission has {len(sub)} rows, the sample submission {len(sample)}")
    if id_col and not np.array_equal(sub[id_col].to_numpy(), sample[id_col].to_numpy()):
        first = int(np.flatnonzero(sub[id_col].to_numpy() != sample[id_col].to_numpy())[0])
        raise UsageError(f"submission ids differ from the sample's at row {first + 1}: "
                         f"{sub[id_col].iloc[first]} vs {sample[id_col].iloc[first]}")


def check_test_ids(ids, sample: pd.DataFrame | None, id_col: str | None, test_name: str, sample_name: str) -> None:
    """Before training: the test file must hold exactly the sample submission's ids, in any order
    (`in_sample_order` puts the submission in the sample's), so a mismatch never waits for the end
    of a long run."""
    if sample is None or not id_col or id_col not in sample.columns:
        return
    want = sample[id_col].to_numpy()
    if len(ids) != len(want):
        raise UsageError(f"{test_name} has {len(ids)} rows, {sample_name} {len(want)}; both should list the same test ids")
    # a hash lookup: np.setdiff1d sorts, and on text ids (Python objects) that took minutes at 500k rows
    missing = want[~pd.Series(want).isin(pd.Series(np.asarray(ids))).to_numpy()]
    if len(missing):
        raise UsageError(f"{test_name} has no row for id {missing[0]} of {sample_name}")


def in_sample_order(sub: pd.DataFrame, sample: pd.DataFrame | None, id_col: str | None) -> pd.DataFrame:
    """The submission's rows in the sample's id order (Kaggle matches by id, but a file that reads
    like the sample is easier to check); unchanged when the ids differ, which check_submission reports."""
    if sample is None or not id_col or id_col not in sample.columns or id_col not in sub.columns:
        return sub
    want = sample[id_col].to_numpy()
    if len(sub) != len(want) or np.array_equal(sub[id_col].to_numpy(), want) or set(sub[id_col]) != set(want):
        return sub
    return sub.set_index(id_col).loc[want].reset_index()


def check_writable(path: Path) -> None:
    """Fail before a long run, not after it, when the submission could not be written."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"--out {path} is a folder; give a file path")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:    # folders to be made: probe where they would go,
        folder = folder.parent                                 # so a run that fails later leaves none behind
    if not folder.is_dir():
        raise UsageError(f"cannot write {path}: {folder} is not a folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from None


def write_atomic(df: pd.DataFrame, path: Path, float_format: str = "%.6f") -> Path:
    """The CSV written through core.files.replace_atomically (a reader never sees half a file); a
    disk error is a one-line UsageError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(path, lambda tmp: df.to_csv(tmp, index=False, float_format=float_format,
                                                        lineterminator="\n"))
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from None
    return path
