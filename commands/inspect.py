"""`tasks`, `models`, `report`, `runs`: the commands that only read and print."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from commands.options import KNOWN_TASKS, RunsDir
from core.config import format_overrides
from pipelines import task_name


def tasks(runs_dir: RunsDir = None):
    """List the competitions: those with a task file, then those inferred from their files (a spec)."""
    from pipelines import TASKS, known_specs, resolve_task
    for name in TASKS.names():
        t = TASKS.create(name)
        typer.echo(f"{name:10s} {t.title}  [default model: {t.defaults.get('model', 'mlp')}]")
    for name in [n for n in known_specs(runs_dir) if n not in TASKS]:
        typer.echo(f"{name:10s} {resolve_task(name, runs_root=runs_dir).title}")


def models():
    """List the registered models: the nets, then the other learners (`--model NAME` takes either)."""
    from models import MODELS
    from pipelines.learners import LEARNERS
    for name in MODELS.names():
        doc = (MODELS.get(name).__doc__ or "").strip().splitlines()
        own = format_overrides(MODELS.tags[name].get("defaults", {}))
        typer.echo(f"{name:18s} {doc[0] if doc else ''}" + (f"  [own defaults: {own}]" if own else ""))
    for name in [n for n in LEARNERS.names() if n not in MODELS]:
        doc = (LEARNERS.get(name).__doc__ or "").strip().splitlines()
        typer.echo(f"{name:18s} {doc[0] if doc else ''}")


def report(
    task: Annotated[Optional[str], typer.Argument(help=f"Competition: {KNOWN_TASKS}; default: every task.", show_default=False)] = None,
    run: Annotated[str, typer.Option(help="Run id, 'latest', or a run directory path.")] = "latest",
    runs_dir: RunsDir = None,
):
    """A run's summary (state, CV and per-fold scores, best epochs, timing) and its plots, made if missing."""
    from pipelines.report import report as run_report
    from commands.competition import task_of_run
    from pipelines import register_run_spec, runs
    if task:
        task = task_of_run(task, run, runs_dir).name
    else:                     # a run of an inferred competition: its spec copy makes the task
        register_run_spec(runs.load(None, run, require=None, runs_root=runs_dir).path)
    for line in run_report(run, task, runs_root=runs_dir):
        typer.echo(line)


def list_runs(
    task: Annotated[Optional[str], typer.Argument(help=f"Only this competition: {KNOWN_TASKS}.", show_default=False)] = None,
    runs_dir: RunsDir = None,
):
    """Finished runs grouped by the data they trained on (newest first), best CV score first within a
    group: runs of different data never rank, or blend, together. Unfinished runs are listed apart."""
    from pipelines.listing import runs_table
    for line in runs_table(task_name(task, runs_dir) if task else None, runs_dir):
        typer.echo(line)
