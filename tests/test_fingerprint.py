"""The data fingerprint each run records (data/fingerprint.py): what changes it and what does not."""
from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from core.errors import UsageError
from data.fingerprint import describe, fingerprint, of_folder, record
from pipelines import TASKS
from tests.conftest import tiny_titanic

TITANIC = TASKS.create("titanic")


def folder_with(tmp_path, name: str, train_bytes: bytes, file: str = "train.csv"):
    d = tmp_path / name
    d.mkdir()
    (d / file).write_bytes(train_bytes)
    return d


def test_the_same_rows_fingerprint_alike_however_saved_and_one_cell_changes_it(tmp_path):
    text = tiny_titanic(40).to_csv(index=False)
    plain = of_folder(TITANIC, folder_with(tmp_path, "plain", text.encode()), tmp_path / "cache")
    assert plain["rows"] == 40 and len(plain["fingerprint"]) == 64
    assert plain["source"] == str((tmp_path / "plain" / "train.csv").resolve())
    same = [folder_with(tmp_path, "gz", gzip.compress(text.encode()), "train.csv.gz"),
            folder_with(tmp_path, "crlf", text.replace("\n", "\r\n").encode())]
    for d in same:
        assert of_folder(TITANIC, d, tmp_path / "cache")["fingerprint"] == plain["fingerprint"], d
    # the test file is no part of it: it changes no out-of-fold row
    shutil.copy(tmp_path / "plain" / "train.csv", tmp_path / "gz" / "test.csv")
    assert of_folder(TITANIC, tmp_path / "gz", tmp_path / "cache")["fingerprint"] == plain["fingerprint"]
    edited = tiny_titanic(40)
    edited.loc[7, "Fare"] += 1
    fewer = tiny_titanic(40).iloc[:39]
    relabelled = tiny_titanic(40)
    relabelled.loc[3, "Survived"] = 1 - relabelled.loc[3, "Survived"]
    for name, df in (("edited", edited), ("fewer", fewer), ("relabelled", relabelled)):
        other = of_folder(TITANIC, folder_with(tmp_path, name, df.to_csv(index=False).encode()), tmp_path / "cache")
        assert other["fingerprint"] != plain["fingerprint"], name


def test_without_a_data_dir_the_bundled_copy_is_fingerprinted(tmp_path):
    rec = of_folder(TITANIC, None, tmp_path / "cache")
    assert rec["rows"] == 891 and rec["source"] == str((TITANIC.bundled / "train.csv").resolve())
    assert describe(rec) == f"data {rec['fingerprint'][:8]} (891 rows, {rec['source']})"
    assert describe(None).startswith("data not recorded")


def test_image_fingerprints_hash_the_decoded_arrays():
    x = np.zeros((4, 1, 28, 28), np.uint8)
    y = np.arange(4)
    base = fingerprint(x, y)
    x2 = x.copy()
    x2[2, 0, 5, 5] = 1
    assert fingerprint(x.copy(), y.copy()) == base
    assert fingerprint(x2, y) != base and fingerprint(x, y[::-1]) != base
    assert fingerprint(x.reshape(4, 1, 784, 1), y) != base          # same bytes, other shape
    rec = record(TASKS.create("mnist"), x, y, None)
    assert rec["rows"] == 4 and rec["source"] == str(TASKS.create("mnist").bundled.resolve())


def test_a_folder_that_cannot_be_read_is_a_usage_error(tmp_path):
    (tmp_path / "d" / "train.csv").mkdir(parents=True)
    with pytest.raises(UsageError, match="train.csv in .* is a directory, not a file"):
        of_folder(TITANIC, tmp_path / "d", tmp_path / "cache")


def test_regression_values_are_hashed_whole_not_truncated_to_integers():
    import pandas as pd
    from data.fingerprint import fingerprint
    train = pd.DataFrame({"x": [1, 2, 3]})
    assert fingerprint(train, np.array([1.25, 2.0, 3.0])) != fingerprint(train, np.array([1.0, 2.0, 3.0]))
    assert fingerprint(train, np.array([0, 1, 1])) == fingerprint(train, np.array([0, 1, 1], dtype=np.int32))
