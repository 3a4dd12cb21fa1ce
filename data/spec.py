"""What a tabular competition the tool has never seen is: `CompetitionSpec`, inferred from its files
by data/infer.py, saved beside a run as JSON, and turned into a `tasks.task.Task` by tasks/generic.py.

The JSON is the user's to edit (a wrong guess is fixed there or with a flag), so `from_json` checks
every key and value and says what is wrong in one line naming the file and the key. Classes keep
their type through JSON exactly: a bool target stays bool, 1 stays int, "1" stays str.
"""
from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from core.errors import UsageError, did_you_mean

PROBLEMS = ("binary", "multiclass", "regression")
SUBMISSIONS = ("labels", "probability", "class_probabilities", "values")
COLUMN_TYPES = ("numeric", "categorical", "boolean", "text")
# pipelines/metrics.py METRICS keys; named here because data/ may not import pipelines/
METRIC_NAMES = ("accuracy", "balanced_accuracy", "roc_auc", "logloss", "f1", "mcc", "qwk",
                "rmse", "rmsle", "mae", "r2")
ROLES = ("train", "test", "sample")


@dataclass(frozen=True)
class CompetitionSpec:
    name: str
    data_dir: str                      # absolute folder holding the files
    files: dict[str, str]              # {"train", "test", "sample"} -> name relative to data_dir (plain, .gz, "x.zip::m.csv")
    id_col: str                        # the sample's first column (test has it; train may)
    target: str                        # the train column to predict
    problem: str                       # "binary" | "multiclass" | "regression"
    classes: tuple = ()                # classification: the target's values, sorted, as read (bool/int/str)
    submission: str = "labels"         # "labels" | "probability" | "class_probabilities" | "values"
    prediction_columns: tuple = ()     # the sample's columns after the id, in the sample's order
    metric: str = ""                   # a METRIC_NAMES entry
    columns: dict = field(default_factory=dict)    # feature column -> COLUMN_TYPES entry, in train order
    na_values: tuple = ()              # extra tokens read as missing, beyond pandas' defaults
    rows: int = 0                      # train rows when inferred: sizes the default batch and epochs (0: unknown)


def default_metric(problem: str, submission: str) -> str:
    """The metric a competition is scored by unless told otherwise: what its submission form allows."""
    if problem == "regression":
        return "rmse"
    return {"probability": "roc_auc", "class_probabilities": "logloss"}.get(submission, "accuracy")


def class_columns(classes: tuple, columns) -> dict[str, object] | None:
    """{prediction column: class} when the columns are one per class, named str(class) or a shared
    prefix plus str(class) ("Class_1" for class 1 or "Class_1"); None otherwise. Match by name,
    not position: a sample lists Class_1..Class_10 while sorted classes put Class_10 second."""
    columns = list(columns)
    if len(columns) != len(classes) or len(classes) < 2:
        return None
    names = {str(c): c for c in classes}
    if set(columns) == set(names):
        return {col: names[col] for col in columns}
    for col in columns:          # a prefix: what the first column has before some class's name
        for name in names:
            prefix = col[:-len(name)] if col.endswith(name) else None
            if prefix and {prefix + n for n in names} == set(columns):
                return {c: names[c[len(prefix):]] for c in columns}
    return None


def to_json(spec: CompetitionSpec) -> str:
    return json.dumps(asdict(spec), indent=2) + "\n"


def save(spec: CompetitionSpec, path) -> None:
    Path(path).write_text(to_json(spec))


def load(path) -> CompetitionSpec:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: competition spec not found")
    return from_json(path.read_text(), str(path))


