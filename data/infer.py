"""Infer a `CompetitionSpec` from a folder of Kaggle files: which file is which, the id, the target,
the kind of problem, the submission form, the metric and each feature column's type.

Every guess comes from the files alone, and every guess the files cannot settle is one error line
naming the CLI flag that settles it (--target, --problem, --submission, --id; commands/competition.py).
What is guessed is shown by `data.spec.summary` before training, so a wrong guess costs a glance.
Column-level reading (pandas) happens once per file; there is no per-row Python.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UsageError, did_you_mean, first_line
from data import csvfiles
from data.columns import (
    column_type,
    holds_text,
    integer_valued,
    missing_tokens,
    python_value,
)
from data.ingest import show
from data.spec import (
    COLUMN_TYPES,
    METRIC_NAMES,
    ROLES,
    SUBMISSIONS,
    CompetitionSpec,
    check,
    class_columns,
    default_metric,
)

SAMPLE_NAMES = ("sample_submission.csv", "samplesubmission.csv", "gender_submission.csv")
PROBLEM_FLAGS = ("binary", "multiclass", "classification", "regression")
MAX_INTEGER_CLASSES = 20     # an integer target with more distinct values is a quantity, not a label


def find_files(folder) -> dict[str, str]:
    """{"train", "test", "sample"} -> file name in `folder`: plain, .gz, or "archive.zip::member"
    for one inside a zip there (Kaggle's competition zip, or train.csv.zip). Plain files win over
    zip members; names match case-insensitively."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    entries = sorted(_entries(folder), key=lambda e: ("::" in e[0], len(e[0]), e[0]))
    found = {}
    for role, names in (("train", ("train.csv",)), ("test", ("test.csv",)), ("sample", SAMPLE_NAMES)):
        hits = [rel for name in names for rel, base in entries if base == name]
        if hits:
            found[role] = hits[0]
    if "sample" not in found:
        hits = [rel for rel, base in entries if "submission" in base and base.endswith(".csv")]
        if len({b for r, b in entries if r in hits}) > 1:
            raise UsageError(f"{folder}: several sample submissions ({', '.join(hits)}); keep one, "
                             "or name it sample_submission.csv")
        if hits:
            found["sample"] = hits[0]
    missing = [role for role in ROLES if role not in found]
    if missing:
        wanted = {"train": "train.csv", "test": "test.csv",
                  "sample": "the sample submission (sample_submission.csv, sampleSubmission.csv, "
                            "gender_submission.csv or *submission*.csv)"}
        seen = ", ".join(f"{role} {found[role]}" for role in ROLES if role in found) or "none of them"
        raise UsageError(f"{folder}: found {seen}; missing {', '.join(wanted[m] for m in missing)} "
                         "(plain, .gz or inside a .zip)")
    return found


def _entries(folder: Path) -> list[tuple[str, str]]:
    """(name relative to folder, the CSV name it holds, lower case) for each file and zip member."""
    out = []
    for path in folder.iterdir():
        if not path.is_file():
            continue
        name = path.name.lower()
        if not name.endswith(".zip"):
            out.append((path.name, name.removesuffix(".gz")))
            continue
        try:
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.namelist() if not m.endswith("/")]
        except (zipfile.BadZipFile, OSError) as e:
            raise UsageError(f"{path}: cannot read as zip: {first_line(e)}") from None
        out += [(f"{path.name}::{m}", Path(m).name.lower().removesuffix(".zip")) for m in members]
    return out


