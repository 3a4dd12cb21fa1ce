"""bench/scale.py on a tiny table: the generator writes a Playground-like competition the tool
infers as intended (so the 1M-row figures measure the right thing), and bad input is one line."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import scale  # noqa: E402

ROWS = 2000


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "comp"
    reused, _ = scale.write(path, ROWS, 30, seed=0)
    assert not reused
    return path


def test_generator_writes_the_shape_asked_for(folder):
    train = pd.read_csv(folder / "train.csv")
    test = pd.read_csv(folder / "test.csv")
    sample = pd.read_csv(folder / "sample_submission.csv")
    assert train.shape == (ROWS, 32) and test.shape == (ROWS // 2, 31)       # 30 features + id (+ target)
    assert list(train.columns[:1]) == ["id"] and train.columns[-1] == "target"
    assert list(test.columns) == list(train.columns[:-1])
    assert train["id"].is_unique and not set(train["id"]) & set(test["id"])
    assert list(sample.columns) == ["id", "target"] and sample["id"].tolist() == test["id"].tolist()
    assert set(train["target"]) == {0, 1} and 0.3 < train["target"].mean() < 0.45
    missing = train.filter(like="num_").isna().mean()
    assert ((missing > 0.02) & (missing < 0.08)).sum() == 5 and (missing == 0).sum() == 15
    assert train["num_1"].skew() > 2 and train["num_3"].kurt() > 10        # lognormal; t with 2 df


def test_the_target_is_learnable_but_not_trivial(folder):
    """A plain logistic model on the signal columns beats the base rate, a noisy target is not 100%."""
    train = pd.read_csv(folder / "train.csv")
    y = train["target"].to_numpy()
    z = 1.6 * np.sin(2 * train["num_0"]) + 2.4 * (train["num_2"] - 0.5) * train["num_0"]
    accuracy = ((z > np.quantile(z, 0.62)) == y).mean()
    assert max(y.mean(), 1 - y.mean()) + 0.05 < accuracy < 0.95


def test_a_folder_of_the_same_shape_is_reused_and_another_is_refused(folder, tmp_path):
    assert scale.write(folder, ROWS, 30, seed=0) == (True, 0.0)
    (tmp_path / "mine.csv").write_text("a\n1\n")
    with pytest.raises(scale.UsageError, match="holds other files"):
        scale.write(tmp_path, ROWS, 30, seed=0)


def test_the_tool_infers_the_intended_spec(folder):
    from data.columns import CATEGORY_SHARE, MAX_CATEGORIES
    from data.infer import infer
    spec = infer(scale.NAME, folder)
    assert (spec.id_col, spec.target, spec.problem, spec.submission) == ("id", "target", "binary", "probability")
    kinds = spec.columns
    assert len(kinds) == 30
    assert {kinds[c] for c in kinds if c.startswith("num_")} == {"numeric"}
    assert {kinds[c] for c in kinds if c.startswith("cat_")} == {"categorical"}
    assert {kinds[c] for c in kinds if c.startswith("flag_")} == {"boolean"}
    train = pd.read_csv(folder / "train.csv")
    for col in ("high_0", "high_1"):        # text at 2,000 rows; categorical at 1M (data.columns' rule)
        wide = train[col].nunique() > max(MAX_CATEGORIES, CATEGORY_SHARE * ROWS)
        assert kinds[col] == ("text" if wide else "categorical")


def test_layout_keeps_the_playground_mix():
    assert scale.layout(30) == {"numeric": 20, "categorical": 6, "high": 2, "boolean": 2}
    assert sum(scale.layout(8).values()) == 8 and min(scale.layout(8).values()) >= 1


@pytest.mark.parametrize("args, message", [
    (["--rows", "0"], "--rows must be at least"),
    (["--stage", "predict"], "--stage predict: one of ingest, train, all"),
    (["--set", "widht=3"], "unknown config key"),
    (["--timeout", "0"], "--timeout must be positive"),
])
def test_bad_input_is_refused_before_any_data_is_written(args, message, tmp_path):
    with pytest.raises(scale.UsageError, match=message):
        scale.main(["--out", str(tmp_path / "x"), "--no-save", *args])
    assert not (tmp_path / "x").exists()


@pytest.mark.slow          # subprocesses of the bench script: with the full suite
def test_bad_input_is_one_line_and_exit_code_2(tmp_path):
    proc = subprocess.run([sys.executable, "bench/scale.py", "--out", str(tmp_path / "x"), "--rows", "0"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == "error: --rows must be at least 100, got 0"


@pytest.mark.slow          # a subprocess timed out on purpose: with the full suite
def test_measure_reports_a_timeout_and_the_memory_of_the_tree():
    quick = scale.measure([sys.executable, "-c", "print('hi')"], None)
    assert quick["returncode"] == 0 and quick["stdout"] == "hi\n" and not quick["timed_out"]
    assert quick["rss_tree_mib"] >= quick["rss_max_process_mib"] > 0
    slow = scale.measure([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert slow["timed_out"] and slow["wall_s"] < 10


def test_train_row_reads_the_score_and_epochs(monkeypatch, tmp_path):
    """The train stage's parsing of the CLI's output and the run's history.csv (no training here)."""
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame({"fold": [0, 0, 0, 1, 1], "bag": [0] * 5, "epoch": [1, 2, 3, 1, 2]}).to_csv(run / "history.csv")
    out = f"{scale.NAME}: CV roc_auc 0.81234  accuracy 0.75000  (12.0s)\nrun: {run}\nsubmission: x.csv\n"
    monkeypatch.setattr(scale, "measure", lambda cmd, timeout: {
        "wall_s": 12.5, "returncode": 0, "timed_out": False, "rss_tree_mib": 900, "rss_max_process_mib": 500,
        "stdout": out, "stderr": ""})
    row = scale.train(tmp_path, tmp_path, ["epochs=3"], None)
    assert row["cv"] == {"roc_auc": 0.81234, "accuracy": 0.75} and row["epochs_per_fold"] == [3, 2]
    assert "| train | 10 | 30 | epochs=3 | 12.5 |" in scale.table([{**row, "rows": 10, "cols": 30, "set": "epochs=3"}])[2]
    assert json.dumps(row)          # a row is saved as JSON
