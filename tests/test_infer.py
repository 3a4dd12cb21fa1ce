"""Inferring a competition from its files: each rule, each ambiguity naming the flag that settles it,
and the real Kaggle folders under ../shared/datasets."""
import gzip
import zipfile

import numpy as np
import pandas as pd
import pytest

from core.errors import UsageError
from data.infer import find_files, infer
from tests.conftest import SHARED


def comp(folder, train, test=None, sample=None, files=("train.csv", "test.csv", "sample_submission.csv")):
    """A competition folder from frames (or CSV text); test and sample default to train's shape:
    test = train without `y`, sample = id plus `y` (0)."""
    folder.mkdir(exist_ok=True)
    train = pd.DataFrame(train)
    test = train.drop(columns="y") if test is None else pd.DataFrame(test)
    sample = pd.DataFrame({"id": test["id"], "y": 0}) if sample is None else pd.DataFrame(sample)
    for frame, name in zip((train, test, sample), files):
        frame.to_csv(folder / name, index=False)
    return folder


def base(n=30, **extra):
    """A binary table: id, y in {0, 1}, a numeric and a categorical feature."""
    rng = np.random.default_rng(0)
    return {"id": range(1, n + 1), "x": rng.normal(size=n).round(3), "city": rng.choice(["a", "b", "c"], n),
            "y": np.arange(n) % 2, **extra}


