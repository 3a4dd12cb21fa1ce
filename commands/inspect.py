"""`tasks`, `models`, `report`, `runs`: the commands that only read and print."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from commands.options import KNOWN_TASKS, RunsDir
from core.config import format_overrides
from pipelines import task_name


def tasks():
    """List the registered competitions."""
    from pipelines import TASKS
    for name in TASKS.names():
        t = TASKS.create(name)
        typer.echo(f"{name:10s} {t.title}  [default model: {t.defaults.get('model', 'mlp')}]")


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
    for line in run_report(run, task_name(task) if task else None, runs_root=runs_dir):
        typer.echo(line)


def list_runs(
    task: Annotated[Optional[str], typer.Argument(help=f"Only this competition: {KNOWN_TASKS}.", show_default=False)] = None,
    runs_dir: RunsDir = None,
):
    """Finished runs grouped by the data they trained on (newest first), best CV score first within a
    group: runs of different data never rank, or blend, together. Unfinished runs are listed apart."""
    from pipelines.listing import runs_table
    for line in runs_table(task_name(task) if task else None, runs_dir):
        typer.echo(line)
