"""--group, --folds-file and --extra-train (issue 25): folds as competitions need them. The splitters
on their own, then whole `train` runs through the CLI in-process on a tiny binary competition
inferred from its files: groups never split, a folds file followed row for row, extra rows in
training parts only, each bad input one line with nothing left behind, and a resumed run keeping
the options."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from cli import main
from core.errors import UsageError
from pipelines import runs
from pipelines.folds import group_folds
from pipelines.inputs import prepare
from tests.conftest import files_under

N = 48


def frame(n: int, seed: int = 0, first_id: int = 1) -> pd.DataFrame:
    """id, x1, x2, colour and grp (8 groups of rows, not a feature); y = 1 when x1 + x2 > 0."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n).round(4), rng.normal(size=n).round(4)
    return pd.DataFrame({"id": np.arange(first_id, first_id + n), "x1": x1, "x2": x2,
                         "colour": rng.choice(["red", "green", "blue"], n), "grp": [f"g{i % 8}" for i in range(n)],
                         "y": (x1 + x2 > 0).astype(int)})


@pytest.fixture
def comp(tmp_path):
    """A competition folder: train (N rows), test and sample_submission, for `train tinyfolds --data-dir`."""
    folder = tmp_path / "data"
    folder.mkdir()
    frame(N).to_csv(folder / "train.csv", index=False)
    test = frame(10, seed=1, first_id=1001).drop(columns="y")
    test.to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"id": test["id"], "y": 0}).to_csv(folder / "sample_submission.csv", index=False)
    return folder


def cli(comp, runs_dir, tmp_path, *args) -> int:
    return main(["train", "tinyfolds", "--quiet", "--epochs", "2", "--jobs", "1", "--set", "bags=1", "--data-dir", str(comp),
                 "--runs-dir", str(runs_dir), "--out", str(tmp_path / "sub.csv"), *args])


def only_run(runs_dir):
    [run] = [p for p in (runs_dir / "tinyfolds").iterdir() if p.is_dir()]
    return run


def validated(run, k: int) -> np.ndarray:
    """Fold k's validation probabilities, as val.npz keeps them (in the fold's row order)."""
    return np.load(run / f"fold{k}" / "val.npz")["proba"]


@pytest.mark.parametrize("stratify", [True, False])
def test_group_folds_never_split_a_group_and_are_seeded(stratify):
    rng = np.random.default_rng(0)
    groups = pd.Series(rng.integers(0, 20, 200), name="patient")
    y = rng.integers(0, 2, 200) if stratify else rng.normal(size=200)
    folds = group_folds(y, groups, 4, seed=1, stratify=stratify)
    seen = np.concatenate([va for _, va in folds])
    assert sorted(seen) == list(range(200))
    owner = {}
    for k, (tr, va) in enumerate(folds):
        assert not set(tr) & set(va)
        for g in groups.iloc[va].unique():
            assert owner.setdefault(g, k) == k, f"group {g} in folds {owner[g]} and {k}"
    other = group_folds(y, groups, 4, seed=2, stratify=stratify)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))


def test_too_few_groups_is_one_line():
    with pytest.raises(UsageError, match="3 distinct value"):
        group_folds(np.arange(30) % 2, pd.Series(np.arange(30) % 3, name="g"), 5, 0, stratify=True)


def test_group_run_keeps_each_group_in_one_fold(comp, runs_dir, tmp_path):
    assert cli(comp, runs_dir, tmp_path, "--group", "grp", "--folds", "4") == 0
    run = only_run(runs_dir)
    cfg = runs.load("tinyfolds", run.name, runs_root=runs_dir).config
    assert cfg.group == "grp" and cfg.folds == 4
    inp = prepare(cfg, comp)        # the folds the run's config makes, again
    oof = pd.read_csv(run / "oof.csv")
    grp = frame(N)["grp"]
    for k, (_, va) in enumerate(inp.folds):
        assert np.allclose(validated(run, k), oof["proba"].to_numpy()[va], atol=1e-7)    # the run used them
        assert not set(grp.iloc[va]) & set(grp.drop(index=va)), f"fold {k} shares a group with another"


