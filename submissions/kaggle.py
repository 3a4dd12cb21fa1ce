"""Kaggle I/O: download a competition's files, check a submission file against the competition's
format, and upload it.

The `kaggle` package is imported here only, inside `client()`: importing it authenticates at
once and prints a page of help when there are no credentials, so credentials are looked for
first and the package's own printing is kept off the terminal. Every failure is a one-line
UsageError; a file that fails the format check never reaches the API.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from core.files import remove_empty_dirs
from core.errors import UsageError, first_line
from submissions.format import check_submission

log = logging.getLogger(__name__)

CREDENTIALS_HELP = ("put kaggle.json (https://www.kaggle.com/settings/api) in ~/.kaggle/ or set KAGGLE_USERNAME "
                    "and KAGGLE_KEY, or put an API token in ~/.kaggle/access_token or KAGGLE_API_TOKEN")
PROBABILITY_SUM_TOL = 0.01    # rows of class probabilities must sum to 1 within this (files hold 6 decimals)


def credential_files() -> list[Path]:
    """Where the `kaggle` package (2.x) looks: its config folder, and ~/.kaggle for tokens."""
    home = Path.home()
    config = Path(os.environ["KAGGLE_CONFIG_DIR"]) if os.environ.get("KAGGLE_CONFIG_DIR") else home / ".kaggle"
    return [config / "kaggle.json", home / ".config" / "kaggle" / "kaggle.json",
            *(home / ".kaggle" / name for name in ("access_token", "access_token.txt", "credentials.json"))]


def has_credentials() -> bool:
    env = os.environ
    if env.get("KAGGLE_API_TOKEN") or (env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY")):
        return True
    return any(path.is_file() for path in credential_files())


def _why(e: BaseException) -> str:
    """A failed API call as one line, saying what the user can do about it."""
    try:
        import requests
        if isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return f"cannot reach kaggle.com (no network?): {first_line(e)[:120]}"
        if isinstance(e, requests.exceptions.HTTPError) and e.response is not None:
            code = e.response.status_code
            if code in (401, 403):
                return (f"HTTP {code}: Kaggle refused; check the credentials and accept the competition's "
                        "rules on its web page")
            return f"HTTP {code}: {first_line(e)[:120]}"
    except ImportError:
        pass
    if isinstance(e, (ConnectionError, TimeoutError)):
        return f"cannot reach kaggle.com (no network?): {first_line(e)[:120]}"
    if isinstance(e, SystemExit):         # the package exits when no credentials work
        return f"no working Kaggle API credentials: {CREDENTIALS_HELP}"
    return f"{type(e).__name__}: {first_line(e)[:160]}"


def client():
    """An authenticated `KaggleApi`. Tests replace this function with a fake that records calls."""
    if not has_credentials():
        raise UsageError(f"no Kaggle API credentials: {CREDENTIALS_HELP}")
    try:
        with contextlib.redirect_stdout(io.StringIO()):     # the package prints its own help and progress
            from kaggle.api.kaggle_api_extended import KaggleApi
            api = KaggleApi()
            api.authenticate()
    except ImportError:
        raise UsageError("the Kaggle API needs the `kaggle` package: pip install kaggle") from None
    except (Exception, SystemExit) as e:
        raise UsageError(f"Kaggle authentication failed: {_why(e)}") from None
    return api


def _competition(task, what: str) -> str:
    if not getattr(task, "kaggle", None):
        raise UsageError(f"{task.name} is not a Kaggle competition; nothing to {what}")
    return task.kaggle


def download(task, dest: Path | None = None) -> list[Path]:
    """Fetch the competition's zip into `dest` (default data/<task>/), unzip it, return the files."""
    slug = _competition(task, "download")
    dest = Path(dest) if dest is not None else task.bundled
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"--data-dir {dest} is a file, not a folder")
    api = client()
    # the folders this makes, deepest first: a failed download removes those it left empty
    made = [p for p in (dest, *dest.parents) if not p.exists()]
    dest.mkdir(parents=True, exist_ok=True)
    log.debug("downloading %s into %s", slug, dest)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api.competition_download_files(slug, path=str(dest), quiet=True)
    except (Exception, SystemExit) as e:
        remove_empty_dirs(made)                   # no empty data/<task>/ left by a failed download
        raise UsageError(f"Kaggle download of {slug!r} failed: {_why(e)}") from None
    archive = dest / f"{slug}.zip"
    if not archive.is_file():
        raise UsageError(f"Kaggle download of {slug!r} left no {archive}")
    return unzip(archive, dest)


def unzip(archive: Path, dest: Path) -> list[Path]:
    """Extract the competition zip, and the per-file zips older competitions put inside it."""
    files = []
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [dest / n for n in zf.namelist() if not n.endswith("/")]
            zf.extractall(dest)          # extractall drops absolute paths and '..' from member names
        for f in members:
            if f.suffix != ".zip":
                files.append(f)
                continue
            with zipfile.ZipFile(f) as zf:
                files += [f.parent / n for n in zf.namelist() if not n.endswith("/")]
                zf.extractall(f.parent)
            f.unlink()
    except (zipfile.BadZipFile, OSError) as e:
        raise UsageError(f"{archive}: cannot unzip ({first_line(e)}); delete it and download again") from None
    archive.unlink()
    return sorted(p for f in files for p in (un7z(f) if f.suffix == ".7z" else [f]))


