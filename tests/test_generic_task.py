"""A competition with no task file, end to end through the CLI: inferred from a folder, trained,
predicted by name from the run's own spec, `init`'s editable spec, and the one-line refusals."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from cli import main
from tests.conftest import files_under

QUICK = ["--folds", "2", "--epochs", "2", "--jobs", "1", "--quiet", "--set", "bags=1"]


def competition(folder, kind: str = "binary", rows: int = 60):
    """train/test/sample_submission.csv of a small competition: string ids, a True/False or
    multi-class or numeric target, numbers, a category and a Cabin-like text column."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)

    def table(n: int, start: int) -> pd.DataFrame:
        x = rng.normal(size=n)
        return pd.DataFrame({"PassengerId": [f"{i:04d}_01" for i in range(start, start + n)], "x": x,
                             "spend": rng.exponential(100, n).round(), "planet": rng.choice(["Earth", "Mars"], n),
                             "cabin": [f"{d}/{i}/{s}" for d, i, s in zip(rng.choice(list("ABC"), n), range(n),
                                                                          rng.choice(["P", "S"], n))]})
    train, test = table(rows, 1), table(rows // 2, rows + 1)
    if kind == "binary":
        train["Transported"] = train.x > 0
        sample = pd.DataFrame({"PassengerId": test.PassengerId, "Transported": False})
    elif kind == "multiclass":
        train["Transported"] = [f"Class_{i % 10 + 1}" for i in range(rows)]
        sample = pd.DataFrame({"PassengerId": test.PassengerId,
                               **{f"Class_{i}": 0.1 for i in range(1, 11)}})
    else:
        train["Transported"] = 1000 + 100 * train.x.to_numpy() ** 2
        sample = pd.DataFrame({"PassengerId": test.PassengerId, "Transported": 1000.0})
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    sample.to_csv(folder / "sample_submission.csv", index=False)
    return folder


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"


def train(name, folder, runs, out, *extra) -> int:
    return main(["train", name, "--data-dir", str(folder), "--runs-dir", str(runs), "--out", str(out), *QUICK, *extra])


def test_a_new_competition_trains_by_name_and_folder_and_predicts_by_name(tmp_path, runs, capsys):
    folder = competition(tmp_path / "ship")
    assert train("ship", folder, runs, tmp_path / "sub.csv") == 0
    sub = pd.read_csv(tmp_path / "sub.csv", dtype=str)
    test = pd.read_csv(folder / "test.csv", dtype=str)
    assert list(sub.columns) == ["PassengerId", "Transported"]
    assert sub.PassengerId.tolist() == test.PassengerId.tolist()             # '0061_01' kept verbatim
    assert set(sub.Transported) <= {"True", "False"}                          # as the sample writes them
    (run,) = (runs / "ship").iterdir()
    assert json.loads((run / "spec.json").read_text())["target"] == "Transported"
    # later commands by name alone, from the run's spec copy: no --data-dir
    assert main(["predict", "ship", "--runs-dir", str(runs), "--out", str(tmp_path / "again.csv")]) == 0
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "sub.csv").read_bytes()
    assert main(["runs", "ship", "--runs-dir", str(runs)]) == 0
    assert main(["report", "--runs-dir", str(runs)]) == 0
    assert "ship" in capsys.readouterr().out


