"""CompetitionSpec's JSON: exact round trips, one-line errors naming file and key, the summary."""
import json

import pytest

from core.errors import UsageError
from data import spec as specs
from data.spec import (
    CompetitionSpec,
    class_columns,
    default_metric,
    from_json,
    summary,
    to_json,
)


def make(**changes) -> CompetitionSpec:
    fields = {"name": "demo", "data_dir": "/data/demo",
                  "files": {"train": "train.csv", "test": "test.csv.gz", "sample": "demo.zip::sample_submission.csv"},
                  "id_col": "Id", "target": "y", "problem": "binary", "classes": (False, True), "submission": "labels",
                  "prediction_columns": ("y",), "metric": "accuracy",
                  "columns": {"age": "numeric", "city": "categorical", "vip": "boolean", "bio": "text"},
                  "na_values": ("?",)}
    return CompetitionSpec(**{**fields, **changes})


@pytest.mark.parametrize("classes", [(False, True), (0, 1), ("0", "1"), (1, 2, 3), ("a", "b", "c")])
def test_json_round_trips_classes_with_their_type(classes):
    problem = "binary" if len(classes) == 2 else "multiclass"
    spec = make(classes=classes, problem=problem)
    back = from_json(to_json(spec), "spec.json")
    assert back == spec
    assert [type(c) for c in back.classes] == [type(c) for c in classes]
    assert list(back.columns) == list(spec.columns)       # train order survives


def test_regression_and_class_probabilities_round_trip(tmp_path):
    reg = make(problem="regression", classes=(), submission="values", metric="rmsle", columns={"x": "numeric"})
    otto = make(problem="multiclass", classes=("Class_1", "Class_2", "Class_10"), submission="class_probabilities",
                prediction_columns=("Class_1", "Class_2", "Class_10"), metric="logloss")
    for spec in (reg, otto):
        specs.save(spec, tmp_path / "spec.json")
        assert specs.load(tmp_path / "spec.json") == spec


def edited(**changes) -> str:
    raw = json.loads(to_json(make()))
    for key, value in changes.items():
        if value is ...:
            del raw[key]
        else:
            raw[key] = value
    return json.dumps(raw)


@pytest.mark.parametrize("changes, words", [
    ({"problme": "binary"}, ["'problme'", "did you mean 'problem'"]),
    ({"target": ...}, ["missing key 'target'"]),
    ({"target": 3}, ["'target'", "expected a string"]),
    ({"problem": "classification"}, ["'problem'", "binary, multiclass, regression"]),
    ({"submission": "probabilities"}, ["'submission'", "did you mean 'probability'"]),
    ({"metric": "acuracy"}, ["'metric'", "did you mean 'accuracy'"]),
    ({"columns": {"age": "float"}}, ["'columns'", "'age'", "unknown type 'float'"]),
    ({"columns": ["age"]}, ["'columns'", "object"]),
    ({"classes": [0, "1"]}, ["'classes'", "one type"]),
    ({"classes": [0.0, 1.0]}, ["'classes'", "one type"]),
    ({"classes": [1, 1]}, ["'classes'", "twice"]),
    ({"classes": "ab"}, ["'classes'", "expected a list"]),
    ({"files": {"train": "train.csv"}}, ["'files'", "train, test and sample"]),
    ({"na_values": [1]}, ["'na_values'", "strings"]),
    ({"problem": "multiclass"}, ["'classes'", "3 or more"]),
    ({"problem": "regression"}, ["'classes'", "no classes"]),
    ({"submission": "values"}, ["'submission'", "'values'"]),
    ({"submission": "class_probabilities"}, ["'prediction_columns'", "one column per class"]),
    ({"prediction_columns": ["a", "b"]}, ["'prediction_columns'", "exactly one"]),
    ({"columns": {"y": "numeric"}}, ["'columns'", "target"]),
])
def test_a_bad_spec_is_one_line_naming_file_and_key(changes, words):
    with pytest.raises(UsageError) as e:
        from_json(edited(**changes), "runs/x/spec.json")
    message = str(e.value)
    assert "\n" not in message and message.startswith("runs/x/spec.json: ")
    for word in words:
        assert word in message


def test_not_json_and_not_an_object_are_one_line(tmp_path):
    for text in ("{nope", "[1, 2]"):
        with pytest.raises(UsageError, match="^s.json: "):
            from_json(text, "s.json")
    with pytest.raises(UsageError, match="not found"):
        specs.load(tmp_path / "absent.json")


def test_class_columns_match_by_name_or_shared_prefix():
    assert class_columns((0, 1, 2), ["0", "1", "2"]) == {"0": 0, "1": 1, "2": 2}
    assert class_columns((1, 2, 10), ["Class_1", "Class_2", "Class_10"]) == {"Class_1": 1, "Class_2": 2, "Class_10": 10}
    # sorted string classes put Class_10 second; the sample's order is kept and matched by name
    assert class_columns(("Class_1", "Class_10", "Class_2"), ["Class_1", "Class_2", "Class_10"])["Class_10"] == "Class_10"
    assert class_columns((0, 1, 2), ["a", "b", "c"]) is None
    assert class_columns((0, 1), ["0"]) is None


def test_default_metric_follows_problem_and_submission():
    assert [default_metric(p, s) for p, s in [("binary", "labels"), ("binary", "probability"),
                                              ("multiclass", "labels"), ("multiclass", "class_probabilities"),
                                              ("regression", "values")]] == \
        ["accuracy", "roc_auc", "accuracy", "logloss", "rmse"]


def test_summary_names_what_was_inferred():
    text = "\n".join(summary(make()))
    for part in ("train train.csv", "sample demo.zip::sample_submission.csv", "id Id, target y: binary",
                 "(False, True)", "labels", "accuracy", "4 feature columns", "1 text (bio)", "'?'"):
        assert part in text
    many = make(problem="multiclass", classes=tuple(range(12)), submission="labels")
    assert "12 in all" in "\n".join(summary(many))
    assert not any("missing" in line for line in summary(make(na_values=())))


def test_metric_names_are_the_metrics_pipelines_score():
    """data/ may not import pipelines/, so the names are written twice; this keeps them one list."""
    from pipelines.metrics import METRICS
    assert set(specs.METRIC_NAMES) == set(METRICS)


def test_rows_round_trips_and_a_bad_count_is_one_line(tmp_path):
    import dataclasses
    from data.spec import CompetitionSpec, from_json, to_json
    spec = CompetitionSpec(name="t", data_dir="/d", files={"train": "a", "test": "b", "sample": "c"}, id_col="id",
                           target="y", problem="regression", submission="values", prediction_columns=("y",),
                           metric="rmse", columns={"x": "numeric"}, rows=1234)
    assert from_json(to_json(spec), "s.json") == spec
    bad = to_json(dataclasses.replace(spec, rows=-1))
    with pytest.raises(UsageError, match="s.json: key 'rows': expected a count of rows"):
        from_json(bad, "s.json")