def test_folds_file_is_followed_exactly(comp, runs_dir, tmp_path):
    assign = pd.DataFrame({"id": frame(N)["id"], "fold": np.arange(N) % 3})[::-1]     # any order, by id
    assign.to_csv(tmp_path / "folds.csv", index=False)
    assert cli(comp, runs_dir, tmp_path, "--folds-file", str(tmp_path / "folds.csv")) == 0     # K = 3 from the file
    run = only_run(runs_dir)
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert cfg["folds"] == 3 and cfg["folds_file"] == str((tmp_path / "folds.csv").resolve())
    oof = pd.read_csv(run / "oof.csv")
    for k in range(3):    # each fold validated exactly the rows the file gave it, in train order
        assert np.allclose(validated(run, k), oof["proba"][np.arange(N) % 3 == k], atol=1e-7)
        assert json.loads((run / f"fold{k}" / "scores.json").read_text())["n_val"] == N // 3


@pytest.mark.slow
def test_extra_rows_train_every_fold_and_are_never_validated(comp, runs_dir, tmp_path):
    extra = frame(20, seed=5).drop(columns="id")            # no id column: allowed
    extra["colour"] = "purple"                               # a level only the extra rows have
    extra.to_csv(tmp_path / "extra.csv", index=False)
    assert cli(comp, runs_dir, tmp_path, "--folds", "3") == 0
    plain = only_run(runs_dir)
    assert cli(comp, runs_dir, tmp_path, "--folds", "3", "--extra-train", str(tmp_path / "extra.csv")) == 0
    [run] = [p for p in (runs_dir / "tinyfolds").iterdir() if p.is_dir() and p != plain]
    oof = pd.read_csv(run / "oof.csv")
    assert list(oof["id"]) == list(frame(N)["id"])         # the competition's rows, no more
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_rows"] == N and metrics["extra_train"]["rows"] == 20
    for k in range(3):
        scores = json.loads((run / f"fold{k}" / "scores.json").read_text())
        assert scores["n_train"] + scores["n_val"] == N + 20 and len(validated(run, k)) == scores["n_val"]
        assert "cat__colour_purple" in json.loads((run / f"fold{k}" / "columns.json").read_text())   # encoder saw them
    saved = json.loads((run / "config.json").read_text())
    assert saved["config"]["extra_train"] == str((tmp_path / "extra.csv").resolve())
    before = json.loads((plain / "config.json").read_text())["data"]
    assert saved["data"]["fingerprint"] != before["fingerprint"] and saved["data"]["rows"] == N + 20


def _bad_folds(tmp_path, rows: pd.DataFrame) -> list[str]:
    rows.to_csv(tmp_path / "f.csv", index=False)
    return ["--folds-file", str(tmp_path / "f.csv")]


ids = frame(N)["id"]
BAD = {
    "group not a column": (lambda p: ["--group", "gpr"], r"--group gpr: no such column .*did you mean 'grp'"),
    "group the target": (lambda p: ["--group", "y"], "is the target"),
    "too few groups": (lambda p: ["--group", "grp", "--folds", "9"], "8 distinct value"),
    "group and folds file": (lambda p: ["--group", "grp", *_bad_folds(p, pd.DataFrame({"id": ids, "fold": ids % 2}))],
                             "give one"),
    "folds disagree": (lambda p: ["--folds", "4", *_bad_folds(p, pd.DataFrame({"id": ids, "fold": ids % 3}))],
                       "--folds 4 disagrees .* 3 folds"),
    "missing id": (lambda p: _bad_folds(p, pd.DataFrame({"id": ids, "fold": ids % 2}).iloc[1:]),
                   "1 train id.* missing, first '?1'?;"),
    "unknown id": (lambda p: _bad_folds(p, pd.DataFrame({"id": [*ids, 999], "fold": [*(ids % 2), 0]})),
                   "1 id.* not in the train, first '?999"),
    "empty fold": (lambda p: _bad_folds(p, pd.DataFrame({"id": ids, "fold": (ids % 2) * 2})), r"fold\(s\) 1 of 0..2 have no rows"),
    "not a fold number": (lambda p: _bad_folds(p, pd.DataFrame({"id": ids, "fold": ["a", *(ids[1:] % 2)]})),
                          "'a' in data row 1 is not a fold number"),
    "no fold column": (lambda p: _bad_folds(p, pd.DataFrame({"id": ids, "a": 0, "b": 1})), "no 'fold' column"),
    "folds file not found": (lambda p: ["--folds-file", str(p / "nope.csv")], "file not found"),
    "extra missing a column": (lambda p: _extra(p, frame(10).drop(columns=["colour", "grp"])),
                               r"missing column\(s\) colour, grp"),
    "extra unknown label": (lambda p: _extra(p, frame(10).assign(y=7)), "unknown target value"),
}


