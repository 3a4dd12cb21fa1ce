"""Find, read and validate a task's files; every problem is a one-line UsageError naming file and column.

Search order for each file: --data-dir (plain, .gz, or inside the Kaggle .zip), the
bundled copy under data/<task>/, then the Kaggle API when credentials exist.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from core.registry import UsageError, first_line
from pipelines.task import Task


def _candidates(folder: Path, name: str, task: Task) -> list[Path]:
    return [folder / name, folder / f"{name}.gz", folder / f"{name}.zip",
            *([folder / f"{task.kaggle}.zip"] if task.kaggle else [])]


def find_in(folder: Path, name: str, task: Task) -> Path | str | None:
    """`name` in `folder`: plain, .gz, .zip, or a member of the competition's Kaggle zip."""
    for path in _candidates(folder, name, task):
        if not path.is_file():
            continue
        if path.suffix != ".zip":
            return path
        with zipfile.ZipFile(path) as zf:   # Kaggle ships one zip holding every file
            members = [m for m in zf.namelist() if Path(m).name in (name, f"{name}.zip")]
        if members:
            return f"{path}::{members[0]}"
    return None


def kaggle_credentials() -> bool:
    home = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (home / "kaggle.json").is_file() or {"KAGGLE_USERNAME", "KAGGLE_KEY"} <= set(os.environ)


def kaggle_download(task: Task, dest: Path) -> None:
    """Download the competition's files with the `kaggle` package (needs credentials and network)."""
    if not task.kaggle:
        raise UsageError(f"task {task.name!r} is not a Kaggle competition; nothing to download")
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        raise UsageError("the Kaggle API needs the `kaggle` package: pip install kaggle") from None
    api = KaggleApi()
    try:
        api.authenticate()
        dest.mkdir(parents=True, exist_ok=True)
        api.competition_download_files(task.kaggle, path=str(dest), quiet=True)
    except Exception as e:  # network, credentials, rules not accepted: all user-fixable
        raise UsageError(f"Kaggle download of {task.kaggle!r} failed: {first_line(e)}") from None


def locate(task: Task, role: str, data_dir: Path | None) -> Path | str:
    """Path of the task's `role` file (train/test/sample), or 'zip::member' for one inside a zip."""
    name = task.files[role]
    if data_dir is not None and not Path(data_dir).is_dir():
        raise UsageError(f"--data-dir {data_dir} is not a folder")
    looked = []
    for folder in ([Path(data_dir)] if data_dir else []) + [task.bundled]:
        found = find_in(folder, name, task)
        if found:
            return found
        looked.append(str(folder))
    if task.kaggle and kaggle_credentials():
        kaggle_download(task, task.bundled)
        found = find_in(task.bundled, name, task)
        if found:
            return found
    how = f"pass --data-dir DIR holding {name}"
    if task.kaggle:
        how += f" (or .gz/.zip), or set up Kaggle API credentials (~/.kaggle/kaggle.json) to download {task.kaggle}"
    raise UsageError(f"{task.name}: {name} not found in {', '.join(looked)}; {how}")


def read_csv(task: Task, source: Path | str) -> pd.DataFrame:
    """Read one of the task's files, turning parser failures into one-line errors."""
    kw = {} if task.header else {"header": None, "names": list(task.column_names)}
    try:
        if isinstance(source, str) and "::" in source:
            archive, member = source.split("::", 1)
            with zipfile.ZipFile(archive) as zf, zf.open(member) as fh:
                df = pd.read_csv(fh, compression="zip" if member.endswith(".zip") else None, **kw)
        else:
            df = pd.read_csv(source, **kw)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{source}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise UsageError(f"{source}: cannot read as CSV: {first_line(e)}") from None
    if df.empty:
        raise UsageError(f"{source}: file has a header but no rows")
    return df


def validate(task: Task, df: pd.DataFrame, source, role: str) -> pd.DataFrame:
    """Check the columns the task needs; return the frame with numeric columns as float."""
    need = list(task.numeric) + list(task.required)
    need += [task.target] if role == "train" else []
    need += [task.id_col] if task.id_col else []
    missing = [c for c in need if c not in df.columns]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise UsageError(f"{source}: missing column(s) {', '.join(map(str, missing[:5]))}{more}")
    if task.id_col and df[task.id_col].duplicated().any():
        dup = df.loc[df[task.id_col].duplicated(), task.id_col].iloc[0]
        raise UsageError(f"{source}: column {task.id_col}: duplicated id {dup!r}")
    df = df.copy()
    for col in task.numeric:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise UsageError(f"{source}: column {col}: non-numeric value {df[col].iloc[row]!r} in data row {row + 1}")
        if np.isinf(values.to_numpy(dtype=float)).any():
            raise UsageError(f"{source}: column {col}: infinite value")
        df[col] = values.astype(float)
    if role == "train":
        target = df[task.target]
        if target.isna().any():
            raise UsageError(f"{source}: column {task.target}: missing target value")
        known = {str(c) for c in task.classes}
        unknown = sorted({str(v) for v in target.unique()} - known, key=str)
        if unknown:
            raise UsageError(f"{source}: column {task.target}: unknown target value(s) {', '.join(unknown[:5])}; "
                             f"expected {', '.join(sorted(known))}")
    return df


def load(task: Task, role: str, data_dir: Path | None = None, path: Path | None = None) -> pd.DataFrame:
    """Locate (or take `path`), read and validate one of the task's files."""
    if path is not None and not Path(path).is_file():
        raise UsageError(f"{path}: file not found")
    source = path if path is not None else locate(task, role, data_dir)
    df = read_csv(task, source)
    return df if role == "sample" else validate(task, df, source, role)


def encode_target(task: Task, target: pd.Series) -> np.ndarray:
    """Target values -> class indices in `task.classes` order."""
    lookup = {str(c): i for i, c in enumerate(task.classes)}
    return target.astype(str).map(lookup).to_numpy(dtype=np.int64)
