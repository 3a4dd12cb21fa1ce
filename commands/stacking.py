"""`stack`: a level-2 learner on finished runs' out-of-fold predictions (pipelines/stack.py)."""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from commands.competition import data_dir_of
from commands.logs import set_logging
from commands.options import DataDir, Device, DeviceOpt, InputFile, OutCsv, Quiet, RunsDir, TaskArg, Verbose
from pipelines import resolve_task

Meta = Enum("Meta", {n: n for n in ("linear", "lightgbm", "weights")}, type=str)     # pipelines/stack_meta.META


def stack(
    task: TaskArg,
    runs: Annotated[Optional[list[str]], typer.Argument(help="Two or more run ids or run directory paths, of the same folds.")] = None,
    top: Annotated[Optional[int], typer.Option(help="Stack the task's N best complete runs by CV instead.")] = None,
    meta: Annotated[Meta, typer.Option(help="Level-2 learner: logistic regression (ridge for regression), a small LightGBM, or weights >= 0 summing to 1 (a convex combination, the safe one on small data).")] = Meta.linear,
    with_features: Annotated[bool, typer.Option("--with-features", help="Give the meta-learner the train file's raw numeric columns too.")] = False,
    seed: Annotated[int, typer.Option(help="Seeds the meta-learner's inner folds and trees.")] = 0,
    data_dir: DataDir = None,
    input: InputFile = None,
    out: OutCsv = None,
    device: DeviceOpt = Device.auto,
    runs_dir: RunsDir = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Stack finished runs: a meta-learner cross-fitted on their out-of-fold predictions, one submission."""
    from pipelines.stack import stack as run_stack
    t = resolve_task(task, runs_root=runs_dir)
    set_logging(verbose, quiet)
    result = run_stack(t.name, list(runs or []), meta=meta.value, with_features=with_features,
                       data_dir=data_dir_of(t, data_dir), out=out, runs_root=runs_dir, device=device.value,
                       top=top, input_path=input, seed=seed)
    board = result.leaderboard()
    typer.echo(f"{'':4s}{'':40s} " + " ".join(f"{m:>9s}" for m in result.cv))
    for rank, (name, cv) in enumerate(board, 1):
        typer.echo(f"{rank:<4d}{name:40s} " + " ".join(f"{v:9.5f}" for v in cv.values()))
    features = f", with {len(result.features)} raw column(s)" if result.features else ""
    typer.echo(f"stack CV {t.metric} {result.cv[t.metric]:.5f} on {result.rows} out-of-fold rows, cross-fitted "
               f"on the runs' {result.folds} folds ({result.meta}{features})")
    typer.echo(f"submission: {result.submission}")