def _extra(tmp_path, rows: pd.DataFrame) -> list[str]:
    rows.to_csv(tmp_path / "e.csv", index=False)
    return ["--extra-train", str(tmp_path / "e.csv")]


@pytest.mark.parametrize("case", BAD)
def test_bad_option_is_one_line_exit_2_no_files(case, comp, runs_dir, tmp_path, capsys):
    make, msg = BAD[case]
    code = cli(comp, runs_dir, tmp_path, *make(tmp_path))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(msg, err), err
    assert files_under(runs_dir) == [] and not (tmp_path / "sub.csv").exists()


def test_image_tasks_refuse_the_options(runs_dir, tmp_path, capsys):
    assert main(["train", "mnist", "--group", "x", "--runs-dir", str(runs_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "for tables only" in err and err.count("\n") == 1 and files_under(runs_dir) == []


def test_resume_keeps_the_options(comp, runs_dir, tmp_path, capsys):
    pd.DataFrame({"id": ids, "fold": ids % 2}).to_csv(tmp_path / "folds.csv", index=False)
    frame(12, seed=3).drop(columns="id").to_csv(tmp_path / "extra.csv", index=False)
    options = ["--folds-file", str(tmp_path / "folds.csv"), "--extra-train", str(tmp_path / "extra.csv")]
    assert cli(comp, runs_dir, tmp_path, *options) == 0
    run = only_run(runs_dir)
    straight = (run / "oof.csv").read_bytes()
    for name in ("oof.csv", "metrics.json"):      # as a run cut after fold 0 leaves it
        (run / name).unlink()
    for f in (run / "fold1").iterdir():
        f.unlink()
    runs.set_status(run, "interrupted", seconds=1.0)
    assert main(["train", "tinyfolds", "--resume", "latest", "--group", "grp", "--runs-dir", str(runs_dir)]) == 2
    assert "drop --group" in capsys.readouterr().err
    assert main(["train", "tinyfolds", "--resume", "latest", "--runs-dir", str(runs_dir), "--quiet"]) == 0
    assert (run / "oof.csv").read_bytes() == straight
    assert json.loads((run / "metrics.json").read_text())["extra_train"]["rows"] == 12


def test_a_task_without_ids_takes_one_fold_per_row_in_order(runs_dir, tmp_path, capsys):
    """diabetes has no id column (nor a header): its folds file is a lone `fold` column, row for row;
    its extra rows are headerless, as its train file."""
    import gzip
    from tests.conftest import ROOT
    rows = gzip.open(ROOT / "data" / "diabetes" / "diabetes.csv.gz", "rt").read().splitlines()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "diabetes.csv").write_text("\n".join(rows[:120]) + "\n")
    (tmp_path / "extra.csv").write_text("\n".join(rows[120:150]) + "\n")
    fold = np.arange(120) % 4 // 2       # 0, 0, 1, 1, ...
    pd.DataFrame({"fold": fold[:119]}).to_csv(tmp_path / "short.csv", index=False)
    args = ["train", "diabetes", "--jobs", "1", "--epochs", "1", "--quiet", "--data-dir", str(tmp_path / "mine"),
            "--runs-dir", str(runs_dir), "--out", str(tmp_path / "p.csv")]
    assert main([*args, "--folds-file", str(tmp_path / "short.csv")]) == 2
    assert "119 rows for the train's 120" in capsys.readouterr().err and files_under(runs_dir) == []
    pd.DataFrame({"fold": fold}).to_csv(tmp_path / "folds.csv", index=False)
    assert main([*args, "--folds-file", str(tmp_path / "folds.csv"), "--extra-train", str(tmp_path / "extra.csv")]) == 0
    [run] = [p for p in (runs_dir / "diabetes").iterdir() if p.is_dir()]
    oof = pd.read_csv(run / "oof.csv")
    assert list(oof["id"]) == list(range(1, 121))        # row numbers of the competition's rows only
    for k in range(2):
        assert np.allclose(validated(run, k), oof["proba"][fold == k], atol=1e-7)
        assert json.loads((run / f"fold{k}" / "scores.json").read_text())["n_train"] == 60 + 30