def read(folder: Path, rel: str, **kwargs) -> pd.DataFrame:
    """One competition file (`rel` as find_files names it) read by pandas; failures are one line."""
    source = f"{folder / rel.split('::')[0]}" + (f"::{rel.split('::', 1)[1]}" if "::" in rel else "")
    try:
        if "::" in rel:
            archive, member = rel.split("::", 1)
            with csvfiles.open_member(folder / archive, member) as fh:
                df = pd.read_csv(fh, compression="zip" if member.lower().endswith(".zip") else None, **kwargs)
        else:
            df = pd.read_csv(folder / rel, **kwargs)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{source}: file is empty") from None
    except UnicodeDecodeError as e:
        raise UsageError(csvfiles.not_utf8(source, e)) from None
    except (pd.errors.ParserError, ValueError, OSError, zipfile.BadZipFile, *csvfiles.DECOMPRESS_ERRORS) as e:
        raise UsageError(f"{source}: cannot read as CSV: {first_line(e)}") from None
    if len(df.columns) == 1 and any(sep in str(df.columns[0]) for sep in ";\t|"):
        raise UsageError(f"{source}: one column {show(df.columns[0])}: not comma-separated?")
    if df.empty and kwargs.get("nrows") != 0:
        raise UsageError(f"{source}: file has a header but no rows")
    return df


def infer(name: str, folder, *, target: str | None = None, id_col: str | None = None, metric: str | None = None,
          problem: str | None = None, submission: str | None = None, na_values=(),
          column_types: dict[str, str] | None = None, drop=()) -> CompetitionSpec:
    """The spec of the competition whose files are in `folder`; each keyword overrides one guess."""
    folder = Path(folder).resolve()
    files = find_files(folder)
    na_values = tuple(str(v) for v in na_values)
    header = {role: list(read(folder, files[role], nrows=0).columns) for role in ROLES}
    sample = read(folder, files["sample"], dtype={header["sample"][0]: str})
    id_col = id_col or header["sample"][0]
    if id_col not in header["test"]:
        raise UsageError(f"{files['test']}: no id column {id_col!r}{did_you_mean(id_col, header['test'])}; "
                         "name the test file's id column with --id")
    test_ids = read(folder, files["test"], usecols=[id_col], dtype={id_col: str})[id_col]
    _same_ids(sample.iloc[:, 0], test_ids, files)
    predicted = list(header["sample"][1:])
    target = _target(header, predicted, id_col, target, files)
    features = [c for c in header["train"] if c in header["test"] and c not in (id_col, target)]
    for col in drop:
        if col not in features:
            raise UsageError(f"--drop {col}: not a feature column of {files['train']}{did_you_mean(col, features)}")
    features = [c for c in features if c not in drop]
    id_in_train = id_col in header["train"]
    train = read(folder, files["train"], usecols=[*([id_col] if id_in_train else []), target, *features],
                 dtype={id_col: str} if id_in_train else None, na_values=list(na_values) or None)
    tokens = _missing_values(train, target, features, na_values, files["train"])
    y = train[target]
    problem, classes = _problem(y, problem, sample, predicted, files["train"], target)
    submission = _submission(problem, classes, sample, predicted, submission, files["sample"])
    if metric is not None and metric not in METRIC_NAMES:
        raise UsageError(f"--metric {metric}: unknown metric{did_you_mean(metric, METRIC_NAMES)}; "
                         f"one of {', '.join(METRIC_NAMES)}")
    if id_in_train:
        features = [c for c in features if not _same_as_id(train[c], train[id_col])]
    columns = _column_types(train, features, column_types or {})
    spec = CompetitionSpec(
        name=name, data_dir=str(folder), files=files, id_col=id_col, target=target, problem=problem,
        classes=classes, submission=submission, prediction_columns=tuple(predicted),
        metric=metric or default_metric(problem, submission), columns=columns,
        na_values=tuple(dict.fromkeys([*na_values, *sorted(tokens)])), rows=len(train))
    check(spec, str(folder))
    return spec


