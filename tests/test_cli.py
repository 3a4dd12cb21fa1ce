"""The CLI end to end on tiny Titanic-shaped data, reproducibility, and bad input."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app, main
from pipelines import TASKS
from core.errors import UsageError
from tests.conftest import ROOT, files_under

FAST = ["--folds", "2", "--epochs", "1", "--quiet", "--jobs", "1"]   # one process: these tests are not about workers


def run_ok(args):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_train_predict_runs_end_to_end(titanic_dir, runs_dir, tmp_path):
    out = run_ok(["train", "titanic", *FAST, "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir),
                  "--out", str(tmp_path / "sub.csv")])
    assert "CV accuracy" in out
    sub = pd.read_csv(tmp_path / "sub.csv")
    test = pd.read_csv(titanic_dir / "test.csv")
    assert list(sub.columns) == ["PassengerId", "Survived"]
    assert sub["PassengerId"].tolist() == test["PassengerId"].tolist()
    assert set(sub["Survived"]) <= {0, 1}
    [run] = list((runs_dir / "titanic").iterdir())
    for name in ["config.json", "metrics.json", "status.json", "oof.csv", "history.csv",
                 "fold0/encoder.joblib", "fold0/columns.json", "fold0/model0.json", "fold0/model0-mlp.pt",
                 "fold0/model0-lightgbm.txt", "fold1/model0.json"]:          # the default: mlp+lightgbm
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["metric"] == "accuracy" and 0 <= metrics["cv"]["accuracy"] <= 1
    assert len(pd.read_csv(run / "oof.csv")) == 60

    # predict rebuilds the models from the run directory alone and gives the same file
    run_ok(["predict", "titanic", "--run", "latest", "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir),
            "--out", str(tmp_path / "again.csv")])
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "sub.csv").read_bytes()

    # predict scores a new file given with --input
    new = pd.read_csv(titanic_dir / "test.csv").iloc[:5]
    new.to_csv(tmp_path / "new.csv", index=False)
    run_ok(["predict", "titanic", "--run", run.name, "--input", str(tmp_path / "new.csv"),
            "--runs-dir", str(runs_dir), "--out", str(tmp_path / "new_pred.csv")])
    assert len(pd.read_csv(tmp_path / "new_pred.csv")) == 5

    table = run_ok(["runs", "titanic", "--runs-dir", str(runs_dir)])
    assert run.name in table


def test_bundled_titanic_matches_kaggle_format(runs_dir, tmp_path):
    run_ok(["train", "titanic", *FAST, "--runs-dir", str(runs_dir), "--out", str(tmp_path / "sub.csv")])
    sub = pd.read_csv(tmp_path / "sub.csv")
    sample = pd.read_csv(ROOT / "data" / "titanic" / "gender_submission.csv")
    assert len(sub) == 418 and sub["PassengerId"].tolist() == sample["PassengerId"].tolist()
    assert sub["Survived"].dtype.kind == "i"


def test_diabetes_trains_and_predicts_an_input_file(runs_dir, tmp_path):
    run_ok(["train", "diabetes", *FAST, "--runs-dir", str(runs_dir)])
    rows = pd.read_csv(ROOT / "data" / "diabetes" / "diabetes.csv.gz", header=None).iloc[:7, :8]
    rows.to_csv(tmp_path / "patients.csv", header=False, index=False)
    run_ok(["predict", "diabetes", "--input", str(tmp_path / "patients.csv"), "--runs-dir", str(runs_dir),
            "--out", str(tmp_path / "pred.csv")])
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred.columns) == ["row", "probability", "prediction"] and len(pred) == 7
    assert pred["probability"].between(0, 1).all()
    assert (pred["prediction"] == (pred["probability"] >= 0.5)).all()


# both slow (two whole runs each, 4 s at jobs 1): the quick suite measured 92-96 s against its 90 s (2026-12-05)
@pytest.mark.parametrize("jobs", [pytest.param("1", marks=pytest.mark.slow), pytest.param("2", marks=pytest.mark.slow)])
def test_same_seed_gives_byte_identical_oof_and_submission(jobs, titanic_dir, tmp_path):
    outputs = []
    for i in range(2):
        runs = tmp_path / f"runs{i}"
        run_ok(["train", "titanic", "--folds", "3", "--epochs", "3", "--seed", "7", "--quiet", "--jobs", jobs,
                "--data-dir", str(titanic_dir), "--runs-dir", str(runs), "--out", str(tmp_path / f"s{i}.csv")])
        [run] = list((runs / "titanic").iterdir())
        outputs.append(((run / "oof.csv").read_bytes(), (tmp_path / f"s{i}.csv").read_bytes()))
        plan = json.loads((run / "metrics.json").read_text())["fold_plan"]
        assert [k for rnd in plan for k in rnd["folds"]] == [0, 1, 2]
        assert max(rnd["jobs"] for rnd in plan) == int(jobs)
    assert outputs[0] == outputs[1]


def _write(folder, name, df):
    folder.mkdir(exist_ok=True)
    df.to_csv(folder / name, index=False)


BAD_INPUTS = {
    "missing file": (lambda d: [f.unlink() for f in d.iterdir()], ["train", "otto"], "train.csv not found in"),
    "empty file": (lambda d: (d / "train.csv").write_text(""), ["train", "titanic"], "file is empty"),
    "header only": (lambda d: (d / "train.csv").write_text("PassengerId,Survived\n"), ["train", "titanic"], "no rows"),
    "wrong columns": (lambda d: _write(d, "train.csv", pd.read_csv(d / "train.csv").drop(columns=["Sex"])),
                      ["train", "titanic"], "missing column.*Sex"),
    "text in numeric": (lambda d: _write(d, "train.csv", pd.read_csv(d / "train.csv").assign(Age="old")),
                        ["train", "titanic"], "column Age: non-numeric value 'old'"),
    "duplicate ids": (lambda d: _write(d, "train.csv", pd.read_csv(d / "train.csv").assign(PassengerId=1)),
                      ["train", "titanic"], "duplicated id"),
    "bad target": (lambda d: _write(d, "train.csv", pd.read_csv(d / "train.csv").assign(Survived=3)),
                   ["train", "titanic"], "unknown target value"),
    "unknown task": (lambda d: None, ["train", "mnist-nope"],
                     rf"^error: unknown task 'mnist-nope' \(did you mean 'mnist'\?\); known: {re.escape(', '.join(TASKS.names()))}"
                     r"; to make a new competition of that name anyway: python cli.py init mnist-nope --data-dir DIR$"),
    "unknown model": (lambda d: None, ["train", "titanic", "--model", "resnet9000"], "unknown model"),
    "image model on a table": (lambda d: None, ["train", "titanic", "--model", "cifar_course"],
                               "model 'cifar_course' is for image data, but titanic has tabular data"),
    "table model on images": (lambda d: None, ["train", "mnist", "--model", "mlp"],
                              "model 'mlp' is for tabular data, but mnist has image data; its models: cifar_course"),
    "one fold": (lambda d: None, ["train", "titanic", "--folds", "1"], "at least 2"),
    "too many folds": (lambda d: None, ["train", "titanic", "--folds", "200"], "rarest class"),
    "bad option": (lambda d: None, ["train", "titanic", "--epochs", "many"], "--epochs"),
    "bad device": (lambda d: None, ["train", "titanic", "--device", "tpu"], "--device"),
    "missing input": (lambda d: None, ["predict", "titanic", "--input", "/no/such.csv"], "file not found|no complete"),
    "negative seed": (lambda d: None, ["train", "titanic", "--seed", "-1"], r"--seed must lie in 0\.\.4294967295"),
    "seed past 2**32": (lambda d: None, ["train", "titanic", "--set", "seed=4294967296"], "--seed must lie in"),
    "tune negative seed": (lambda d: None, ["tune", "titanic", "--trials", "1", "--seed", "-1"], "--seed must lie in"),
    "another task by --set": (lambda d: None, ["train", "titanic", "--set", "task=diabetes"],
                              "'task' is the command's TASK argument"),
    "patience 0": (lambda d: None, ["train", "titanic", "--set", "patience=0"], "patience must be at least 1"),
    "infinite lr": (lambda d: None, ["train", "titanic", "--set", "lr=Infinity"], "lr must be a finite number, got inf"),
    "nan lr": (lambda d: None, ["train", "titanic", "--set", "lr=NaN"], "lr must be a finite number, got nan"),
    "tune zero timeout": (lambda d: None, ["tune", "titanic", "--trials", "1", "--timeout", "0"],
                          "--timeout must be a positive number of seconds"),
    "tune zero trials": (lambda d: None, ["tune", "titanic", "--trials", "0"], "--trials must be at least 1"),
    "no task": (lambda d: None, ["train"], rf"Missing argument 'task'\. Choose from: {re.escape(', '.join(TASKS.names()))}$"),
    "resume with --seed 0": (lambda d: None, ["train", "titanic", "--resume", "latest", "--seed", "0"], "drop --seed"),
    "resume with --jobs": (lambda d: None, ["train", "titanic", "--resume", "latest", "--jobs", "2"], "drop --jobs"),
    "negative jobs": (lambda d: None, ["train", "titanic", "--jobs", "-1"], r"--jobs wants 'auto' or a positive"),
    "zero jobs": (lambda d: None, ["train", "titanic", "--jobs", "0"], r"--jobs wants 'auto' or a positive.*got '0'"),
    "negative jobs by --set": (lambda d: None, ["train", "titanic", "--set", "jobs=-2"], r"jobs must be 0 or 'auto'"),
    "task typo": (lambda d: None, ["train", "otot"],
                  r"^error: unknown task 'otot' \(did you mean 'otto'\?\); known: cifar10, .*titanic; to make a new.*init otot"),
    "model typo": (lambda d: None, ["train", "titanic", "--model", "mpl"], r"unknown model 'mpl' \(did you mean 'mlp'\?\)"),
    "--set typo": (lambda d: None, ["train", "titanic", "--set", "lrr=0.1"], r"unknown config key\(s\) lrr \(did you mean 'lr'\?\)"),
    "tune --set jobs": (lambda d: None, ["tune", "titanic", "--trials", "1", "--set", "jobs=2"],
                        "tune trains a trial's folds one after the other.*--jobs N runs N trials side by side"),
}


@pytest.mark.slow
def test_a_device_in_set_or_in_a_params_file_from_tune_trains(titanic_dir, runs_dir, tmp_path):
    """tune writes the held keys, device included, into best_params.json; train --params must take it."""
    params = tmp_path / "best_params.json"
    params.write_text(json.dumps({"device": "cpu", "epochs": 1}))
    for extra in (["--set", "device=cpu"], ["--params", str(params)], ["--params", str(params), "--device", "cpu"]):
        code = main(["train", "titanic", "--jobs", "1", "--folds", "2", "--epochs", "1", "--quiet", "--data-dir", str(titanic_dir),
                     "--runs-dir", str(runs_dir), "--out", str(tmp_path / "s.csv"), *extra])
        assert code == 0, extra
    configs = [json.loads(p.read_text())["config"] for p in runs_dir.rglob("config.json")]
    assert len(configs) == 3 and {c["device"] for c in configs} == {"cpu"}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_no_files(case, titanic_dir, runs_dir, tmp_path, capsys):
    prepare, args, msg = BAD_INPUTS[case]
    prepare(titanic_dir)
    out = tmp_path / "sub.csv"
    extra = ["--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir)] + (["--out", str(out)] if args[0] != "tune" else [])
    code = main(args + extra + (["--quiet"] if args[0] == "train" else []))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(msg, err), err
    assert not out.exists() and files_under(runs_dir) == []


def test_no_command_prints_the_help_and_no_empty_error_line(capsys):
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert "Usage" in out + err and "error:" not in err


@pytest.mark.slow
def test_real_process_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "cli.py", "train", "titanic", "--folds", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: --folds must be at least 2 for titanic, got 1"]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_kaggle_credentials_without_package_or_network_is_a_clear_error(tmp_path, runs_dir, monkeypatch, capsys):
    """With credentials set, a missing file triggers the Kaggle API path; here it cannot succeed
    (no package or no network), and must still end in one line and exit 2."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-key")
    monkeypatch.setattr("tasks.task.DATA_ROOT", tmp_path / "bundled")   # keep downloads out of the repo
    code = main(["train", "otto", "--jobs", "1", "--data-dir", str(empty), "--runs-dir", str(runs_dir), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Kaggle" in err, err
    assert files_under(runs_dir) == []


def test_float_written_binary_target_is_read_as_its_integer_class(titanic_dir):
    """A spreadsheet that saved Survived as 0.0/1.0 means 0/1; 0.5 is still an unknown class."""
    from data import ingest
    from pipelines import TASKS
    task = TASKS.create("titanic")
    df = pd.read_csv(titanic_dir / "train.csv")
    _write(titanic_dir, "train.csv", df.assign(Survived=df["Survived"].astype(float)))
    loaded = ingest.load(task, "train", titanic_dir)
    assert (ingest.encode_target(task, loaded["Survived"]) == df["Survived"].to_numpy()).all()
    _write(titanic_dir, "train.csv", df.assign(Survived=np.where(df.index == 3, 0.5, df["Survived"])))
    with pytest.raises(UsageError, match="unknown target value"):
        ingest.load(task, "train", titanic_dir)


@pytest.mark.parametrize("survivors, code, jobs", [(6, 0, "1"), (2, 2, "1"),
                                                   pytest.param(2, 2, "2", marks=pytest.mark.slow)])   # 2 workers
def test_a_small_titanic_file_trains_or_says_why_not(survivors, code, jobs, titanic_dir, runs_dir, tmp_path, capsys):
    """6 survivors over 2 folds leave 3 per training fold: fewer than the target encoder's 5 inner
    folds, which now shrink to fit. 2 survivors leave 1, and the error says so, not 'n_splits=5';
    with --jobs 2 it is raised in a worker process and must come out the same way."""
    df = pd.read_csv(titanic_dir / "train.csv").head(24)
    _write(titanic_dir, "train.csv", df.assign(Survived=(df.index < survivors).astype(int)))
    assert main(["train", "titanic", "--folds", "2", "--epochs", "1", "--quiet", "--jobs", jobs,
                 "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir), "--out", str(tmp_path / "s.csv")]) == code
    err = capsys.readouterr().err
    if code:
        assert "a class has 1 row in a training fold" in err and "n_splits" not in err and err.count("\n") == 1, err
        assert not (tmp_path / "s.csv").exists() and files_under(runs_dir) == []
    else:
        assert len(pd.read_csv(tmp_path / "s.csv")) == 20


def test_a_file_missing_from_data_dir_is_taken_from_the_bundled_copy_with_a_warning(titanic_dir, runs_dir,
                                                                                     tmp_path, capsys):
    (titanic_dir / "test.csv").unlink()          # the user's folder has train.csv only
    code = main(["train", "titanic", "--jobs", "1", "--folds", "2", "--epochs", "1", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(runs_dir), "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err
    assert code == 0
    assert re.search(r"titanic: test\.csv not in --data-dir .*titanic_data; using .*data/titanic/test\.csv", err), err
    assert len(pd.read_csv(tmp_path / "s.csv")) == 418          # the bundled test file, as the warning says


def test_diabetes_reads_a_plain_csv_from_data_dir(runs_dir, tmp_path, capsys):
    import gzip
    from tests.conftest import ROOT
    folder = tmp_path / "mine"
    folder.mkdir()
    rows = gzip.open(ROOT / "data" / "diabetes" / "diabetes.csv.gz", "rt").read().splitlines()[:300]
    (folder / "diabetes.csv").write_text("\n".join(rows) + "\n")
    code = main(["train", "diabetes", "--jobs", "1", "--folds", "2", "--epochs", "1", "--verbose", "--data-dir", str(folder),
                 "--runs-dir", str(runs_dir), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert code == 0
    assert re.search(r"mine/diabetes\.csv \(300 rows", err) and "not in --data-dir" not in err, err


def _with_sample(folder):
    test = pd.read_csv(folder / "test.csv")
    pd.DataFrame({"PassengerId": test["PassengerId"], "Survived": 0}).to_csv(folder / "gender_submission.csv", index=False)
    return test


def test_a_test_file_in_another_row_order_gives_the_submission_in_the_samples_order(titanic_dir, runs_dir,
                                                                                     tmp_path):
    test = _with_sample(titanic_dir)
    test.sample(frac=1, random_state=0).to_csv(titanic_dir / "test.csv", index=False)     # Kaggle matches by id
    code = main(["train", "titanic", "--jobs", "1", "--folds", "2", "--epochs", "1", "--quiet", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(runs_dir), "--out", str(tmp_path / "s.csv")])
    assert code == 0
    assert pd.read_csv(tmp_path / "s.csv")["PassengerId"].tolist() == test["PassengerId"].tolist()
    assert main(["predict", "titanic", "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir),
                 "--out", str(tmp_path / "p.csv")]) == 0
    assert (tmp_path / "p.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()


@pytest.mark.parametrize("edit, msg", [
    (lambda t: t.iloc[:-3], r"test\.csv has 17 rows, gender_submission\.csv 20"),
    (lambda t: t.assign(PassengerId=t["PassengerId"].where(t.index != 4, 99999)),
     r"test\.csv has no row for id 1\d+ of gender_submission\.csv"),
])
def test_test_ids_that_do_not_match_the_sample_fail_before_training(edit, msg, titanic_dir, runs_dir, tmp_path,
                                                                     capsys, monkeypatch):
    test = _with_sample(titanic_dir)
    edit(test).to_csv(titanic_dir / "test.csv", index=False)
    import pipelines.train as pipeline
    monkeypatch.setattr(pipeline, "cross_validate", lambda *a, **k: pytest.fail("trained before checking the ids"))
    code = main(["train", "titanic", "--jobs", "1", "--quiet", "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir),
                 "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and re.search(msg, err), err
    assert not (tmp_path / "s.csv").exists() and files_under(runs_dir) == []


@pytest.mark.slow      # a whole train run (1.5-1.7 s): the quick suite measured 92-96 s against its 90 s (2026-12-05)
def test_a_run_with_a_corrupted_status_file_is_skipped_not_fatal(titanic_dir, runs_dir, tmp_path, capsys):
    assert main(["train", "titanic", "--jobs", "1", "--folds", "2", "--epochs", "1", "--quiet", "--set", "bags=1",
                 "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir), "--out", str(tmp_path / "s.csv")]) == 0
    junk = runs_dir / "titanic" / "junk"
    junk.mkdir()
    (junk / "status.json").write_text("{")
    capsys.readouterr()
    assert main(["runs", "--runs-dir", str(runs_dir)]) == 0
    out, err = capsys.readouterr()
    assert "-mlp+lightgbm-s0" in out and "junk/status.json: corrupted JSON; run skipped" in err
    # a complete run that lost its metrics.json is skipped too, the others still listed
    assert main(["train", "titanic", "--jobs", "1", "--folds", "2", "--epochs", "1", "--quiet", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(runs_dir), "--out", str(tmp_path / "s2.csv"), "--seed", "1"]) == 0
    [broken] = (runs_dir / "titanic").glob("*-mlp+lightgbm-s1")
    (broken / "metrics.json").unlink()
    capsys.readouterr()
    assert main(["runs", "--runs-dir", str(runs_dir)]) == 0
    out, err = capsys.readouterr()
    assert "-mlp+lightgbm-s0" in out and broken.name not in out and "metrics.json: missing" in err and "run skipped" in err
    assert main(["predict", "titanic", "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir),
                 "--out", str(tmp_path / "p.csv")]) == 0


def test_predict_without_data_dir_reads_the_folder_the_run_trained_from(titanic_dir, runs_dir, tmp_path, capsys):
    assert main(["train", "titanic", "--jobs", "1", "--folds", "2", "--epochs", "1", "--quiet", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(runs_dir), "--out", str(tmp_path / "s.csv")]) == 0
    capsys.readouterr()
    assert main(["predict", "titanic", "--runs-dir", str(runs_dir), "--out", str(tmp_path / "p.csv")]) == 0
    assert "test data from the run's --data-dir" in capsys.readouterr().err
    assert (tmp_path / "p.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()     # the 20-row test, not the bundled 418


def test_a_run_that_fails_leaves_no_empty_folders(titanic_dir, tmp_path, capsys, monkeypatch):
    """--out's new folders are made only when the file is written; a discarded run takes its
    task folder (and the runs folder) with it when nothing else is there."""
    out = tmp_path / "new" / "deeper" / "s.csv"
    runs_dir = tmp_path / "fresh_runs"
    train = pd.read_csv(titanic_dir / "train.csv")
    _write(titanic_dir, "train.csv", train.drop(columns=["Sex"]))            # fails in ingest
    assert main(["train", "titanic", "--jobs", "1", "--quiet", "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir),
                 "--out", str(out)]) == 2
    assert not (tmp_path / "new").exists() and not runs_dir.exists()
    _write(titanic_dir, "train.csv", train)
    import pipelines.train as pipeline

    def fail_mid_run(*a, **k):
        raise ValueError("something about the data found mid-run")
    monkeypatch.setattr(pipeline, "cross_validate", fail_mid_run)
    assert main(["train", "titanic", "--jobs", "1", "--quiet", "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir),
                 "--out", str(out)]) == 2
    assert "something about the data found mid-run" in capsys.readouterr().err
    assert not (tmp_path / "new").exists() and not runs_dir.exists()


def _tiny_otto(folder, classes, n=40, seed=0):
    """Otto-shaped train/test/sample files whose train holds only `classes` (1-based)."""
    rng = np.random.default_rng(seed)
    feats = {f"feat_{i}": rng.integers(0, 4, n) for i in range(1, 94)}
    folder.mkdir(exist_ok=True)
    target = [f"Class_{classes[i % len(classes)]}" for i in range(n)]
    pd.DataFrame({"id": np.arange(1, n + 1), **feats, "target": target}).to_csv(folder / "train.csv", index=False)
    test = pd.DataFrame({"id": np.arange(1, 11), **{k: v[:10] for k, v in feats.items()}})
    test.to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"id": test["id"], **{f"Class_{c}": 1 for c in range(1, 10)}}).to_csv(
        folder / "sampleSubmission.csv", index=False)


def test_classes_missing_from_train_are_named_in_a_warning(runs_dir, tmp_path, capsys):
    """Kaggle's Otto train is sorted by class, so its first rows hold only Class_1 and Class_2."""
    _tiny_otto(tmp_path / "otto", [1, 2])
    code = main(["train", "otto", "--folds", "2", "--epochs", "1", "--jobs", "1", "--data-dir",
                 str(tmp_path / "otto"), "--runs-dir", str(runs_dir), "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert ("otto: 7 of the 9 classes never appear in the training data (Class_3, Class_4, Class_5, Class_6, "
            "Class_7, Class_8, Class_9)") in err, err
    assert list(pd.read_csv(tmp_path / "s.csv").columns) == ["id", *[f"Class_{c}" for c in range(1, 10)]]


def test_a_train_of_one_class_is_refused_naming_it(runs_dir, tmp_path, capsys):
    _tiny_otto(tmp_path / "otto", [4])
    code = main(["train", "otto", "--jobs", "1", "--quiet", "--data-dir", str(tmp_path / "otto"), "--runs-dir", str(runs_dir),
                 "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err == ("error: otto: the training data has only Class_4 of the 9 classes; nothing to "
                                 "learn, and logloss needs at least two\n"), err
    assert files_under(runs_dir) == [] and not (tmp_path / "s.csv").exists()


def test_folds_too_small_to_score_get_a_warning_naming_their_size(titanic_dir, runs_dir, tmp_path, capsys):
    df = pd.read_csv(titanic_dir / "train.csv").head(12)
    _write(titanic_dir, "train.csv", df.assign(Survived=(df.index < 6).astype(int)))
    code = main(["train", "titanic", "--jobs", "1", "--folds", "5", "--epochs", "1", "--set", "bags=1",
                 "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir), "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert ("titanic: 12 training rows in 5 folds: each fold validates on 2-3 rows, too few for a steady score "
            "or early stopping; use more rows or fewer --folds") in err, err


def test_every_listed_task_name_registers_that_task():
    """TASK_NAMES lets the CLI offer the tasks without importing them; it must say what TASKS holds."""
    from pipelines import TASK_NAMES
    assert sorted(TASK_NAMES) == TASKS.names()
    assert all(TASKS.create(name).name == name for name in TASK_NAMES)


def test_the_cli_starts_without_torch_pandas_or_sklearn():
    """`--help` and the parsing every command does import none of the heavy libraries: each
    command imports what it needs when it runs (how fast that is, bench/ measures)."""
    code = "import sys, cli; print(sorted({'torch', 'pandas', 'sklearn', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
