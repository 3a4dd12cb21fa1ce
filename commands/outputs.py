"""`predict`, `blend`, `predict-image`, `download`, `submit`: the commands that write or send predictions and data."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from commands.logs import set_logging
from commands.options import KNOWN_TASKS, DataDir, Device, DeviceOpt, InputFile, OutCsv, Quiet, RunsDir, TaskArg, Verbose
from commands.competition import data_dir_of, task_of_run
from core.errors import UsageError
from pipelines import resolve_task, task_name


def predict(
    task: TaskArg,
    run: Annotated[str, typer.Option(help="Run id, 'latest', or a run directory path.")] = "latest",
    data_dir: DataDir = None,
    input: InputFile = None,
    out: OutCsv = None,
    device: DeviceOpt = Device.auto,
    runs_dir: RunsDir = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Rebuild a run's fold models from its directory and predict a test file."""
    from pipelines.predict import predict as run_predict
    set_logging(verbose, quiet)
    t = task_of_run(task, run, runs_dir)
    path = run_predict(run, t.name, data_dir=data_dir_of(t, data_dir) if input is None else data_dir,
                       input_path=input, out=out, runs_root=runs_dir, device=device.value)
    typer.echo(f"submission: {path}")


def blend(
    task: TaskArg,
    runs: Annotated[Optional[list[str]], typer.Argument(help="Two or more run ids or run directory paths.")] = None,
    top: Annotated[Optional[int], typer.Option(help="Blend the task's N best complete runs by CV instead.")] = None,
    data_dir: DataDir = None,
    input: InputFile = None,
    out: OutCsv = None,
    device: DeviceOpt = Device.auto,
    runs_dir: RunsDir = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Blend finished runs: weights fit to their out-of-fold predictions, one submission."""
    from pipelines.blend import blend as run_blend
    t = resolve_task(task, runs_root=runs_dir)
    set_logging(verbose, quiet)
    result = run_blend(t.name, list(runs or []), data_dir=data_dir_of(t, data_dir), out=out, runs_root=runs_dir,
                       device=device.value, top=top, input_path=input)
    metric = t.metric
    typer.echo(f"{'run':34s} {'weight':>7s} " + " ".join(f"{m:>9s}" for m in result.cv))
    for name, w, cv in zip(result.runs, result.weights, result.run_cv):
        typer.echo(f"{name:34s} {w:7.3f} " + " ".join(f"{v:9.5f}" for v in cv.values()))
    typer.echo(f"{'blend (weights cross-fitted)':34s} {'':7s} " + " ".join(f"{v:9.5f}" for v in result.cv.values()))
    temperature = f" (temperature {result.temperature:.3f})" if t.problem != "regression" else ""
    typer.echo(f"blend CV {metric} {result.cv[metric]:.5f} on {result.rows} out-of-fold rows{temperature}")
    typer.echo(f"submission: {result.submission}")


def predict_image(
    task: Annotated[str, typer.Argument(help=f"Image task: {KNOWN_TASKS}.", show_default=False)],
    files: Annotated[list[Path], typer.Argument(help="Image files (any size/mode; converted to the task's), or folders of them.")],
    run: Annotated[str, typer.Option(help="Run id, 'latest', or a run directory path.")] = "latest",
    device: DeviceOpt = Device.auto,
    runs_dir: RunsDir = None,
):
    """Classify your own pictures with a trained image run: prints class and probability."""
    from pipelines.predict import predict_images
    for path, label, prob in predict_images(run, task_name(task), files, runs_root=runs_dir, device=device.value):
        typer.echo(f"{path}\t{label}\t{prob:.4f}")


def download(
    task: TaskArg,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where the files go (default: data/<task>/).")] = None,
):
    """Fetch the competition's files with the Kaggle API and unzip them (needs API credentials)."""
    from submissions import kaggle
    for path in kaggle.download(resolve_task(task), data_dir):
        typer.echo(f"downloaded: {path}")


def submit(
    task: TaskArg,
    message: Annotated[str, typer.Option("--message", "-m", help="Description Kaggle shows beside the score.")],
    run: Annotated[str, typer.Option(help="Upload this run's submission: id, 'latest' or a run directory.")] = "latest",
    file: Annotated[Optional[Path], typer.Option(help="Upload this CSV instead (wins over --run).")] = None,
    competition: Annotated[Optional[str], typer.Option(help="Kaggle competition slug (default: the task's; needed for an inferred competition).")] = None,
    runs_dir: RunsDir = None,
):
    """Check a submission file against the competition's format, then upload it with the Kaggle API."""
    import dataclasses
    from pipelines.runs import submission_of_run
    from submissions import kaggle
    t = task_of_run(task, run, runs_dir) if file is None else resolve_task(task, runs_root=runs_dir)
    if competition:
        t = dataclasses.replace(t, kaggle=competition)
    elif t.spec is not None:
        raise UsageError(f"{t.name} was inferred from its files: name its Kaggle competition with --competition SLUG")
    find = lambda: submission_of_run(t.name, run, runs_dir)     # noqa: E731  (after the message check)
    path, reply = kaggle.submit(t, message, file if file is not None else find)
    typer.echo(f"submitted: {path} to {t.kaggle}" + (f"  ({reply})" if reply else ""))