def _missing_values(train: pd.DataFrame, target: str, features: list, na_values: tuple, source: str) -> set:
    """The NA tokens found in columns that are otherwise numbers, applied in place as reading with
    them would; a column the user's `na_values` empties is an error."""
    for col in [target, *features] if na_values else []:
        if train[col].isna().all():
            raise UsageError(f"{source}: {'target' if col == target else 'column'} {col} is entirely missing "
                             f"when reading {', '.join(map(repr, na_values))} as missing; change --na-values"
                             + ("" if col == target else f" or --drop {col}"))
    numbers_but = missing_tokens(train, [target, *features])      # {column: its tokens}
    tokens = set().union(*numbers_but.values())
    for col in [target, *features] if tokens else []:     # every text column, as na_values would
        if holds_text(train[col]):
            values = train[col].mask(train[col].isin(tokens))
            train[col] = pd.to_numeric(values) if col in numbers_but else values
    return tokens


def _column_types(train: pd.DataFrame, features: list, overrides: dict) -> dict[str, str]:
    """{column: type} by data.columns.column_type, then the user's overrides."""
    columns = {c: column_type(train[c]) for c in features}
    for col, kind in overrides.items():      # the CLI's --numeric/--categorical/--text/--boolean COLS
        if kind not in COLUMN_TYPES:
            raise UsageError(f"column type {kind!r} for {col}: unknown{did_you_mean(kind, COLUMN_TYPES)}; "
                             f"one of {', '.join(COLUMN_TYPES)}")
        if col not in columns:
            raise UsageError(f"--{kind} {col}: not a feature column{did_you_mean(col, columns)}")
        if kind == "numeric" and columns[col] not in ("numeric", "boolean"):
            example = train[col].dropna().iloc[0]
            raise UsageError(f"--numeric {col}: {col} holds text such as {show(example)}")
        columns[col] = kind
    return columns


def _same_ids(sample_ids: pd.Series, test_ids: pd.Series, files: dict) -> None:
    """The sample must list the test rows: the same ids, in any order."""
    if test_ids.isna().any():
        raise UsageError(f"{files['test']}: column {test_ids.name}: missing id in data row "
                         f"{int(np.flatnonzero(test_ids.isna())[0]) + 1}")
    for ids, other, what in ((test_ids, sample_ids, f"in {files['test']} but not in {files['sample']}"),
                             (sample_ids, test_ids, f"in {files['sample']} but not in {files['test']}")):
        extra = ids[~ids.isin(other)]
        if len(extra):
            raise UsageError(f"{len(extra)} id(s) {what} (e.g. {show(extra.iloc[0])}): the sample's first "
                             f"column must be the test file's id column {test_ids.name!r}; see --id")


def _target(header: dict, predicted: list, id_col: str, target: str | None, files: dict) -> str:
    """The target: given; or the one train column test lacks; or the sample's column that train has."""
    train = header["train"]
    if target is not None:
        if target not in train or target == id_col:
            raise UsageError(f"--target {target}: not a column of {files['train']}{did_you_mean(target, train)}")
        return target
    candidates = [c for c in train if c not in header["test"] and c != id_col]
    named = [c for c in predicted if c in train]     # the sample's prediction columns that train has
    if len(candidates) == 1 and named in ([], candidates):
        return candidates[0]
    if len(named) == 1 and (not candidates or named[0] in candidates):
        return named[0]            # the sample settles it: several train-only columns, one predicted
    if not candidates and not named:
        raise UsageError(f"{files['train']} has no column that {files['test']} lacks, and the sample's columns "
                         f"({', '.join(predicted)}) are not in it; name the target with --target")
    raise UsageError(f"cannot tell the target: {files['train']} columns not in {files['test']}: "
                     f"{', '.join(candidates) or 'none'}; the sample predicts {', '.join(predicted)}; "
                     "name it with --target")


