"""Staged pipelines, and the registry of tasks.

Each competition is one file, pipelines/<name>.py, that registers its task when imported;
TASK_NAMES lists them, so registering a new one means adding its name here. `TASKS` (and
`Task`) import every task file on first use; the names alone import nothing, so the CLI
builds its choices and `--help` without pandas, scikit-learn or torch.
"""
import importlib

TASK_NAMES = ("cifar10", "diabetes", "mnist", "otto", "titanic")    # each registers the task of its name


def __getattr__(name: str):
    if name not in ("TASKS", "Task"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from pipelines import task
    for module in TASK_NAMES:
        importlib.import_module(f"pipelines.{module}")
    globals().update(TASKS=task.TASKS, Task=task.Task)      # later lookups skip this function
    return globals()[name]
