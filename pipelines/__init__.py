"""Staged pipelines, and the registry of tasks.

Each competition is one file, tasks/<name>.py, that registers its task when imported;
TASK_NAMES lists them, so registering a new one means adding its name here. `TASKS` (and
`Task`) import every task file on first use; the names alone import nothing, so the CLI
builds its choices and `--help` without pandas, scikit-learn or torch.
"""
import importlib

TASK_NAMES = ("cifar10", "diabetes", "mnist", "otto", "titanic")    # each registers the task of its name


def task_name(name: str) -> str:
    """`name` when a task of that name is registered, else one line with a did-you-mean and the
    known names. Imports no task file, so `runs` and `report` check a name at no cost; where a
    task's name alone will not do (a folder of data for an unregistered one), it is decided here."""
    if name not in TASK_NAMES:
        from core.errors import UsageError, did_you_mean
        raise UsageError(f"unknown task {name!r}{did_you_mean(name, TASK_NAMES)}; known: {', '.join(sorted(TASK_NAMES))}")
    return name


def resolve_task(name: str):
    """The registered task called `name` (a Task or ImageTask); an unknown name is `task_name`'s one line."""
    from pipelines import TASKS      # imports every task file (see __getattr__)
    return TASKS.create(task_name(name))


def __getattr__(name: str):
    if name not in ("TASKS", "Task"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from tasks import task
    for module in TASK_NAMES:
        importlib.import_module(f"tasks.{module}")
    globals().update(TASKS=task.TASKS, Task=task.Task)      # later lookups skip this function
    return globals()[name]
