"""`init`, and what `train` and `tune` share for a competition inferred from its files: the options
that settle what inference cannot (--target, --id, --metric, column types...), and the summary
printed before training. The rules themselves live in data/infer.py; the precedence of task file,
spec file and inference in pipelines/__init__.py.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer

from commands.options import RunsDir, TaskArg
from core.errors import UsageError

ColumnsOpt = "Comma-separated column names"
Target = Annotated[Optional[str], typer.Option(help="Inferred task: the train column to predict (default: the one train has and test lacks).")]
IdCol = Annotated[Optional[str], typer.Option("--id", help="Inferred task: the id column (default: the sample submission's first).")]
Metric = Annotated[Optional[str], typer.Option(help="Inferred task: accuracy, balanced_accuracy, roc_auc, logloss, f1, mcc, qwk, rmse, rmsle, mae or r2 (default by problem type, printed).")]
Problem = Annotated[Optional[str], typer.Option(help="Inferred task: binary, multiclass, classification or regression, where the target leaves it open.")]
Submission = Annotated[Optional[str], typer.Option(help="Inferred task: labels, probability, class_probabilities or values (default: as the sample writes it).")]
NaValues = Annotated[Optional[str], typer.Option(help="Inferred task: extra missing-value tokens, comma-separated, e.g. '?,-'.")]
Categorical = Annotated[Optional[str], typer.Option(help=f"Inferred task: {ColumnsOpt} to treat as categories.")]
Numeric = Annotated[Optional[str], typer.Option(help=f"Inferred task: {ColumnsOpt} to treat as numbers.")]
Text = Annotated[Optional[str], typer.Option(help=f"Inferred task: {ColumnsOpt} to treat as high-cardinality text.")]
Boolean = Annotated[Optional[str], typer.Option(help=f"Inferred task: {ColumnsOpt} to treat as booleans.")]
Drop = Annotated[Optional[str], typer.Option(help=f"Inferred task: {ColumnsOpt} to leave out of the features.")]


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def infer_options(target=None, id_col=None, metric=None, problem=None, submission=None, na_values=None,
                  categorical=None, numeric=None, text=None, boolean=None, drop=None) -> dict:
    """The inference settings the user gave, as data.infer.infer's keyword arguments (only those given)."""
    given = [(col, kind) for kind, cols in (("categorical", categorical), ("numeric", numeric), ("text", text),
                                            ("boolean", boolean)) for col in _names(cols)]
    types = dict(given)
    twice = sorted(col for col, n in Counter(col for col, _ in given).items() if n > 1)
    if twice:
        raise UsageError(f"column(s) {', '.join(twice)} given two types; give each column one of "
                         "--categorical, --numeric, --text, --boolean")
    options = dict(target=target, id_col=id_col, metric=metric, problem=problem, submission=submission,
                   na_values=tuple(_names(na_values)) if na_values else None, column_types=types or None,
                   drop=tuple(_names(drop)) if drop else None)
    return {k: v for k, v in options.items() if v is not None}


def resolve(task: str, data_dir: Path | None, runs_dir: Path | None, options: dict, quiet: bool = False):
    """The task `task` names (pipelines.resolve_task), with the summary of an inferred or spec-file
    competition printed to stderr first, so a wrong guess shows before any training."""
    from data.spec import summary
    from pipelines import resolve_task
    t = resolve_task(task, data_dir=data_dir, runs_root=runs_dir, infer_options=options)
    if t.spec is not None:
        from pipelines.metrics import check_metric
        check_metric(t)
        if not quiet:
            for line in summary(t.spec):
                typer.echo(line, err=True)
    return t


def data_dir_of(t, data_dir: Path | None) -> Path | None:
    """Where the task's files are: --data-dir, else the folder its spec names."""
    return data_dir or (Path(t.spec.data_dir) if t.spec is not None else None)


def init(
    task: TaskArg,
    data_dir: Annotated[Path, typer.Option(help="Folder with the competition's train, test and sample submission (plain, .gz or Kaggle .zip).")],
    target: Target = None, id_col: IdCol = None, metric: Metric = None, problem: Problem = None,
    submission: Submission = None, na_values: NaValues = None, categorical: Categorical = None,
    numeric: Numeric = None, text: Text = None, boolean: Boolean = None, drop: Drop = None,
    runs_dir: RunsDir = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing spec file.")] = False,
):
    """Infer a new competition from its files and write the spec as an editable JSON file that
    `train TASK` (and every other command) then uses."""
    from data import infer, spec as specs
    from pipelines import SPEC_FILE, TASK_NAMES, register_spec
    from pipelines.runs import RUNS_ROOT
    if task in TASK_NAMES:
        raise UsageError(f"{task} has a task file (tasks/{task}.py); init is for a competition without one")
    path = Path(runs_dir or RUNS_ROOT) / task / SPEC_FILE
    if path.exists() and not force:
        raise UsageError(f"{path} exists; edit it, or pass --force to infer it again")
    spec = infer.infer(task, Path(data_dir), **infer_options(target, id_col, metric, problem, submission, na_values,
                                                               categorical, numeric, text, boolean, drop))
    from pipelines.metrics import check_metric
    check_metric(register_spec(spec))
    path.parent.mkdir(parents=True, exist_ok=True)
    specs.save(spec, path)
    for line in specs.summary(spec):
        typer.echo(line)
    typer.echo(f"spec: {path}  (edit it; `train {task}` uses it)")


def task_of_run(task: str, run: str, runs_dir: Path | None):
    """The task as run `run` of `task` trained it: a registered task, or the spec copy the run
    kept (registered for this process, so the pipeline reaches it by name)."""
    from pipelines import register_run_spec, resolve_task, runs
    t = resolve_task(task, runs_root=runs_dir)          # an unknown name: one line with a did-you-mean
    if t.spec is None:
        return t
    return register_run_spec(runs.load(t.name, run, require=None, runs_root=runs_dir).path) or t
