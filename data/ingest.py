"""Find, read and validate a task's files; every problem is a one-line UsageError naming file and column.

Search order for each file: --data-dir (plain, .gz, or inside the Kaggle .zip), then the
bundled copy under data/<task>/. Nothing here downloads: a file in neither place is a
`DataNotFound` error, and the caller decides whether to fetch it (tasks/task.py's fetch_if_missing does, with
the Kaggle API when credentials exist; `python cli.py download TASK` does it by hand).
"""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from core.errors import UsageError, first_line
from data import csvfiles


class TableSpec(Protocol):
    """What reading and checking a task's files needs from it; tasks.task.Task has all of it.
    Declared here rather than imported: data sits below pipelines (tests/test_layering.py)."""
    name: str
    files: dict[str, str]             # role (train/test/sample) -> file name
    target: str
    classes: tuple                    # () for regression
    problem: str                      # "binary" | "multiclass" | "regression"
    numeric: tuple[str, ...]
    required: tuple[str, ...]
    nonnegative: bool
    id_col: str | None
    header: bool
    column_names: tuple[str, ...]
    kaggle: str | None                # competition slug: its zip is searched too
    na_values: tuple[str, ...]        # extra cell tokens read as missing, beyond pandas' defaults
    id_as_text: bool                  # the id column read as text, verbatim ("0013_01", "00042")

    @property
    def bundled(self) -> Path: ...


class DataNotFound(UsageError):
    """A task file in neither --data-dir nor the bundled copy; the caller may download it."""


log = logging.getLogger(__name__)


def _candidates(folder: Path, name: str, task: TableSpec) -> list[Path]:
    plain = [folder / name.removesuffix(".gz")] if name.endswith(".gz") else []   # diabetes.csv for diabetes.csv.gz
    return [folder / name, *plain, folder / f"{name}.gz", folder / f"{name}.zip",
            *([folder / f"{task.kaggle}.zip"] if task.kaggle else [])]


def find_in(folder: Path, name: str, task: TableSpec) -> Path | str | None:
    """`name` in `folder`: plain, .gz, .zip, or a member of the competition's Kaggle zip. None when
    none is there; an error when only something that is not a file has one of those names (a
    folder called train.csv is not an absent file: no silent fallback to the bundled copy)."""
    odd = []
    for path in _candidates(folder, name, task):
        if not path.is_file():
            if path.exists() or path.is_symlink():
                odd.append(path)
            continue
        if path.suffix != ".zip":
            return path
        try:
            with zipfile.ZipFile(path) as zf:   # Kaggle ships one zip holding every file
                members = [m for m in zf.namelist() if Path(m).name in (name, f"{name}.zip")]
        except (zipfile.BadZipFile, OSError) as e:
            raise UsageError(f"{path}: cannot read as zip: {first_line(e)}") from None
        if members:
            return f"{path}::{members[0]}"
    if odd:
        wanted = f"; expected the file {name}" if odd[0].name != name else ""
        raise UsageError(f"{task.name}: {odd[0].name} in {folder} is {_not_a_file(odd[0])}{wanted}")
    return None


def _not_a_file(path: Path) -> str:
    """What is at `path` instead of a regular file, for an error line."""
    if path.is_symlink() and not path.exists():
        return "a broken symbolic link"
    return "a directory, not a file" if path.is_dir() else "not a regular file (a pipe, socket or device)"


def locate(task: TableSpec, role: str, data_dir: Path | None, warn: bool = True) -> Path | str:
    """Path of the task's `role` file (train/test/sample), or 'zip::member' for one inside a zip.
    `warn`: log when --data-dir lacks the file and another copy is used."""
    name = task.files[role]
    if data_dir is not None and not Path(data_dir).is_dir():
        raise UsageError(f"--data-dir {data_dir} is not a folder")
    looked = []
    for folder in ([Path(data_dir)] if data_dir else []) + [task.bundled]:
        found = find_in(folder, name, task)
        if found:
            if looked and warn:      # --data-dir was given but lacks this file: say which one is used instead
                log.warning("%s: %s not in --data-dir %s; using %s", task.name, name, data_dir, found)
            return found
        looked.append(str(folder))
    how = f"pass --data-dir DIR holding {name}"
    if task.kaggle:
        how += f" (or .gz/.zip), or download it: python cli.py download {task.name} (needs Kaggle API credentials)"
    raise DataNotFound(f"{task.name}: {name} not found in {', '.join(looked)}; {how}")