def fails(folder, *words, **kwargs) -> str:
    with pytest.raises(UsageError) as e:
        infer("demo", folder, **kwargs)
    message = str(e.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


# ---------------------------------------------------------------- find_files

def test_find_files_takes_plain_gz_and_kaggle_names(tmp_path):
    (tmp_path / "train.csv.gz").write_bytes(gzip.compress(b"id,y\n1,0\n"))
    (tmp_path / "Test.csv").write_text("id\n1\n")
    (tmp_path / "sampleSubmission.csv").write_text("id,y\n1,0\n")
    assert find_files(tmp_path) == {"train": "train.csv.gz", "test": "Test.csv", "sample": "sampleSubmission.csv"}


def test_find_files_looks_inside_the_competition_zip_and_prefers_plain_files(tmp_path):
    with zipfile.ZipFile(tmp_path / "comp.zip", "w") as zf:
        for name in ("train.csv", "test.csv", "gender_submission.csv"):
            zf.writestr(name, "id,y\n1,0\n")
    assert find_files(tmp_path) == {"train": "comp.zip::train.csv", "test": "comp.zip::test.csv",
                                    "sample": "comp.zip::gender_submission.csv"}
    (tmp_path / "train.csv").write_text("id,y\n1,0\n")
    assert find_files(tmp_path)["train"] == "train.csv"


def test_find_files_takes_any_submission_csv_but_not_two(tmp_path):
    for name in ("train.csv", "test.csv", "my_submission_example.csv"):
        (tmp_path / name).write_text("id,y\n1,0\n")
    assert find_files(tmp_path)["sample"] == "my_submission_example.csv"
    (tmp_path / "submission_old.csv").write_text("id,y\n1,0\n")
    with pytest.raises(UsageError, match="several sample submissions"):
        find_files(tmp_path)


def test_find_files_names_what_it_found_and_what_is_missing(tmp_path):
    (tmp_path / "train.csv").write_text("id,y\n1,0\n")
    with pytest.raises(UsageError, match=r"found train train.csv; missing test.csv, the sample submission"):
        find_files(tmp_path)
    with pytest.raises(UsageError, match="not a folder"):
        find_files(tmp_path / "train.csv")
    (tmp_path / "broken.zip").write_text("not a zip")
    with pytest.raises(UsageError, match="broken.zip: cannot read as zip"):
        find_files(tmp_path)


# ---------------------------------------------------------------- id and target

def test_a_plain_binary_competition(tmp_path):
    spec = infer("demo", comp(tmp_path / "c", base()))
    assert (spec.id_col, spec.target, spec.problem, spec.classes) == ("id", "y", "binary", (0, 1))
    assert (spec.submission, spec.prediction_columns, spec.metric) == ("labels", ("y",), "accuracy")
    assert spec.columns == {"x": "numeric", "city": "categorical"}
    assert spec.data_dir == str((tmp_path / "c").resolve()) and spec.na_values == ()


def test_text_ids_stay_verbatim_and_must_match_the_sample(tmp_path):
    ids = [f"{i:04d}_01" for i in range(30)]
    spec = infer("demo", comp(tmp_path / "c", {**base(), "id": ids}))
    assert spec.id_col == "id"
    sample = pd.DataFrame({"id": ids[:28] + ["9999_01", "9998_01"], "y": 0})
    fails(comp(tmp_path / "d", {**base(), "id": ids}, sample=sample), "2 id(s)", "'0028_01'", "--id")


def test_id_col_overrides_the_samples_first_column(tmp_path):
    train = {**base(), "key": range(100, 130)}
    test = pd.DataFrame(train).drop(columns="y")
    sample = pd.DataFrame({"Id": test["key"], "y": 0})
    fails(comp(tmp_path / "c", train, test, sample), "no id column 'Id'", "--id")
    spec = infer("demo", tmp_path / "c", id_col="key")
    assert spec.id_col == "key" and "key" not in spec.columns


def test_target_from_the_sample_when_test_has_every_train_column(tmp_path):
    train = base()
    test = pd.DataFrame(train).assign(y=np.nan)        # a blank target column in test
    assert infer("demo", comp(tmp_path / "c", train, test)).target == "y"


def test_several_candidates_need_target_unless_the_sample_names_one(tmp_path):
    train = {**base(), "leak": range(30)}
    test = pd.DataFrame(train).drop(columns=["y", "leak"])
    spec = infer("demo", comp(tmp_path / "c", train, test))          # the sample predicts y
    assert spec.target == "y" and "leak" not in spec.columns
    sample = pd.DataFrame({"id": test["id"], "prediction": 0})
    fails(comp(tmp_path / "d", train, test, sample), "y, leak", "--target")
    assert infer("demo", tmp_path / "d", target="leak", problem="regression").target == "leak"
    fails(tmp_path / "d", "--target yy", "did you mean 'y'", target="yy")


def test_train_minus_test_disagreeing_with_the_sample_needs_target(tmp_path):
    train = {**base(), "other": range(30)}
    test = pd.DataFrame(train).drop(columns=["y"])
    sample = pd.DataFrame({"id": test["id"], "other": 0})
    fails(comp(tmp_path / "c", train, test, sample), "columns not in test.csv: y", "predicts other", "--target")


# ---------------------------------------------------------------- problem

@pytest.mark.parametrize("y, problem, classes", [
    ([True, False] * 15, "binary", (False, True)),
    (["cat", "dog", "emu"] * 10, "multiclass", ("cat", "dog", "emu")),
    (np.linspace(0, 1, 30), "regression", ()),
    ([0.0, 1.0] * 15, "binary", (0, 1)),                  # whole floats: 0/1 as a spreadsheet writes them
    (range(30), "regression", ()),                         # more than 20 integers: a quantity
])
def test_problem_from_the_target(tmp_path, y, problem, classes):
    spec = infer("demo", comp(tmp_path / "c", {**base(), "y": list(y)}))
    assert (spec.problem, spec.classes) == (problem, classes)
    assert [type(c) for c in spec.classes] == [type(c) for c in classes]
    assert spec.submission == ("values" if problem == "regression" else "labels")
    assert spec.metric == ("rmse" if problem == "regression" else "accuracy")


def test_a_few_integers_are_ambiguous_until_problem_says(tmp_path):
    folder = comp(tmp_path / "c", {**base(), "y": [1, 2, 3, 4, 5] * 6})
    fails(folder, "5 integer values", "--problem classification", "--problem regression")
    assert infer("demo", folder, problem="classification").classes == (1, 2, 3, 4, 5)
    assert infer("demo", folder, problem="multiclass").problem == "multiclass"
    assert infer("demo", folder, problem="regression").problem == "regression"
    fails(folder, "--problem binary", "5 values", problem="binary")
    fails(folder, "--problem regresion", "did you mean 'regression'", problem="regresion")


def test_a_sample_that_names_the_classes_or_holds_fractions_settles_integers(tmp_path):
    train = {**base(), "y": [0, 1, 2] * 10}
    ids = pd.DataFrame(train)["id"]
    spec = infer("demo", comp(tmp_path / "c", train, sample={"id": ids, "0": 1.0, "1": 0.0, "2": 0.0}))
    assert (spec.problem, spec.submission, spec.metric) == ("multiclass", "class_probabilities", "logloss")
    spec = infer("demo", comp(tmp_path / "d", train, sample={"id": ids, "Class_0": 1, "Class_1": 0, "Class_2": 0}))
    assert spec.prediction_columns == ("Class_0", "Class_1", "Class_2") and spec.submission == "class_probabilities"
    assert infer("demo", comp(tmp_path / "e", train, sample={"id": ids, "y": 1.5})).problem == "regression"


def test_several_prediction_columns_that_are_not_the_classes_need_target(tmp_path):
    train = {**base(), "y": ["a", "b", "c"] * 10}
    ids = pd.DataFrame(train)["id"]
    fails(comp(tmp_path / "c", train, sample={"id": ids, "p": 0, "q": 0, "r": 0}),
          "3 prediction columns", "class probabilities or several targets", "--target")


def test_a_useless_or_missing_target_is_one_line(tmp_path):
    fails(comp(tmp_path / "a", {**base(), "y": 1}), "target y has one value")
    fails(comp(tmp_path / "b", {**base(), "y": [np.nan, np.inf] + list(np.linspace(0, 1, 28))}),
          "2 missing or infinite")
    fails(comp(tmp_path / "c", {**base(), "y": ["a", None] * 15}), "15 missing value(s)")
    fails(comp(tmp_path / "d", {**base(), "y": ["a", "b"] * 15}), "--problem regression", "not numeric",
          problem="regression")
    fails(comp(tmp_path / "e", {**base(), "y": np.linspace(0, 1, 30)}), "--problem binary", "fractions",
          problem="binary")


# ---------------------------------------------------------------- submission and metric

def test_probability_submission_from_a_sample_of_halves(tmp_path):
    train = base()
    folder = comp(tmp_path / "c", train, sample={"id": train["id"], "y": 0.5})
    spec = infer("demo", folder)
    assert (spec.submission, spec.metric) == ("probability", "roc_auc")
    chosen = infer("demo", folder, submission="labels", metric="f1")
    assert (chosen.submission, chosen.metric) == ("labels", "f1")
    fails(folder, "--metric acuracy", "did you mean 'accuracy'", metric="acuracy")
    fails(folder, "--submission values", "does not fit", submission="values")
    fails(folder, "--submission probabilty", "did you mean 'probability'", submission="probabilty")


def test_multiclass_with_one_column_submits_labels(tmp_path):
    spec = infer("demo", comp(tmp_path / "c", {**base(), "y": ["a", "b", "c"] * 10}))
    assert (spec.problem, spec.submission, spec.metric) == ("multiclass", "labels", "accuracy")


# ---------------------------------------------------------------- columns and missing values

def test_column_types(tmp_path):
    n = 120
    train = {**base(n), "flag": [True, False] * (n // 2), "gappy": ["True", "False", ""] * (n // 3),
             "name": [f"Person {i}" for i in range(n)], "const": 7, "copy_of_id": range(1, n + 1)}
    spec = infer("demo", comp(tmp_path / "c", train))
    assert spec.columns == {"x": "numeric", "city": "categorical", "flag": "boolean", "gappy": "boolean",
                            "name": "text", "const": "numeric"}        # the id's copy is left out


def test_drop_and_column_types_override_with_did_you_mean(tmp_path):
    folder = comp(tmp_path / "c", {**base(), "code": [1, 2, 3] * 10})
    spec = infer("demo", folder, drop=("x",), column_types={"code": "categorical"})
    assert spec.columns == {"city": "categorical", "code": "categorical"}
    fails(folder, "--drop xx", "did you mean 'x'", drop=("xx",))
    fails(folder, "--text cod", "did you mean 'code'", column_types={"cod": "text"})
    fails(folder, "'numerc' for code", "did you mean 'numeric'", column_types={"code": "numerc"})
    fails(folder, "--numeric city", "holds text", column_types={"city": "numeric"})


def test_missing_value_tokens_make_a_column_numeric(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    rows = "".join(f"{i},{v},{i % 2}\n" for i, v in enumerate(["1.5", "?", "2", "-", "3"] * 6))
    (folder / "train.csv").write_text("id,age,y\n" + rows)
    (folder / "test.csv").write_text("id,age\n1,2\n")
    (folder / "sample_submission.csv").write_text("id,y\n1,0\n")
    spec = infer("demo", folder)
    assert spec.columns == {"age": "numeric"} and spec.na_values == ("-", "?")


def test_user_na_values_are_read_as_missing(tmp_path):
    folder = comp(tmp_path / "c", {**base(), "score": ["1", "2", "unknown"] * 10, "void": "unknown"})
    spec = infer("demo", folder, na_values=("unknown",), drop=("void",))
    assert spec.columns["score"] == "numeric" and spec.na_values == ("unknown",)
    fails(folder, "column void is entirely missing", "--na-values", "--drop void", na_values=("unknown",))
    fails(comp(tmp_path / "d", {**base(), "y": "-"}), "target y is entirely missing", na_values=("-",))


# ---------------------------------------------------------------- the real competitions

def real(name: str, file: str):
    if not (SHARED / name / file).is_file():
        pytest.skip(f"../shared/datasets/{name}/{file} absent")
    return infer(name, SHARED / name)


@pytest.mark.integration
def test_house_prices_is_a_regression():
    spec = real("house_prices", "train.csv.gz")
    assert (spec.id_col, spec.target, spec.problem, spec.submission, spec.metric) == \
        ("Id", "SalePrice", "regression", "values", "rmse")
    assert spec.columns["Neighborhood"] == "categorical" and spec.columns["LotArea"] == "numeric"


@pytest.mark.integration
def test_spaceship_titanic_is_binary_with_text_ids():
    spec = real("spaceship_titanic", "train.csv.gz")
    assert (spec.id_col, spec.target, spec.problem, spec.classes, spec.submission, spec.metric) == \
        ("PassengerId", "Transported", "binary", (False, True), "labels", "accuracy")
    assert spec.columns["CryoSleep"] == "boolean" and spec.columns["HomePlanet"] == "categorical"


@pytest.mark.integration
def test_otto_submits_class_probabilities():
    spec = real("otto", "train.csv.gz")
    assert (spec.problem, spec.submission, spec.metric, len(spec.classes)) == \
        ("multiclass", "class_probabilities", "logloss", 9)
    assert set(spec.columns.values()) == {"numeric"} and len(spec.columns) == 93


@pytest.mark.integration
def test_titanic_reads_gender_submission():
    spec = real("titanic", "train.csv")
    assert spec.files["sample"] == "gender_submission.csv"
    assert (spec.id_col, spec.target, spec.problem, spec.classes, spec.submission, spec.metric) == \
        ("PassengerId", "Survived", "binary", (0, 1), "labels", "accuracy")
    assert spec.columns["Sex"] == "categorical" and spec.columns["Name"] == "text"