def un7z(archive: Path) -> list[Path]:
    """Extract a 7-Zip archive beside itself (Kaggle's CIFAR-10 ships train.7z and test.7z of
    PNGs) with py7zr, then delete it. Returns the top-level entries it made (the `train/`
    folder, not its 50,000 files). A damaged archive leaves none of its entries behind."""
    import lzma
    import shutil
    import zlib

    import py7zr
    from py7zr.exceptions import AbsolutePathError, ArchiveError
    made: list[Path] = []
    try:
        with py7zr.SevenZipFile(archive) as z:          # reads and checks the header
            tops = sorted({archive.parent / Path(n).parts[0] for n in z.getnames()})
            made = [t for t in tops if not t.exists()]
            log.info("extracting %s (a large archive takes minutes)", archive)
            z.extractall(archive.parent)
    # damaged (py7zr's errors, or the codec's own when the packed data is corrupt), truncated, '..' member
    except (ArchiveError, AbsolutePathError, lzma.LZMAError, zlib.error, EOFError, OSError) as e:
        for t in made:
            if t.is_dir():
                shutil.rmtree(t, ignore_errors=True)
            else:
                t.unlink(missing_ok=True)
        raise UsageError(f"{archive}: cannot extract the 7-Zip archive ({first_line(e)}); "
                         "delete it and download again") from None
    archive.unlink()
    return tops


# ---- the competition's submission format ---------------------------------------------------

def expected_submission(task) -> pd.DataFrame:
    """What a valid file looks like: the task's own submission writer applied to every test id
    (the values are placeholders; the columns, ids and dtypes are the competition's)."""
    ids = np.asarray(task.kaggle_ids)
    k = len(task.classes)
    if task.problem == "regression":
        proba = np.zeros(len(ids))        # values
    else:
        proba = np.full(len(ids), 0.5) if task.binary else np.full((len(ids), k), 1.0 / k)
    return task.submission(ids, proba, task)


def check_file(task, path: Path) -> pd.DataFrame:
    """Columns, row count, ids (set and order) and values of `path` against the competition's
    format; a one-line UsageError naming the file and the first problem."""
    slug = _competition(task, "submit")
    if task.kaggle_ids is None:
        raise UsageError(f"{task.name}: the submission format of {slug!r} is not known here")
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: file not found")
    try:
        sub = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, EOFError, zlib.error,
            zipfile.BadZipFile) as e:
        raise UsageError(f"{path}: cannot read as CSV: {first_line(e)}") from None
    expected = expected_submission(task)
    id_col = str(expected.columns[0])
    try:
        if list(sub.columns) == list(expected.columns) and sub[id_col].dtype.kind not in "iu":
            raise UsageError(f"column {id_col}: ids must be integers, got {sub[id_col].dtype}")
        check_submission(sub, expected, id_col)
        for col in expected.columns[1:]:
            _check_values(task, sub, str(col), expected[col].dtype.kind)
        probabilities = [str(c) for c in expected.columns[1:] if expected[c].dtype.kind == "f"]
        if len(probabilities) > 1:
            _check_sums(sub, probabilities)
    except UsageError as e:
        raise UsageError(f"{path}: {e} (competition {slug})") from None
    return sub


def _check_values(task, sub: pd.DataFrame, col: str, kind: str) -> None:
    values = sub[col]
    if kind == "f":              # a class probability
        if values.dtype.kind not in "fiu":
            raise UsageError(f"column {col}: probabilities must be numbers, got {values.dtype}")
        bad = (values < 0) | (values > 1)
        if bad.any():
            raise UsageError(f"column {col}: probability {_cell(values, bad)} is outside [0, 1]")
        return
    if kind in "iu" and values.dtype.kind not in "iu":     # Kaggle reads '1.0' as no class at all
        raise UsageError(f"column {col}: labels must be integers, got {values.dtype}")
    allowed = [str(c) for c in task.classes]
    bad = ~values.astype(str).isin(allowed)
    if bad.any():
        shown = ", ".join(allowed) if len(allowed) <= 10 else ", ".join(allowed[:10]) + ", ..."
        raise UsageError(f"column {col}: value {_cell(values, bad)} is not one of {shown}")


def _check_sums(sub: pd.DataFrame, cols: list[str]) -> None:
    sums = sub[cols].sum(axis=1)
    off = (sums - 1).abs() > PROBABILITY_SUM_TOL
    if off.any():
        row = int(np.flatnonzero(off.to_numpy())[0])
        raise UsageError(f"row {row + 1}: class probabilities sum to {sums.iloc[row]:.4f}, not 1")


def _cell(values: pd.Series, bad: pd.Series) -> str:
    """'VALUE in row N' for the first flagged cell (rows count from 1, after the header)."""
    row = int(np.flatnonzero(bad.to_numpy())[0])
    value = values.iloc[row]
    return f"{(value.item() if isinstance(value, np.generic) else value)!r} in row {row + 1}"


def submit(task, message: str, file: Path | Callable[[], Path]) -> tuple[Path, str]:
    """Check the file, then upload it. Returns (file, Kaggle's reply). `file` may be a function
    finding it (a run's submission: pipelines.runs.submission_of_run), called once the competition
    and the message are known good, so those errors come first."""
    slug = _competition(task, "submit")
    if not message.strip():
        raise UsageError("-m/--message must say something: Kaggle shows it beside the score")
    path = Path(file() if callable(file) else file)
    check_file(task, path)
    api = client()
    log.debug("uploading %s to %s", path, slug)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            reply = api.competition_submit(str(path), message, slug, quiet=True)
    except (Exception, SystemExit) as e:
        raise UsageError(f"Kaggle submission to {slug!r} failed: {_why(e)}") from None
    text = str(getattr(reply, "message", "") or "")
    if text == "Could not submit to competition":      # KaggleApi.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE
        raise UsageError(f"Kaggle submission to {slug!r} failed: the upload did not complete")
    return path, text