def from_json(text: str, source: str) -> CompetitionSpec:
    """A spec from its JSON, every field checked; `source` names the file in the error line."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{source}: not JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{source}: expected a JSON object of spec fields")
    known = [f.name for f in fields(CompetitionSpec)]
    for key in raw:
        if key not in known:
            raise UsageError(f"{source}: unknown key {key!r}{did_you_mean(key, known)}")
    required = [f.name for f in fields(CompetitionSpec) if f.default is MISSING and f.default_factory is MISSING]
    for key in required:
        if key not in raw:
            raise UsageError(f"{source}: missing key {key!r}")

    def bad(key: str, why: str) -> UsageError:
        return UsageError(f"{source}: key {key!r}: {why}")

    for key in ("name", "data_dir", "id_col", "target", "problem", "submission", "metric"):
        if key in raw and not isinstance(raw[key], str):
            raise bad(key, f"expected a string, got {json.dumps(raw[key])}")
    for key, allowed in (("problem", PROBLEMS), ("submission", SUBMISSIONS), ("metric", METRIC_NAMES + ("",))):
        if key in raw and raw[key] not in allowed:
            raise bad(key, f"unknown {key} {raw[key]!r}{did_you_mean(raw[key], allowed)}; "
                           f"one of {', '.join(a for a in allowed if a)}")
    files = raw["files"]
    if not isinstance(files, dict) or sorted(files) != sorted(ROLES) \
            or not all(isinstance(v, str) and v for v in files.values()):
        raise bad("files", "expected an object naming the train, test and sample files")
    for key in ("classes", "prediction_columns", "na_values"):
        if key in raw and not isinstance(raw[key], list):
            raise bad(key, f"expected a list, got {json.dumps(raw[key])}")
    for key in ("prediction_columns", "na_values"):
        if not all(isinstance(v, str) for v in raw.get(key, [])):
            raise bad(key, "expected a list of strings")
    if "rows" in raw and (type(raw["rows"]) is not int or raw["rows"] < 0):
        raise bad("rows", f"expected a count of rows (an integer >= 0), got {json.dumps(raw['rows'])}")
    classes = raw.get("classes", [])
    # a bool is an int to isinstance; a float is no class a CSV target is read as
    if not all(type(c) in (bool, int, str) for c in classes) or len({type(c) for c in classes}) > 1:
        raise bad("classes", "expected values of one type: all booleans, all integers or all strings")
    if len(set(classes)) != len(classes):
        raise bad("classes", "a class is listed twice")
    columns = raw.get("columns", {})
    if not isinstance(columns, dict):
        raise bad("columns", "expected an object of column -> type")
    for col, kind in columns.items():
        if kind not in COLUMN_TYPES:
            raise bad("columns", f"column {col!r}: unknown type {kind!r}{did_you_mean(str(kind), COLUMN_TYPES)}; "
                                 f"one of {', '.join(COLUMN_TYPES)}")
    spec = CompetitionSpec(**{**raw, **{k: tuple(raw[k]) for k in ("classes", "prediction_columns", "na_values")
                                        if k in raw}})
    check(spec, source)
    return spec


def check(spec: CompetitionSpec, source: str) -> None:
    """The fields agree with one another: classes with the problem, the submission form with both."""
    def bad(key: str, why: str) -> UsageError:
        return UsageError(f"{source}: key {key!r}: {why}")
    regression = spec.problem == "regression"
    if regression and spec.classes:
        raise bad("classes", "a regression has no classes; expected []")
    wrong = {"binary": len(spec.classes) != 2, "multiclass": len(spec.classes) < 3}.get(spec.problem, False)
    if wrong:
        raise bad("classes", f"a {spec.problem} problem needs {'2' if spec.problem == 'binary' else '3 or more'} "
                             f"classes, got {len(spec.classes)}")
    if regression != (spec.submission == "values"):
        raise bad("submission", f"{spec.submission!r} does not fit a {spec.problem} problem"
                                f"{'; expected values' if regression else ''}")
    if spec.submission == "probability" and spec.problem != "binary":
        raise bad("submission", "'probability' (one column, P(classes[1])) needs a binary problem")
    if spec.submission == "class_probabilities":
        if class_columns(spec.classes, spec.prediction_columns) is None:
            raise bad("prediction_columns", "class_probabilities needs one column per class, named after it")
    elif len(spec.prediction_columns) != 1:
        raise bad("prediction_columns", f"{spec.submission!r} needs exactly one prediction column, "
                                        f"got {len(spec.prediction_columns)}")
    for key in ("id_col", "target"):
        if getattr(spec, key) in spec.columns:
            raise bad("columns", f"{getattr(spec, key)!r} is the {key}, not a feature")


def summary(spec: CompetitionSpec) -> list[str]:
    """The lines printed before training: what was inferred, so a wrong guess is seen before it costs a run."""
    def few(items, n: int = 5) -> str:
        items = [str(i) for i in items]
        return ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "")
    lines = [f"competition {spec.name}: {spec.data_dir}",
             "files: " + ", ".join(f"{role} {spec.files[role]}" for role in ROLES),
             f"id {spec.id_col}, target {spec.target}: {spec.problem}"
             + (f", {len(spec.classes)} classes ({few(spec.classes)})" if spec.classes else ""),
             f"submission: {spec.submission} ({few(spec.prediction_columns, 3)}), metric {spec.metric}"]
    by_type = {kind: [c for c, k in spec.columns.items() if k == kind] for kind in COLUMN_TYPES}
    lines.append(f"{len(spec.columns)} feature columns: " + "; ".join(
        f"{len(cols)} {kind} ({few(cols, 4)})" for kind, cols in by_type.items() if cols))
    if spec.na_values:
        lines.append("also read as missing: " + ", ".join(repr(v) for v in spec.na_values))
    return lines
