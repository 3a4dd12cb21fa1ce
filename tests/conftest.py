"""Shared fixtures: tiny data made in the test, and isolated run/submission folders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _plots_only_where_asked(request, monkeypatch):
    """A tiny train spends ~0.9 s of its ~1.2 s drawing its plots with matplotlib; tests that look at
    a run's plots (tests/test_report.py) are marked `plots` and get them, the others skip drawing."""
    if request.node.get_closest_marker("plots") is None:
        monkeypatch.setattr("pipelines.train.write_plots", lambda run_dir: [])


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return tmp_path / "runs"


def tiny_titanic(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A Titanic-shaped frame whose survival depends on sex and class, so a model can learn."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["male", "female"], n)
    pclass = rng.integers(1, 4, n)
    titles = np.where(sex == "male", rng.choice(["Mr", "Master", "Dr"], n), rng.choice(["Mrs", "Miss"], n))
    survived = ((sex == "female") ^ (rng.random(n) < 0.15)).astype(int)
    return pd.DataFrame({
        "PassengerId": np.arange(1, n + 1), "Survived": survived, "Pclass": pclass,
        "Name": [f"Doe{i}, {t}. John" for i, t in enumerate(titles)], "Sex": sex,
        "Age": np.where(rng.random(n) < 0.2, np.nan, rng.integers(1, 70, n)).astype(float),
        "SibSp": rng.integers(0, 3, n), "Parch": rng.integers(0, 3, n),
        "Ticket": [f"T{i // 2}" for i in range(n)], "Fare": rng.gamma(2.0, 15.0, n).round(2),
        "Cabin": np.where(rng.random(n) < 0.7, None, rng.choice(["C85", "B42", "E12"], n)),
        "Embarked": rng.choice(["S", "C", "Q", None], n),
    })


@pytest.fixture
def titanic_dir(tmp_path) -> Path:
    """A --data-dir holding tiny Titanic train/test files."""
    folder = tmp_path / "titanic_data"
    folder.mkdir()
    train = tiny_titanic(60)
    test = tiny_titanic(20, seed=1).drop(columns="Survived")
    test["PassengerId"] += 1000
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    return folder


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).exists() else []


def proc_stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (state, ppid, ...); None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie): a worker that could still write into a run."""
    stat = proc_stat(pid)
    return stat is not None and stat[0] != "Z"


@pytest.fixture(autouse=True)
def forget_inferred_tasks():
    """A competition inferred from its files is registered for the rest of the process
    (pipelines.register_spec); each test starts from the task files alone, so a later test of the
    task list never sees an earlier test's competition."""
    yield
    import pipelines
    if "TASKS" in vars(pipelines):         # never import every task file just to clean up
        for name in [n for n in pipelines.TASKS.names() if n not in pipelines.TASK_NAMES]:
            pipelines.TASKS.remove(name)