def _problem(y: pd.Series, problem: str | None, sample: pd.DataFrame, predicted: list, source: str,
             target: str) -> tuple[str, tuple]:
    """("binary" | "multiclass" | "regression", classes) from the target's values and the flag."""
    if problem is not None and problem not in PROBLEM_FLAGS:
        raise UsageError(f"--problem {problem}: one of {', '.join(PROBLEM_FLAGS)}{did_you_mean(problem, PROBLEM_FLAGS)}")
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if numeric and not np.isfinite(y).all():
        bad = int((~np.isfinite(y)).sum())
        raise UsageError(f"{source}: target {target}: {bad} missing or infinite value(s); "
                         "every training row needs a target")
    if y.isna().any():
        raise UsageError(f"{source}: target {target}: {int(y.isna().sum())} missing value(s); "
                         "every training row needs a target")
    values = pd.unique(y)
    if len(values) < 2:
        raise UsageError(f"{source}: target {target} has one value ({show(values[0])}): nothing to learn")
    whole = numeric and integer_valued(y)
    if problem == "regression":
        if not numeric:
            raise UsageError(f"--problem regression: target {target} is not numeric (e.g. {show(values[0])})")
        return "regression", ()
    if problem is None and numeric and (not whole or len(values) > MAX_INTEGER_CLASSES):
        return "regression", ()
    if numeric and not whole:
        raise UsageError(f"--problem {problem}: target {target} holds fractions (e.g. "
                         f"{show(y[y != y.round()].iloc[0])}); classes are labels or whole numbers")
    classes = tuple(sorted((python_value(v, whole) for v in values), key=lambda v: (str(type(v)), v)))
    if problem is None and numeric and len(values) > 2:
        sample_values = sample[predicted[0]] if len(predicted) == 1 else None
        if class_columns(classes, predicted) is None:
            if sample_values is not None and pd.api.types.is_float_dtype(sample_values) \
                    and not integer_valued(sample_values.dropna()):
                return "regression", ()    # a label submission could not hold 2.5
            raise UsageError(f"{source}: target {target} has {len(values)} integer values ({show(classes[0])}.."
                             f"{show(classes[-1])}): classes or a quantity? pass --problem classification "
                             "or --problem regression")
    kind = "binary" if len(classes) == 2 else "multiclass"
    if problem in ("binary", "multiclass") and problem != kind:
        raise UsageError(f"--problem {problem}: target {target} has {len(classes)} values; that is {kind}")
    return kind, classes


def _submission(problem: str, classes: tuple, sample: pd.DataFrame, predicted: list, given: str | None,
                source: str) -> str:
    """The submission form: from the sample's columns and values, or `given` if it fits them."""
    if given is not None and given not in SUBMISSIONS:
        raise UsageError(f"--submission {given}: one of {', '.join(SUBMISSIONS)}{did_you_mean(given, SUBMISSIONS)}")
    if problem == "regression":
        if len(predicted) > 1:
            raise UsageError(f"{source}: {len(predicted)} prediction columns for one regression target; "
                             "several targets are not supported (name the one to predict with --target)")
        form = "values"
    elif len(predicted) > 1:
        if class_columns(classes, predicted) is None:
            raise UsageError(f"{source}: {len(predicted)} prediction columns ({', '.join(predicted[:4])}"
                             f"{', ...' if len(predicted) > 4 else ''}) that are not the classes of the target: "
                             "class probabilities or several targets? name the target with --target")
        form = "class_probabilities"
    else:
        values = sample[predicted[0]].dropna()
        inside = pd.api.types.is_float_dtype(values) and len(values) and ((values > 0) & (values < 1)).all()
        form = "probability" if problem == "binary" and inside else "labels"
    if given is None or given == form:
        return form
    fits = {"labels": problem != "regression" and len(predicted) == 1,
            "probability": problem == "binary" and len(predicted) == 1,
            "class_probabilities": class_columns(classes, predicted) is not None, "values": False}
    if not fits[given]:
        raise UsageError(f"--submission {given} does not fit {source} ({len(predicted)} prediction column(s)) "
                         f"for a {problem} target; it reads as {form}")
    return given


def _same_as_id(values: pd.Series, ids: pd.Series) -> bool:
    """A column repeating the id (a saved index): the first value is checked before the whole column."""
    return str(values.iat[0]) == ids.iat[0] and bool((values.astype(str) == ids).all())