def read_csv(task: TableSpec, source: Path | str) -> pd.DataFrame:
    """Read one of the task's files, turning parser failures into one-line errors. The task's
    `na_values` are missing too; with `id_as_text` its id column is text as written (a number
    would drop "00042"'s zeros)."""
    options = {"header": 0 if task.header else None, "na_values": list(task.na_values) or None,
               "dtype": {task.id_col: str} if task.id_as_text and task.id_col and task.header else None}
    try:
        if isinstance(source, str) and "::" in source:
            archive, member = source.split("::", 1)
            with csvfiles.open_member(archive, member) as fh:
                df = pd.read_csv(fh, compression="zip" if member.endswith(".zip") else None, **options)
        else:
            df = pd.read_csv(source, **options)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{source}: file is empty") from None
    except UnicodeDecodeError as e:
        raise UsageError(csvfiles.not_utf8(source, e)) from None
    except (pd.errors.ParserError, ValueError, OSError, zipfile.BadZipFile,
            *csvfiles.DECOMPRESS_ERRORS) as e:      # EOFError in them: Click would call it an abort
        raise UsageError(f"{source}: cannot read as CSV: {first_line(e)}") from None
    first = df.columns[0] if task.header else (df.iat[0, 0] if len(df) else "")
    if len(df.columns) == 1 and any(sep in str(first) for sep in ";\t|"):
        raise UsageError(f"{source}: one column {show(first)}: not comma-separated?")
    if not task.header:
        df.columns = _headerless_names(task, source, len(df.columns))
    if df.empty:
        raise UsageError(f"{source}: file has {'a header but ' if task.header else ''}no rows")
    short = csvfiles.short_row(source, len(df.columns))
    if short is not None:
        line, n = short
        raise UsageError(f"{source}: line {line} has {n} field(s), the file {len(df.columns)}")
    return df


def _headerless_names(task: TableSpec, source, width: int) -> list[str]:
    """Column names for a headerless file: all of `column_names`, or all but the target (rows to predict)."""
    names = list(task.column_names)
    without_target = [c for c in names if c != task.target]
    for candidate in (names, without_target):
        if width == len(candidate):
            return candidate
    raise UsageError(f"{source}: {width} column(s); expected {len(names)} ({', '.join(names)}) "
                     f"or {len(without_target)} without {task.target}")


def show(value, limit: int = 40) -> str:
    """A cell value for an error line: plain Python repr, cut short (cells can be megabytes)."""
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# models compute in float32: a larger finite value would become inf on the way in
FLOAT32_MAX = float(np.finfo(np.float32).max)


def validate(task: TableSpec, df: pd.DataFrame, source, role: str) -> pd.DataFrame:
    """Check the columns the task needs; return the frame with numeric columns as float,
    text columns as text, integer ids (text ids with `id_as_text`) and, for regression, a float
    target (its missing or infinite values are `encode_target`'s to count)."""
    need = list(task.numeric) + list(task.required)
    need += [task.target] if role == "train" else []
    need += [task.id_col] if task.id_col else []
    missing = [c for c in need if c not in df.columns]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise UsageError(f"{source}: missing column(s) {', '.join(map(str, missing[:5]))}{more}")
    df = df.copy()
    if task.id_col:
        check = check_text_ids if task.id_as_text else check_ids
        df[task.id_col] = check(df[task.id_col], source, task.id_col)
    for col in task.numeric:
        values = _numbers(df[col])
        bad = values.isna() & df[col].notna()
        if bad.any():
            raise UsageError(f"{source}: column {col}: non-numeric value {show(df[col][bad].iloc[0])} "
                             f"in data row {first_row(bad)}")
        huge = values.abs() > FLOAT32_MAX
        if huge.any():
            raise UsageError(f"{source}: column {col}: value {show(df[col][huge].iloc[0])} in data row "
                             f"{first_row(huge)} is infinite or beyond ±3.4e38")
        if task.nonnegative and (values < 0).any():
            neg = values < 0
            raise UsageError(f"{source}: column {col}: negative count {show(df[col][neg].iloc[0])} in data row "
                             f"{first_row(neg)}")
        df[col] = values
    for col in task.required:
        # text columns stay text: a column that is empty or all digits in one file must not
        # reach the feature code as floats or ints when the training file had strings
        df[col] = df[col].astype(str).where(df[col].notna(), np.nan)
    if role == "train" and task.problem == "regression":
        values = _numbers(df[task.target])
        bad = values.isna() & df[task.target].notna()
        if bad.any():
            raise UsageError(f"{source}: column {task.target}: non-numeric target {show(df[task.target][bad].iloc[0])} "
                             f"in data row {first_row(bad)}")
        df[task.target] = values
    elif role == "train":
        target = df[task.target]
        if target.isna().any():
            raise UsageError(f"{source}: column {task.target}: missing target value in data row {first_row(target.isna())}")
        if all(isinstance(c, int) for c in task.classes) and pd.api.types.is_float_dtype(target) \
                and (target == target.round()).all():
            target = df[task.target] = target.astype(np.int64)   # 0.0/1.0 as a spreadsheet writes 0/1
        known = {str(c) for c in task.classes}
        unknown = sorted({v for v in target.unique() if str(v) not in known}, key=str)
        if unknown:
            raise UsageError(f"{source}: column {task.target}: unknown target value(s) "
                             f"{', '.join(show(v) for v in unknown[:5])}; expected {', '.join(sorted(known))}")
    return df


