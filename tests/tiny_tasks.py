"""Tiny table competitions made in a test: files written to a folder and a `Task` registered under
a fresh name for the test's length (tasks.task.register_task; removed after), so the stages run
on problems no registered task poses (regression, text ids, extra missing tokens)."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from features.encoders import tabular_encoder
from tasks.task import TASKS, Task, register_task


def regression_frame(n: int, seed: int = 0, ids=None) -> pd.DataFrame:
    """x1, x2 numeric, colour categorical; y = 3 x1 - 2 x2 + colour effect + noise, all > 0."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], n)
    y = 20 + 3 * x1 - 2 * x2 + np.select([colour == "red", colour == "green"], [2.0, -1.0], 0.0) \
        + rng.normal(scale=0.3, size=n)
    return pd.DataFrame({"id": ids if ids is not None else np.arange(1, n + 1), "x1": x1.round(4),
                         "x2": x2.round(4), "colour": colour, "y": y.round(4)})


def values_submission(ids, values, task) -> pd.DataFrame:
    return pd.DataFrame({task.id_col: np.asarray(ids), task.target: values})


def labels_submission(ids, proba, task) -> pd.DataFrame:
    labels = (proba >= 0.5).astype(int) if proba.ndim == 1 else proba.argmax(1)
    return pd.DataFrame({task.id_col: np.asarray(ids), task.target: np.asarray(task.classes)[labels]})


def table_task(name: str, problem: str = "regression", metric: str = "rmse", classes: tuple = (),
               submission=values_submission, **fields) -> Task:
    """A task over `regression_frame`'s columns (x1, x2, colour; target y)."""
    return Task(name=name, title=f"test task {name}", files={"train": "train.csv", "test": "test.csv",
                "sample": "sample.csv"}, target="y", classes=classes, metric=metric, problem=problem,
                features=lambda cfg: tabular_encoder(["x1", "x2"], ["colour"]), submission=submission,
                search_space=lambda trial: {"lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True)},
                numeric=("x1", "x2"), required=("colour",), id_col="id",
                defaults=dict(model="mlp", epochs=4, batch_size=32, lr=1e-2, width=16, depth=1, patience=4,
                              folds=3, jobs=1), **fields)


@contextmanager
def registered(task: Task):
    """`task` in the task registry while the block runs."""
    register_task(lambda: task, name=task.name)
    try:
        yield task
    finally:
        TASKS.remove(task.name)


def write_competition(folder: Path, train: pd.DataFrame, test: pd.DataFrame, target: str = "y") -> Path:
    """train.csv, test.csv (no target) and sample.csv (id, target 0) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    train.to_csv(folder / "train.csv", index=False)
    test.drop(columns=target).to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"id": test["id"], target: 0}).to_csv(folder / "sample.csv", index=False)
    return folder


def problem_frames(problem: str):
    """150 training rows and 12 test rows of `regression_frame`, its target made binary or 3 classes."""
    import numpy as np
    frame, test = regression_frame(150), regression_frame(12, seed=1)
    if problem == "binary":
        for f in (frame, test):
            f["y"] = (f["y"] > 20).astype(int)
    elif problem == "multiclass":
        for f in (frame, test):
            f["y"] = np.digitize(f["y"], [17, 23])
    return frame, test
