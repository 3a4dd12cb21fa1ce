"""`download` and `submit` with the Kaggle API replaced by a recorder: no network, no real credentials.

HOME and KAGGLE_CONFIG_DIR point into the test's tmp folder, so the machine's own Kaggle
files (if any) are never read; `submissions.kaggle.client` is the one function that builds
the API client, and the fake stands in for it.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli import main
from pipelines import TASKS
from submissions import kaggle
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def fake_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / ".kaggle"))
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return home


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


class FakeApi:
    """Records every call; a download writes the competition zip like the real client does."""

    def __init__(self, files: dict[str, bytes] | None = None, reply: str = "Successfully submitted",
                 error: BaseException | None = None):
        self.files, self.reply, self.error, self.calls = files or {"train.csv": b"a,b\n1,2\n"}, reply, error, []

    def competition_download_files(self, competition, path=None, force=False, quiet=True):
        self.calls.append(("download", competition, path))
        if self.error:
            raise self.error
        Path(path, f"{competition}.zip").write_bytes(_zip(self.files))

    def competition_submit(self, file_name, message, competition, quiet=False, sandbox=False):
        self.calls.append(("submit", file_name, message, competition))
        if self.error:
            raise self.error
        return type("Reply", (), {"message": self.reply})()


@pytest.fixture
def api(monkeypatch) -> FakeApi:
    fake = FakeApi()
    monkeypatch.setattr(kaggle, "client", lambda: fake)
    return fake


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


# ---- credentials -------------------------------------------------------------------------

def test_no_credentials_is_one_line_saying_where_they_go(tmp_path, capsys):
    code, out, err = run(["download", "titanic", "--data-dir", str(tmp_path / "d")], capsys)
    assert_one_line_error(code, err, "no Kaggle API credentials", "~/.kaggle/", "KAGGLE_USERNAME", "access_token")
    assert out == "" and not (tmp_path / "d").exists()
    valid = tmp_path / "sub.csv"
    valid.write_bytes((ROOT / "data" / "titanic" / "gender_submission.csv").read_bytes())
    code, _, err = run(["submit", "titanic", "--file", str(valid), "-m", "first"], capsys)
    assert_one_line_error(code, err, "no Kaggle API credentials")


@pytest.mark.parametrize("where", ["kaggle.json", "access_token", "env"])
def test_credentials_are_found_where_the_kaggle_package_looks(where, fake_home, monkeypatch):
    assert not kaggle.has_credentials()
    (fake_home / ".kaggle").mkdir()
    if where == "env":
        monkeypatch.setenv("KAGGLE_USERNAME", "someone")
        monkeypatch.setenv("KAGGLE_KEY", "0" * 32)
    else:
        (fake_home / ".kaggle" / where).write_text("{}")
    assert kaggle.has_credentials()


def test_real_client_authenticates_offline_and_prints_nothing(monkeypatch, capsys):
    """Legacy key credentials authenticate without a network call; the package's own output stays hidden."""
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "0" * 32)
    api = kaggle.client()
    assert hasattr(api, "competition_submit") and hasattr(api, "competition_download_files")
    assert capsys.readouterr().out == ""


# ---- download ----------------------------------------------------------------------------

def test_download_unzips_the_competition_files(api, tmp_path, capsys):
    api.files = {"train.csv.zip": _zip({"train.csv": b"id,feat_1\n1,0\n"}), "sampleSubmission.csv": b"id\n1\n"}
    dest = tmp_path / "otto"
    code, out, err = run(["download", "otto", "--data-dir", str(dest)], capsys)
    assert code == 0, err
    assert api.calls == [("download", "otto-group-product-classification-challenge", str(dest))]
    assert sorted(p.name for p in dest.iterdir()) == ["sampleSubmission.csv", "train.csv"]   # zips removed
    assert (dest / "train.csv").read_text() == "id,feat_1\n1,0\n"
    assert out.splitlines() == [f"downloaded: {dest / 'sampleSubmission.csv'}", f"downloaded: {dest / 'train.csv'}"]


