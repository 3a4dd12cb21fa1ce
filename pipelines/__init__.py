"""Staged pipelines, and where a task name becomes a task.

Each registered competition is one file, tasks/<name>.py, that registers its task when imported;
TASK_NAMES lists them, so registering a new one means adding its name here. `TASKS` (and
`Task`) import every task file on first use; the names alone import nothing, so the CLI
builds its choices and `--help` without pandas, scikit-learn or torch.

A name with no task file is a competition described by a spec (tasks/generic.py), found in this
order: the editable spec `cli.py init` wrote (<runs>/<name>/spec.json), then files in a
--data-dir (inferred, data/infer.py), then the spec copy of the newest run of that name. Once
found it is registered in TASKS for this process, so every stage reaches it by name.
"""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

TASK_NAMES = ("cifar10", "diabetes", "mnist", "otto", "titanic")    # each registers the task of its name
SPEC_FILE = "spec.json"         # <runs>/<name>/spec.json (init), and a copy in each run folder of such a task


def _runs_root(runs_root: Path | None) -> Path:
    from pipelines.runs import RUNS_ROOT
    return Path(runs_root or RUNS_ROOT)


def known_specs(runs_root: Path | None = None) -> list[str]:
    """Names with a spec: an init-written one, or a run that kept its own."""
    root = _runs_root(runs_root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (
        (p / SPEC_FILE).is_file() or any(p.glob(f"*/{SPEC_FILE}")))) if root.is_dir() else []


def _unknown(name: str, runs_root: Path | None, data_dir_given: bool = False):
    """The one line for a name no task, spec or run answers; the --data-dir hint only where it was not given."""
    from core.errors import UsageError, did_you_mean
    known = sorted({*TASK_NAMES, *known_specs(runs_root)})
    hint = "" if data_dir_given else " (a new competition: pass --data-dir DIR holding its train, test and sample submission)"
    return UsageError(f"unknown task {name!r}{did_you_mean(name, known)}; known: {', '.join(known)}{hint}")


def _newest_run_spec(name: str, runs_root: Path | None) -> Path | None:
    copies = sorted(_runs_root(runs_root).joinpath(name).glob(f"*/{SPEC_FILE}"), key=lambda p: p.parent.name)
    return copies[-1] if copies else None


def register_spec(spec):
    """Register the task `spec` describes (replacing one of that name) and return it."""
    from tasks.generic import task_from_spec
    from tasks.task import TASKS
    task = task_from_spec(spec)
    TASKS.put(task.name, lambda: task)
    return task


def register_run_spec(run_dir: Path):
    """The task as run `run_dir` trained it, from the spec copy it kept: `predict` uses that copy
    (the editable spec may have changed since). None for a run of a registered task."""
    from data import spec as specs
    path = Path(run_dir) / SPEC_FILE
    return register_spec(specs.load(path)) if path.is_file() else None


def task_name(name: str, runs_root: Path | None = None) -> str:
    """`name` when a task file or a spec of that name exists (registering the spec's task), else one
    line with a did-you-mean. A registered name imports nothing, so `runs` checks it at no cost."""
    if name in TASK_NAMES:
        return name
    resolve_task(name, runs_root=runs_root)
    return name


def resolve_task(name: str, data_dir: Path | None = None, runs_root: Path | None = None,
                 infer_options: dict | None = None):
    """The task `name` (a Task or ImageTask), by the precedence in this module's docstring.

    `infer_options`: what the user set for inference (target, id_col, metric, ...). They apply
    only when the files are inferred; with an editable spec they are refused (edit the spec)."""
    from pipelines import TASKS      # imports every task file (see __getattr__)
    if name in TASK_NAMES:
        if infer_options:
            from core.errors import UsageError
            raise UsageError(f"{name} has a task file (tasks/{name}.py); {', '.join(option_flags(infer_options))} "
                             f"apply only to a competition inferred from its files")
        return TASKS.create(name)
    from data import infer, spec as specs
    editable = _runs_root(runs_root) / name / SPEC_FILE
    if editable.is_file():
        if infer_options:
            from core.errors import UsageError
            raise UsageError(f"{name} is described by {editable}: edit it (or delete it to infer again) "
                             f"instead of passing {', '.join(option_flags(infer_options))}")
        spec = specs.load(editable)
        if data_dir is not None:
            spec = dataclasses.replace(spec, data_dir=str(Path(data_dir).resolve()))
        return register_spec(spec)
    if data_dir is not None:
        from core.errors import UsageError, did_you_mean
        if did_you_mean(name, TASK_NAMES):     # 'otot': a typo of a task, not a new competition
            raise UsageError(f"{_unknown(name, runs_root, data_dir_given=True)}; to make a new competition of that name anyway: "
                             f"python cli.py init {name} --data-dir DIR")
        return register_spec(infer.infer(name, Path(data_dir), **(infer_options or {})))
    copy = _newest_run_spec(name, runs_root)
    if copy is not None:
        if infer_options:           # they would change nothing: the copy is what an earlier run inferred
            from core.errors import UsageError
            raise UsageError(f"{', '.join(option_flags(infer_options))} apply when {name} is inferred from its "
                             f"files: pass --data-dir DIR too (or write a spec: python cli.py init {name} --data-dir DIR)")
        return register_spec(specs.load(copy))
    raise _unknown(name, runs_root)


def option_flags(options: dict) -> list[str]:
    """The CLI flags that set these inference options (data.infer.infer's keyword names)."""
    named = {"id_col": "--id", "column_types": "--categorical/--numeric/--text/--boolean"}
    return [named.get(k, "--" + k.replace("_", "-")) for k in options]


def __getattr__(name: str):
    if name not in ("TASKS", "Task"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from tasks import task
    for module in TASK_NAMES:
        importlib.import_module(f"tasks.{module}")
    globals().update(TASKS=task.TASKS, Task=task.Task)      # later lookups skip this function
    return globals()[name]