def first_row(mask: pd.Series) -> int:
    """The 1-based data row of the first True in `mask`, for an error line."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


def _numbers(values: pd.Series) -> pd.Series:
    """Floats, NaN where a cell is not a number. The parser keeps integers too long for int64 as
    Python ints, on which pd.to_numeric raises OverflowError even with errors='coerce'."""
    try:
        return pd.to_numeric(values, errors="coerce").astype(float)
    except OverflowError:
        return values.map(_number).astype(float)


def _number(value) -> float:
    try:
        return float(value)
    except OverflowError:           # an int beyond float range
        return np.inf if value > 0 else -np.inf
    except (TypeError, ValueError):
        return np.nan


def check_ids(ids: pd.Series, source, col: str) -> pd.Series:
    """Row ids must be present, unique whole numbers: every competition here numbers its rows,
    and the submission writers cast ids to int."""
    if ids.isna().any():
        raise UsageError(f"{source}: column {col}: missing id in data row {first_row(ids.isna())}")
    values = _numbers(ids)
    bad = values.isna() | (values % 1 != 0) | (values.abs() >= 2 ** 63)
    if bad.any():
        raise UsageError(f"{source}: column {col}: id {show(ids[bad].iloc[0])} in data row {first_row(bad)} "
                         "is not a 64-bit integer")
    dup = values.duplicated()
    if dup.any():
        raise UsageError(f"{source}: column {col}: duplicated id {show(ids[dup].iloc[0])} in data row {first_row(dup)}")
    return values.astype(np.int64)


def check_text_ids(ids: pd.Series, source, col: str) -> pd.Series:
    """Text row ids (`id_as_text`): present and unique, kept exactly as written."""
    if ids.isna().any():
        raise UsageError(f"{source}: column {col}: missing id in data row {first_row(ids.isna())}")
    ids = ids.astype(str)
    dup = ids.duplicated()
    if dup.any():
        raise UsageError(f"{source}: column {col}: duplicated id {show(ids[dup].iloc[0])} in data row {first_row(dup)}")
    return ids


def load(task: TableSpec, role: str, data_dir: Path | None = None, path: Path | None = None) -> pd.DataFrame:
    """Locate (or take `path`), read and validate one of the task's files."""
    if path is not None and not Path(path).is_file():
        there = Path(path).exists() or Path(path).is_symlink()
        raise UsageError(f"{path} is {_not_a_file(Path(path))}" if there else f"{path}: file not found")
    source = path if path is not None else locate(task, role, data_dir)
    df = read_csv(task, source)
    log.debug("%s %s: %s (%d rows, %d columns)", task.name, role, source, len(df), len(df.columns))
    return df if role == "sample" else validate(task, df, source, role)


def encode_target(task: TableSpec, target: pd.Series) -> np.ndarray:
    """Target values -> class indices in `task.classes` order; for regression float64 values,
    every one finite and not all the same."""
    if task.problem == "regression":
        return regression_target(task, target)
    lookup = {str(c): i for i, c in enumerate(task.classes)}
    return target.astype(str).map(lookup).to_numpy(dtype=np.int64)


def regression_target(task: TableSpec, target: pd.Series) -> np.ndarray:
    values = _numbers(target).to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise UsageError(f"{task.name}: column {task.target}: {int(bad.sum())} of {len(values)} target values are "
                         f"missing or infinite (first in data row {int(np.flatnonzero(bad)[0]) + 1}); "
                         "regression needs a number on every training row")
    if len(values) and values.min() == values.max():
        raise UsageError(f"{task.name}: column {task.target} is {show(values[0])} on every training row; nothing to learn")
    return values