def test_download_goes_to_the_tasks_data_folder_by_default(api, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("tasks.task.DATA_ROOT", tmp_path / "data")
    code, _, err = run(["download", "mnist"], capsys)
    assert code == 0, err
    assert api.calls == [("download", "digit-recognizer", str(tmp_path / "data" / "mnist"))]
    assert (tmp_path / "data" / "mnist" / "train.csv").is_file()


@pytest.mark.slow          # a whole default train after the fake download: with the full suite
def test_train_without_data_downloads_it_when_credentials_exist(api, tmp_path, monkeypatch, capsys):
    """The caller (tasks/task.py's fetch_if_missing) downloads; it says so, then trains on the downloaded copy."""
    monkeypatch.setattr("tasks.task.DATA_ROOT", tmp_path / "data")      # no bundled copy
    monkeypatch.setenv("KAGGLE_API_TOKEN", "fake")
    api.files = {n: (ROOT / "data" / "titanic" / n).read_bytes()
                 for n in ("train.csv", "test.csv", "gender_submission.csv")}
    code, out, err = run(["train", "titanic", "--folds", "2", "--epochs", "1", "--jobs", "1",
                          "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "sub.csv")], capsys)
    assert code == 0, err
    assert api.calls == [("download", "titanic", str(tmp_path / "data" / "titanic"))]
    assert "train.csv found nowhere; downloading titanic into" in err
    assert (tmp_path / "sub.csv").is_file()


def test_train_without_data_or_credentials_says_how_to_get_it(api, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("tasks.task.DATA_ROOT", tmp_path / "data")
    code, _, err = run(["train", "otto", "--runs-dir", str(tmp_path / "runs")], capsys)
    assert_one_line_error(code, err, "otto: train.csv not found in", "--data-dir", "python cli.py download otto")
    assert api.calls == []


def test_locating_a_file_never_downloads(api, tmp_path, monkeypatch):
    """data/ingest.py only locates, credentials or not: downloading is the caller's decision."""
    from data import ingest
    monkeypatch.setattr("tasks.task.DATA_ROOT", tmp_path / "data")
    monkeypatch.setenv("KAGGLE_API_TOKEN", "fake")
    with pytest.raises(ingest.DataNotFound, match="python cli.py download titanic"):
        ingest.locate(TASKS.create("titanic"), "train", None)
    assert api.calls == []


def test_download_without_network_is_one_line(api, tmp_path, capsys):
    import requests
    api.error = requests.exceptions.ConnectionError("Failed to resolve 'www.kaggle.com'\nmore detail")
    code, _, err = run(["download", "titanic", "--data-dir", str(tmp_path / "new" / "a" / "b")], capsys)
    assert_one_line_error(code, err, "cannot reach kaggle.com", "titanic")
    assert not (tmp_path / "new").exists()                     # no empty folder left behind, at any depth


def test_download_into_a_file_is_one_line(api, tmp_path, capsys):
    (tmp_path / "p.csv").write_text("x")
    code, _, err = run(["download", "titanic", "--data-dir", str(tmp_path / "p.csv")], capsys)
    assert_one_line_error(code, err, "is a file, not a folder")
    assert api.calls == []


def test_download_refused_says_to_accept_the_rules(api, tmp_path, capsys):
    import requests
    response = requests.Response()
    response.status_code = 403
    api.error = requests.exceptions.HTTPError("403 Forbidden", response=response)
    code, _, err = run(["download", "titanic", "--data-dir", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "HTTP 403", "rules")


def test_a_broken_zip_is_one_line(api, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(FakeApi, "competition_download_files",
                        lambda self, c, path=None, **kw: Path(path, f"{c}.zip").write_bytes(b"not a zip"))
    code, _, err = run(["download", "titanic", "--data-dir", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "titanic.zip: cannot unzip")


# ---- submit ------------------------------------------------------------------------------

def _expected(task_name: str) -> pd.DataFrame:
    return kaggle.expected_submission(TASKS.create(task_name))


def _write(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False, float_format="%.6f")
    return path


def test_submit_a_valid_file(api, tmp_path, capsys):
    path = _write(_expected("titanic"), tmp_path / "sub.csv")
    code, out, err = run(["submit", "titanic", "--file", str(path), "-m", "mlp 5 folds"], capsys)
    assert code == 0, err
    assert api.calls == [("submit", str(path), "mlp 5 folds", "titanic")]
    assert out.startswith(f"submitted: {path} to titanic")


def test_submit_takes_the_runs_submission_and_file_wins(api, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "titanic" / "20260101-000000-mlp-s0"
    run_dir.mkdir(parents=True)
    from_run = _write(_expected("titanic"), tmp_path / "from_run.csv")
    (run_dir / "config.json").write_text(json.dumps({"config": {"task": "titanic"}}))
    (run_dir / "status.json").write_text(json.dumps({"state": "complete"}))
    (run_dir / "metrics.json").write_text(json.dumps({"submission": str(from_run)}))
    runs = ["--runs-dir", str(tmp_path / "runs")]
    assert run(["submit", "titanic", "-m", "a", *runs], capsys)[0] == 0               # --run latest
    assert run(["submit", "titanic", "--run", run_dir.name, "-m", "b", *runs], capsys)[0] == 0
    other = _write(_expected("titanic"), tmp_path / "other.csv")
    assert run(["submit", "titanic", "--run", run_dir.name, "--file", str(other), "-m", "c", *runs], capsys)[0] == 0
    assert [c[1] for c in api.calls] == [str(from_run), str(from_run), str(other)]

    (run_dir / "metrics.json").write_text(json.dumps({"submission": None}))
    code, _, err = run(["submit", "titanic", "-m", "d", *runs], capsys)
    assert_one_line_error(code, err, "wrote no submission", "--file")
    assert len(api.calls) == 3


def _otto_bad_sum(s):
    s = s.copy()
    s.loc[5, "Class_1"] = 0.9
    return s


INVALID = {
    "wrong columns": ("titanic", lambda s: s.rename(columns={"Survived": "survived"}), "columns"),
    "extra column": ("titanic", lambda s: s.assign(Name="x"), "columns"),
    "too few rows": ("titanic", lambda s: s.iloc[:-1], "417 rows"),
    "too many rows": ("titanic", lambda s: pd.concat([s, s.iloc[:1]]), "419 rows"),
    "ids out of order": ("titanic", lambda s: s.iloc[::-1], "ids differ"),
    "wrong ids": ("titanic", lambda s: s.assign(PassengerId=s.PassengerId + 1), "ids differ"),
    "float ids": ("titanic", lambda s: s.assign(PassengerId=s.PassengerId + 0.5), "ids must be integers"),
    "label 2": ("titanic", lambda s: s.assign(Survived=np.where(s.index == 3, 2, s.Survived)), "value 2 in row 4"),
    "float labels": ("titanic", lambda s: s.assign(Survived=s.Survived + 0.25), "labels must be integers"),
    "missing value": ("titanic", lambda s: s.assign(Survived=np.where(s.index == 0, np.nan, s.Survived)), "missing"),
    "probability above 1": ("otto", lambda s: s.assign(Class_3=np.where(s.index == 7, 1.5, s.Class_3)),
                            "Class_3: probability 1.5 in row 8"),
    "probabilities not summing to 1": ("otto", _otto_bad_sum, "row 6: class probabilities sum to"),
    "digit 10": ("mnist", lambda s: s.assign(Label=np.where(s.index == 0, 10, s.Label)), "value 10 in row 1"),
    "unknown class": ("cifar10", lambda s: s.assign(label=np.where(s.index == 2, "spaceship", s.label)),
                      "'spaceship' in row 3"),
}


# Otto's cases write and read 144,368-row files (1.6-1.8 s each): slow, to keep the quick suite within its 90 s
@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if INVALID[c][0] == "otto" else c for c in INVALID])
def test_an_invalid_file_is_never_uploaded(case, api, tmp_path, monkeypatch, capsys):
    task, mutate, msg = INVALID[case]
    built = []
    monkeypatch.setattr(kaggle, "client", lambda: built.append(1) or api)
    path = _write(mutate(_expected(task)), tmp_path / "bad.csv")
    code, _, err = run(["submit", task, "--file", str(path), "-m", "should not go"], capsys)
    assert_one_line_error(code, err, str(path), msg)
    assert api.calls == [] and built == []          # checked before a client is even built


def test_unreadable_and_missing_files_are_one_line(api, tmp_path, capsys):
    for content, msg in [(b"", "file is empty"), (b"\xff\xfe\x00garbage", "cannot read as CSV")]:
        (tmp_path / "f.csv").write_bytes(content)
        code, _, err = run(["submit", "titanic", "--file", str(tmp_path / "f.csv"), "-m", "x"], capsys)
        assert_one_line_error(code, err, msg)
    code, _, err = run(["submit", "titanic", "--file", str(tmp_path / "nope.csv"), "-m", "x"], capsys)
    assert_one_line_error(code, err, "file not found")
    assert api.calls == []


@pytest.mark.parametrize("args, msg", [([], "Missing option '--message'"), (["-m", "  "], "must say something")])
def test_submit_needs_a_message(args, msg, api, tmp_path, capsys):
    path = _write(_expected("titanic"), tmp_path / "sub.csv")
    code, _, err = run(["submit", "titanic", "--file", str(path), *args], capsys)
    assert_one_line_error(code, err, msg)
    assert api.calls == []


def test_a_failed_upload_is_one_line(api, tmp_path, capsys):
    api.reply = "Could not submit to competition"
    path = _write(_expected("titanic"), tmp_path / "sub.csv")
    code, _, err = run(["submit", "titanic", "--file", str(path), "-m", "x"], capsys)
    assert_one_line_error(code, err, "upload did not complete")


@pytest.mark.parametrize("command", [["download", "diabetes"], ["submit", "diabetes", "-m", "x", "--file", "any.csv"]])
def test_diabetes_is_not_a_kaggle_competition(command, api, capsys):
    code, _, err = run(command, capsys)
    assert_one_line_error(code, err, "diabetes is not a Kaggle competition")
    assert api.calls == []


def _7z(files: dict[str, bytes], path: Path) -> bytes:
    import py7zr
    with py7zr.SevenZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(data, name)
    data = path.read_bytes()
    path.unlink()
    return data


def test_download_extracts_kaggles_7z_archives_into_the_layout_train_reads(api, tmp_path, capsys):
    """Kaggle's CIFAR-10: cifar-10.zip holds train.7z / test.7z of PNGs beside trainLabels.csv."""
    from PIL import Image
    png = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(png, format="PNG")
    pngs = {f"train/{i}.png": png.getvalue() for i in (1, 2)}
    api.files = {"train.7z": _7z(pngs, tmp_path / "a.7z"),
                 "test.7z": _7z({"test/1.png": png.getvalue()}, tmp_path / "b.7z"),
                 "trainLabels.csv": b"id,label\n1,frog\n2,ship\n"}
    dest = tmp_path / "cifar"
    code, out, err = run(["download", "cifar10", "--data-dir", str(dest)], capsys)
    assert code == 0, err
    assert sorted(p.name for p in dest.iterdir()) == ["test", "train", "trainLabels.csv"]    # archives removed
    assert sorted(p.name for p in (dest / "train").iterdir()) == ["1.png", "2.png"]
    assert (dest / "train" / "1.png").read_bytes() == png.getvalue()
    # one line per top-level entry, not one per image
    assert out.splitlines() == [f"downloaded: {dest / n}" for n in ("test", "train", "trainLabels.csv")]
    from data.image_layouts import read_cifar_kaggle
    from tasks.cifar10 import CLASSES
    assert read_cifar_kaggle(dest, CLASSES) is not None       # the Kaggle layout reader finds it


def test_a_damaged_7z_is_one_line(api, tmp_path, capsys):
    api.files = {"train.7z": b"7z\xbc\xaf\x27\x1c" + b"\x00" * 40, "trainLabels.csv": b"id,label\n"}
    code, _, err = run(["download", "cifar10", "--data-dir", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "train.7z: cannot extract the 7-Zip archive")


def test_a_7z_that_fails_mid_extraction_leaves_nothing_behind(api, tmp_path, capsys):
    good = bytearray(_7z({f"train/{i}.png": bytes(range(256)) * 8 for i in range(3)}, tmp_path / "a.7z"))
    good[100] ^= 0xFF                        # inside the packed data: the header reads, the CRC fails
    api.files = {"train.7z": bytes(good), "trainLabels.csv": b"id,label\n"}
    dest = tmp_path / "cifar"
    code, _, err = run(["download", "cifar10", "--data-dir", str(dest), ], capsys)
    assert code == 2 and err.splitlines()[-1].startswith("error: ") and "train.7z: cannot extract" in err, err
    assert not (dest / "train").exists()
