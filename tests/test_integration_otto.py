"""Otto end to end on a subsample of the real Kaggle files (skipped when ../shared is absent)."""
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from tests.conftest import SHARED

OTTO = SHARED / "otto"
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not (OTTO / "train.csv.gz").is_file(),
                                 reason=f"real Otto data not found at {OTTO}")]


@pytest.fixture(scope="module")
def otto_dir(tmp_path_factory):
    """3,000 train rows (stratified sample) and the first 1,000 test rows, gzipped as Kaggle ships them."""
    folder = tmp_path_factory.mktemp("otto")
    train = pd.read_csv(OTTO / "train.csv.gz")
    train = train.groupby("target", group_keys=False).sample(frac=3000 / len(train), random_state=0)
    train.sort_values("id").to_csv(folder / "train.csv.gz", index=False)
    pd.read_csv(OTTO / "test.csv.gz", nrows=1000).to_csv(folder / "test.csv.gz", index=False)
    pd.read_csv(OTTO / "sampleSubmission.csv.gz", nrows=1000).to_csv(folder / "sampleSubmission.csv", index=False)
    return folder


@pytest.mark.slow
def test_the_real_otto_files_ingest_whole():
    from data import ingest
    from pipelines import TASKS
    task = TASKS.create("otto")
    train, test = ingest.load(task, "train", OTTO), ingest.load(task, "test", OTTO)
    assert (len(train), len(test)) == (61_878, 144_368)
    assert sorted(train["target"].unique()) == list(task.classes)
    assert list(test.columns) == ["id", *task.numeric]


@pytest.mark.slow
def test_otto_subsample_trains_and_writes_a_valid_submission(otto_dir, tmp_path):
    out = tmp_path / "otto.csv"
    result = CliRunner().invoke(app, ["train", "otto", "--folds", "3", "--epochs", "4", "--quiet",
                                      "--data-dir", str(otto_dir), "--runs-dir", str(tmp_path / "runs"),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    sub = pd.read_csv(out)
    assert list(sub.columns) == ["id"] + [f"Class_{i}" for i in range(1, 10)]
    assert sub["id"].tolist() == list(range(1, 1001))
    assert np.allclose(sub.iloc[:, 1:].sum(1), 1, atol=1e-5)
    logloss = float(result.output.split("logloss ")[1].split()[0])
    assert logloss < 0.9 * np.log(9)       # clearly better than the uniform guess (2.197)
    # the default calibrates: metrics say so, and `predict` rebuilds the same file from the run folder
    run_dir = next((tmp_path / "runs" / "otto").iterdir())
    cal = json.loads((run_dir / "metrics.json").read_text())["calibration"]
    assert 0.25 < cal["temperature"] < 4 and len(cal["fold_temperatures"]) == 3
    again = tmp_path / "again.csv"
    res = CliRunner().invoke(app, ["predict", "otto", "--run", "latest", "--data-dir", str(otto_dir),
                                   "--runs-dir", str(tmp_path / "runs"), "--out", str(again)])
    assert res.exit_code == 0, res.output
    assert again.read_bytes() == out.read_bytes()