def test_the_summary_is_printed_before_training(tmp_path, runs, capsys):
    folder = competition(tmp_path / "ship")
    args = ["train", "ship", "--data-dir", str(folder), "--runs-dir", str(runs), "--out", str(tmp_path / "s.csv"),
            "--folds", "2", "--epochs", "1", "--jobs", "1", "--set", "bags=1"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "id PassengerId, target Transported: binary, 2 classes (False, True)" in err
    assert "submission: labels (Transported), metric accuracy" in err


def test_class_probability_columns_follow_their_class_not_the_sorted_order(tmp_path, runs):
    folder = competition(tmp_path / "multi", "multiclass", rows=120)
    assert train("multi", folder, runs, tmp_path / "sub.csv") == 0
    sub = pd.read_csv(tmp_path / "sub.csv")
    assert list(sub.columns) == ["PassengerId", *[f"Class_{i}" for i in range(1, 11)]]
    assert np.allclose(sub.iloc[:, 1:].sum(1), 1)
    (run,) = (runs / "multi").iterdir()
    oof = pd.read_csv(run / "oof.csv")
    # the model's outputs are the sorted classes (Class_1, Class_10, Class_2, ...): the submission's
    # Class_10 column must be output 1, not output 9
    classes = sorted(f"Class_{i}" for i in range(1, 11))
    assert [c for c in oof.columns if c.startswith("Class_")] == classes


def test_regression_writes_values_and_rmsle_is_taken(tmp_path, runs):
    folder = competition(tmp_path / "price", "regression")
    assert train("price", folder, runs, tmp_path / "sub.csv", "--metric", "rmsle") == 0
    sub = pd.read_csv(tmp_path / "sub.csv")
    assert sub.Transported.dtype.kind == "f" and (sub.Transported >= 0).all()
    (run,) = (runs / "price").iterdir()
    assert json.loads((run / "metrics.json").read_text())["metric"] == "rmsle"


def test_init_writes_an_editable_spec_that_train_then_uses(tmp_path, runs, capsys):
    folder = competition(tmp_path / "ship")
    assert main(["init", "ship", "--data-dir", str(folder), "--runs-dir", str(runs), "--metric", "roc_auc"]) == 0
    spec_file = runs / "ship" / "spec.json"
    assert f"spec: {spec_file}" in capsys.readouterr().out
    spec = json.loads(spec_file.read_text())
    spec["columns"]["x"] = "categorical"                       # the user edits it
    spec_file.write_text(json.dumps(spec))
    assert main(["train", "ship", "--runs-dir", str(runs), "--out", str(tmp_path / "s.csv"), *QUICK]) == 0
    (run,) = [p for p in (runs / "ship").iterdir() if p.is_dir()]
    saved = json.loads((run / "spec.json").read_text())
    assert saved["metric"] == "roc_auc" and saved["columns"]["x"] == "categorical"
    assert main(["tasks", "--runs-dir", str(runs)]) == 0
    assert re.search(r"^ship .*inferred from its files", capsys.readouterr().out, re.M)


BAD = {
    # --data-dir was given: the line does not ask for it again (no "(a new competition: pass --data-dir")
    "typo of a task": (["train", "otot"], r"unknown task 'otot' \(did you mean 'otto'\?\); known: [^(]*; to make a "
                                          r"new competition of that name anyway: python cli.py init otot --data-dir DIR"),
    "no folder": (["train", "brand_new"], r"unknown task 'brand_new'.*pass --data-dir DIR"),
    "flag on a task file": (["train", "titanic", "--target", "Survived"], r"titanic has a task file.*--target"),
    "metric misfit": (["train", "ship", "--metric", "rmse"], r"metric rmse does not score a binary problem"),
    "unknown metric": (["train", "ship", "--metric", "acc"], r"unknown metric.*accuracy"),
    "unknown target": (["train", "ship", "--target", "nope"], r"nope"),
    "two types": (["train", "ship", "--numeric", "x", "--categorical", "x"], r"column\(s\) x given two types"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, tmp_path, runs, capsys):
    folder = competition(tmp_path / "ship")
    args, msg = BAD[case]
    out = tmp_path / "sub.csv"
    code = main(args + ["--data-dir", str(folder), "--runs-dir", str(runs), "--out", str(out), "--quiet"]
                if case != "no folder" else args + ["--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(msg, err), err
    assert not out.exists() and files_under(runs) == []


def test_inference_flags_without_a_folder_are_refused_not_ignored(tmp_path, runs, capsys):
    folder = competition(tmp_path / "ship")
    assert train("ship", folder, runs, tmp_path / "a.csv") == 0
    capsys.readouterr()
    assert main(["train", "ship", "--runs-dir", str(runs), "--metric", "roc_auc", "--quiet"]) == 2
    assert "--metric apply when ship is inferred from its files: pass --data-dir DIR too" in capsys.readouterr().err


def test_a_spec_file_refuses_inference_flags_and_init_does_not_overwrite(tmp_path, runs, capsys):
    folder = competition(tmp_path / "ship")
    assert main(["init", "ship", "--data-dir", str(folder), "--runs-dir", str(runs)]) == 0
    capsys.readouterr()
    assert main(["init", "ship", "--data-dir", str(folder), "--runs-dir", str(runs)]) == 2
    assert "exists; edit it, or pass --force" in capsys.readouterr().err
    assert main(["train", "ship", "--runs-dir", str(runs), "--target", "x", "--quiet"]) == 2
    assert "edit it (or delete it to infer again) instead of passing --target" in capsys.readouterr().err
    assert main(["submit", "ship", "-m", "x", "--file", str(folder / "sample_submission.csv"),
                 "--runs-dir", str(runs)]) == 2
    assert "name its Kaggle competition with --competition" in capsys.readouterr().err


def test_the_submission_maps_each_output_to_its_named_class_column():
    from data.spec import CompetitionSpec
    from tasks.generic import submission_writer
    classes = tuple(sorted(f"Class_{i}" for i in range(1, 11)))          # Class_1, Class_10, Class_2, ...
    spec = CompetitionSpec(name="m", data_dir="/d", files={"train": "a", "test": "b", "sample": "c"}, id_col="id",
                           target="t", problem="multiclass", classes=classes, submission="class_probabilities",
                           prediction_columns=tuple(f"Class_{i}" for i in range(1, 11)), metric="logloss")
    pred = np.eye(10)[[1, 0]]                     # row 0: output 1 (Class_10); row 1: output 0 (Class_1)
    sub = submission_writer(spec)(np.array(["a", "b"]), pred, None)
    assert sub.loc[0, "Class_10"] == 1 and sub.loc[1, "Class_1"] == 1
    labels = submission_writer(spec.__class__(**{**spec.__dict__, "submission": "labels",
                                                 "prediction_columns": ("t",)}))(np.array(["a", "b"]), pred, None)
    assert labels.t.tolist() == ["Class_10", "Class_1"]


@pytest.mark.slow
def test_tune_and_blend_reach_an_inferred_competition_by_name(tmp_path, runs, capsys):
    folder = competition(tmp_path / "ship")
    assert train("ship", folder, runs, tmp_path / "a.csv") == 0
    assert train("ship", folder, runs, tmp_path / "b.csv", "--seed", "1") == 0
    # no --data-dir: the newest run's spec copy names the folder
    assert main(["tune", "ship", "--trials", "1", "--folds", "2", "--runs-dir", str(runs), "--quiet",
                 "--set", "epochs=1", "--set", "bags=1"]) == 0
    assert "best params:" in capsys.readouterr().out
    assert main(["blend", "ship", "--top", "2", "--runs-dir", str(runs), "--out", str(tmp_path / "blend.csv"),
                 "--quiet"]) == 0
    assert pd.read_csv(tmp_path / "blend.csv", dtype=str).PassengerId.str.match(r"\d{4}_01").all()


def test_a_competition_shipped_as_one_kaggle_zip_trains(tmp_path, runs):
    import zipfile
    loose = competition(tmp_path / "loose")
    folder = tmp_path / "zipped"
    folder.mkdir()
    with zipfile.ZipFile(folder / "spaceship-titanic.zip", "w") as zf:
        for f in loose.iterdir():
            zf.write(f, f.name)
    assert train("ship", folder, runs, tmp_path / "sub.csv") == 0
    assert pd.read_csv(tmp_path / "sub.csv", dtype=str).PassengerId.tolist() == \
        pd.read_csv(loose / "test.csv", dtype=str).PassengerId.tolist()
