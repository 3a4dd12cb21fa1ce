"""Command line: parse, build the config, call a pipeline function. No logic lives here.

    python cli.py tasks
    python cli.py train otto --folds 5 --data-dir DIR
    python cli.py predict otto --run latest --data-dir DIR
    python cli.py runs otto
    python cli.py submit titanic --run latest -m "mlp, 5 folds"
"""
from __future__ import annotations

import errno
import logging
import re
import signal
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from core.config import format_overrides, load_params, parse_jobs, parse_overrides
from core.errors import UsageError, did_you_mean
from pipelines import TASK_NAMES, resolve_task, task_name

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Kaggle competition pipeline: ingest -> features -> k-fold training -> submission.")

Device = Enum("Device", {n: n for n in ("auto", "cpu", "cuda")}, type=str)

# a task is a name, resolved by pipelines.task_name / resolve_task (a did-you-mean for a typo), not a choice
KNOWN_TASKS = f"one of {', '.join(sorted(TASK_NAMES))} (see `tasks`)"
TaskArg = Annotated[str, typer.Argument(help=f"Competition: {KNOWN_TASKS}.", show_default=False)]
DataDir = Annotated[Optional[Path], typer.Option(help="Folder with the competition's files (plain, .gz or Kaggle .zip).")]
RunsDir = Annotated[Optional[Path], typer.Option(help="Root of run directories (default: runs/).")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug lines (every epoch) and library warnings.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; errors only.")]
InputFile = Annotated[Optional[Path], typer.Option("--input", help="Score this file instead of the task's test file.")]
OutCsv = Annotated[Optional[Path], typer.Option(help="Output CSV path.")]
DeviceOpt = Annotated[Device, typer.Option()]

log = logging.getLogger("cli")      # not __name__: that is '__main__' under `python cli.py`
OUR_LOGGERS = ("cli", "core", "data", "features", "models", "pipelines", "submissions", "tasks")


class _Stderr(logging.StreamHandler):
    """Writes to sys.stderr as it is at each record: rich's live display (and pytest) swap it."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _logging(verbose: bool = False, quiet: bool = False) -> None:
    """Our loggers: INFO (summary lines) by default, DEBUG with --verbose, errors only with
    --quiet. Libraries, and Python warnings (routed here by `main`), speak only with --verbose."""
    if verbose and quiet:
        raise UsageError("--verbose and --quiet exclude each other")
    ours = logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO
    libraries = logging.WARNING if verbose else logging.ERROR
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(message)s"))
    # optuna and others set their own logger levels, so the handler filters too
    handler.addFilter(lambda r: r.levelno >= (ours if r.name.split(".")[0] in OUR_LOGGERS else libraries))
    root.addHandler(handler)
    root.setLevel(libraries)
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(ours)
    # torch's loggers have their own stderr handler (torch._logging), so the filter above never
    # sees them: e.g. inductor's 'No CUDA runtime is found' on a CPU-only machine with compile=true
    logging.getLogger("torch").setLevel(libraries)


@contextmanager
def _warnings_to_logging():
    """warnings.warn -> the 'py.warnings' logger, a library logger: shown with --verbose only."""
    logging.captureWarnings(False)      # re-arm: pytest or catch_warnings may have swapped showwarning since
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)


def _stop_on_sigterm() -> None:
    """`kill PID` stops training like Ctrl-C: the run is marked interrupted and can be resumed."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def _progress(quiet: bool):
    """A rich progress display on stderr: description, bar, n/N, elapsed, a free `info` field."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[info]}"), console=Console(stderr=True), transient=True, disable=quiet)


class _Bars:
    """Progress bars: one for the folds (showing the CV of the folds done so far), one per fold model
    in training (several with --jobs). The display starts at the first epoch, so an error raised
    before training prints only its own line. `calibrated`: the run temperature-scales its OOF at
    the end, so the fold lines' scores are labelled as the uncalibrated ones."""

    def __init__(self, quiet: bool, folds: int, epochs: int, calibrated: bool = False):
        self.epochs, self.started, self.calibrated = epochs, False, calibrated
        self.bar = _progress(quiet)
        self.fold_bar = self.bar.add_task("folds", total=folds, info="")
        self.model_bars: dict[tuple[int, int], int] = {}      # (fold, bag) -> its epoch bar

    def on_epoch(self, fold: int, bag: int, row: dict) -> None:
        if not self.started:
            self.bar.start()
            self.started = True
        if (fold, bag) not in self.model_bars:
            self._drop_fold(fold)         # the fold's previous bag has finished
            self.model_bars[fold, bag] = self.bar.add_task(f"fold {fold} bag {bag}", total=self.epochs, info="")
        self.bar.update(self.model_bars[fold, bag], completed=row["epoch"], info=f"val {row['val_score']:.4f}")
        log.debug("fold %d bag %d epoch %d: train_loss %.5f  val_loss %.5f  val_score %.5f  lr %.3g",
                  fold, bag, row["epoch"], row["train_loss"], row["val_loss"], row["val_score"], row["lr"])

    def on_fold(self, fold: int, row: dict) -> None:
        self._drop_fold(fold)
        scores = " ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float) and k != "seconds")
        label = " (uncalibrated; the CV at the end is calibrated)" if self.calibrated else ""
        so_far = " ".join(f"{k} {v:.4f}" for k, v in row.get("cv_so_far", {}).items())
        done = row.get("folds_done", 0)
        self.bar.update(self.fold_bar, advance=1, info=f"CV so far {so_far}" if so_far else scores)
        log.info("fold %d: %s%s  best epoch(s) %s  (%.1fs)%s", fold, scores, label,
                 ",".join(map(str, row.get("best_epochs", []))), row.get("seconds", 0.0),
                 f"  CV of {done} folds so far: {so_far}" if so_far and done > 1 else "")

    def _drop_fold(self, fold: int) -> None:
        for key in [k for k in self.model_bars if k[0] == fold]:
            self.bar.remove_task(self.model_bars.pop(key))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.started:
            self.bar.stop()


@app.command()
def tasks():
    """List the registered competitions."""
    from pipelines import TASKS
    for name in TASKS.names():
        t = TASKS.create(name)
        typer.echo(f"{name:10s} {t.title}  [default model: {t.defaults.get('model', 'mlp')}]")


@app.command()
def models():
    """List the registered models."""
    from models import MODELS
    for name in MODELS.names():
        doc = (MODELS.get(name).__doc__ or "").strip().splitlines()
        own = format_overrides(MODELS.tags[name].get("defaults", {}))
        typer.echo(f"{name:18s} {doc[0] if doc else ''}" + (f"  [own defaults: {own}]" if own else ""))


@app.command()
def train(
    task: TaskArg,
    folds: Annotated[Optional[int], typer.Option(help="K for stratified k-fold (1 = one holdout).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Max epochs per fold.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for folds, init and shuffling.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Registered model name (see `models`).")] = None,
    data_dir: DataDir = None,
    device: Annotated[Device, typer.Option(help="auto picks CUDA when torch sees a GPU.")] = Device.auto,
    jobs: Annotated[Optional[str], typer.Option(help="Folds trained at once, each in its own process: a positive number, or 'auto' (the default: one per CPU core for tables, 1 for images and CUDA).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Submission path (default: submissions/<task>-<run>.csv).")] = None,
    params: Annotated[Optional[str], typer.Option(help="'best' (tuned params of `tune TASK`), 'best:STUDY', or a JSON file of config overrides.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Config override KEY=VALUE (repeatable).")] = [],
    runs_dir: RunsDir = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    resume: Annotated[Optional[str], typer.Option(help="Continue an interrupted run (id, path or 'latest') from its last finished epoch, with its own config.")] = None,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Write TensorBoard event files to <run>/tensorboard/.")] = False,
):
    """Train K fold models, report CV, write the run directory and the submission."""
    t = resolve_task(task)
    from pipelines import train as pipeline
    from pipelines.tune import resolve_params
    _logging(verbose, quiet)
    _stop_on_sigterm()
    if resume is not None:
        given = [f"--{k}" for k, v in dict(folds=folds, epochs=epochs, seed=seed, model=model, params=params,
                                           set=set_, jobs=jobs).items() if v is not None and v != []]
        if given:
            raise UsageError(f"--resume continues a run with its saved config; drop {', '.join(given)}")
        from pipelines import runs
        cfg = (run := runs.load(t.name, resume, require="unfinished", runs_root=runs_dir)).config
        with _interruptible(), _Bars(quiet, cfg.folds, cfg.epochs, _calibrated(cfg)) as bars:
            result = pipeline.resume(t.name, str(run.path), data_dir=data_dir, out=out, runs_root=runs_dir,
                                     device=None if device is Device.auto else device.value,
                                     on_epoch=bars.on_epoch, on_fold=bars.on_fold, tensorboard=tensorboard)
        return _report_train(t.name, cfg, result)
    overrides = {**(load_params(resolve_params(params, t.name, runs_dir)) if params else {}), **parse_overrides(set_)}
    overrides |= {k: v for k, v in dict(folds=folds, epochs=epochs, seed=seed, model=model,
                                        jobs=parse_jobs(jobs) if jobs is not None else None).items() if v is not None}
    if device is not Device.auto or "device" not in overrides:    # --device wins; else a --set/--params device
        overrides["device"] = device.value
    cfg = t.config(**overrides)
    with _interruptible(), _Bars(quiet, cfg.folds, cfg.epochs, _calibrated(cfg)) as bars:
        result = pipeline.train(cfg, data_dir=data_dir, out=out, runs_root=runs_dir, on_epoch=bars.on_epoch,
                                on_fold=bars.on_fold, tensorboard=tensorboard)
    _report_train(t.name, cfg, result)


@contextmanager
def _interruptible():
    """Ctrl-C or SIGTERM during training: one line naming the resume command, exit code 130; a
    fold's worker process killed (out of memory?): one line naming it, exit code 1."""
    from pipelines.train import RunFailed, RunInterrupted
    try:
        yield
    except RunInterrupted as e:
        typer.echo(f"interrupted: {e}", err=True)
        raise typer.Exit(130) from None
    except RunFailed as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None


def _calibrated(cfg) -> bool:
    """Whether the run temperature-scales its OOF probabilities at the end (pipelines/calibrate.py)."""
    return cfg.calibrate and cfg.folds > 1


def _report_train(task: str, cfg, result) -> None:
    scores = "  ".join(f"{k} {v:.5f}" for k, v in result.scores.items())
    kind = "CV" if cfg.folds > 1 else "holdout"
    test = "".join(f"  test {k} {v:.5f}" for k, v in (result.test_scores or {}).items())
    raw = "  ".join(f"{k} {v:.5f}" for k, v in (result.uncalibrated or {}).items())
    label = f"  (calibrated; uncalibrated, as the fold lines: {raw})" if raw else ""
    typer.echo(f"{task}: {kind} {scores}{label}{test}  ({result.seconds:.1f}s)")
    typer.echo(f"run: {result.run_dir}")
    if result.submission:
        typer.echo(f"submission: {result.submission}")
    if (result.run_dir / "plots").is_dir():
        typer.echo(f"plots: {result.run_dir / 'plots'}  (`report {task} --run {result.run_dir.name}`)")


@app.command()
def tune(
    task: TaskArg,
    trials: Annotated[int, typer.Option(help="Trials to run in this process (the study keeps earlier ones).")] = 20,
    timeout: Annotated[Optional[float], typer.Option(help="Stop starting trials after this many seconds.")] = None,
    folds: Annotated[Optional[int], typer.Option(help="K for the CV score (default: the task's).")] = None,
    study: Annotated[Optional[str], typer.Option(help="Study name (default: <task>-tune); same name continues it.")] = None,
    storage: Annotated[Optional[str], typer.Option(help="RDB URL, e.g. postgresql://user@host/db, to share a study between workers (default: SQLite under runs/).")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the TPE sampler and the folds.")] = 0,
    data_dir: DataDir = None,
    device: DeviceOpt = Device.auto,
    set_: Annotated[list[str], typer.Option("--set", help="Hold a config key fixed in every trial, KEY=VALUE.")] = [],
    runs_dir: RunsDir = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Write each trial's value and params to <study>/tensorboard/.")] = False,
    jobs: Annotated[int, typer.Option(help="Trials side by side, each in a worker process on its share of the cores (default 1: one after another, in a reproducible order).")] = 1,
):
    """Search the task's hyperparameters with Optuna (TPE + median pruning) on the k-fold CV score."""
    import optuna
    from pipelines.tune import TuneFailed
    from pipelines.tune import tune as run_tune
    task = task_name(task)
    _logging(verbose, quiet)
    optuna.logging.disable_default_handler()     # optuna's own records go through ours (see _logging)
    optuna.logging.enable_propagation()
    if timeout is not None and not timeout > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {timeout}")
    bar = _progress(quiet)
    bar_id = bar.add_task("trials", total=trials, info="")

    def on_trial(st, trial):
        if not bar.live.is_started:
            bar.start()
        complete = trial.state == trial.state.COMPLETE    # a pruned trial's value is its last report, not a score
        done = any(t.state == trial.state.COMPLETE for t in st.trials)
        best = f"best {st.best_value:.5f}" if done else ""
        bar.update(bar_id, advance=1, info=f"{best}  last: {trial.state.name.lower()}")
        log.info("trial %d: %s%s", trial.number, trial.state.name.lower(),
                 f"  value {trial.value:.5f}" if complete else "")
    try:
        result = run_tune(task, trials, timeout=timeout, folds=folds, study=study, storage=storage, seed=seed,
                          data_dir=data_dir, runs_root=runs_dir, device=device.value, fixed=parse_overrides(set_),
                          on_trial=on_trial, tensorboard=tensorboard, jobs=jobs)
    except TuneFailed as e:       # a --jobs worker killed: one line, exit 1, as train's
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    finally:
        if bar.live.is_started:      # stopping a bar that never started prints a blank line before the error
            bar.stop()
    typer.echo(f"{task}: best {result.best_value:.5f}  complete {result.n_complete}  pruned {result.n_pruned}"
               f"  failed {result.n_failed}  (~{result.seconds_saved:.0f}s saved by pruning, at each pruned trial's own pace)")
    keys = list(dict.fromkeys(k for row in result.top for k in row if k not in ("trial", "value", "seconds")))
    typer.echo("trial      value  seconds  " + "  ".join(keys))
    for row in result.top:
        vals = "  ".join(f"{row[k]:.4g}" if isinstance(row.get(k), float) else str(row.get(k, "-")) for k in keys)
        typer.echo(f"{row['trial']:5d}  {row['value']:9.5f}  {row['seconds']:7.1f}  {vals}")
    spec = "best" if study in (None, f"{task}-tune") else f"best:{study}"    # the name as given: 'grp/s1' too
    typer.echo(f"best params: {result.study_dir / 'best_params.json'}  (train with --params {spec})")
    for plot in result.plots:
        typer.echo(f"plot: {plot}")


@app.command()
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
    _logging(verbose, quiet)
    path = run_predict(run, task_name(task), data_dir=data_dir, input_path=input, out=out, runs_root=runs_dir,
                       device=device.value)
    typer.echo(f"submission: {path}")


@app.command()
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
    t = resolve_task(task)
    _logging(verbose, quiet)
    result = run_blend(t.name, list(runs or []), data_dir=data_dir, out=out, runs_root=runs_dir,
                       device=device.value, top=top, input_path=input)
    metric = t.metric
    typer.echo(f"{'run':34s} {'weight':>7s} " + " ".join(f"{m:>9s}" for m in result.cv))
    for name, w, cv in zip(result.runs, result.weights, result.run_cv):
        typer.echo(f"{name:34s} {w:7.3f} " + " ".join(f"{v:9.5f}" for v in cv.values()))
    typer.echo(f"{'blend (weights cross-fitted)':34s} {'':7s} " + " ".join(f"{v:9.5f}" for v in result.cv.values()))
    typer.echo(f"blend CV {metric} {result.cv[metric]:.5f} on {result.rows} out-of-fold rows "
               f"(temperature {result.temperature:.3f})")
    typer.echo(f"submission: {result.submission}")


@app.command("predict-image")
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


@app.command()
def report(
    task: Annotated[Optional[str], typer.Argument(help=f"Competition: {KNOWN_TASKS}; default: every task.", show_default=False)] = None,
    run: Annotated[str, typer.Option(help="Run id, 'latest', or a run directory path.")] = "latest",
    runs_dir: RunsDir = None,
):
    """A run's summary (state, CV and per-fold scores, best epochs, timing) and its plots, made if missing."""
    from pipelines.report import report as run_report
    for line in run_report(run, task_name(task) if task else None, runs_root=runs_dir):
        typer.echo(line)


@app.command("runs")
def list_runs(
    task: Annotated[Optional[str], typer.Argument(help=f"Only this competition: {KNOWN_TASKS}.", show_default=False)] = None,
    runs_dir: RunsDir = None,
):
    """Finished runs grouped by the data they trained on (newest first), best CV score first within a
    group: runs of different data never rank, or blend, together. Unfinished runs are listed apart."""
    from pipelines.listing import runs_table
    for line in runs_table(task_name(task) if task else None, runs_dir):
        typer.echo(line)


@app.command()
def download(
    task: TaskArg,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where the files go (default: data/<task>/).")] = None,
):
    """Fetch the competition's files with the Kaggle API and unzip them (needs API credentials)."""
    from submissions import kaggle
    for path in kaggle.download(resolve_task(task), data_dir):
        typer.echo(f"downloaded: {path}")


@app.command()
def submit(
    task: TaskArg,
    message: Annotated[str, typer.Option("--message", "-m", help="Description Kaggle shows beside the score.")],
    run: Annotated[str, typer.Option(help="Upload this run's submission: id, 'latest' or a run directory.")] = "latest",
    file: Annotated[Optional[Path], typer.Option(help="Upload this CSV instead (wins over --run).")] = None,
    runs_dir: RunsDir = None,
):
    """Check a submission file against the competition's format, then upload it with the Kaggle API."""
    from pipelines.runs import submission_of_run
    from submissions import kaggle
    t = resolve_task(task)
    find = lambda: submission_of_run(t.name, run, runs_dir)     # noqa: E731  (after the message check)
    path, reply = kaggle.submit(t, message, file if file is not None else find)
    typer.echo(f"submitted: {path} to {t.kaggle}" + (f"  ({reply})" if reply else ""))


_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR}


def _click_message(e) -> str:
    """Click's error on one line, without pydantic's 'Value error, ' (Typer validates parameters with
    pydantic), and a did-you-mean for a mistyped choice ('otot' for otto), as Click gives for options."""
    message = " ".join(e.format_message().split()).replace("Value error, ", "")  # choices: tab-indented lines
    typo = re.search(r"'([^']*)' is not one of (.*)", message)
    if typo:
        message = message.rstrip(".") + did_you_mean(typo[1], re.findall(r"'([^']*)'", typo[2]))
    if type(e).__name__ == "MissingParameter" and getattr(e.param, "name", None) == "task":
        message += f" Choose from: {', '.join(sorted(TASK_NAMES))}"     # a name, not a choice: Click lists none
    return message


def main(argv: list[str] | None = None) -> int:
    """Run the app; bad input of any kind ends in one line on stderr and exit code 2."""
    _logging()              # until a command's --verbose / --quiet says otherwise
    try:
        with _warnings_to_logging():
            code = app(args=argv, standalone_mode=False)    # Typer returns 130 itself on Ctrl-C
    except UsageError as e:
        typer.echo(f"error: {e}", err=True)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except OSError as e:
        if e.errno not in _DISK_ERRORS:
            raise
        typer.echo(f"error: cannot write {e.filename or 'output'}: {e.strerror}", err=True)
        return 2
    except Exception as e:
        if not hasattr(e, "format_message"):     # Click's usage errors (Typer vendors Click)
            raise
        message = _click_message(e)
        if message:              # empty: no command given, and the help has been printed instead
            typer.echo(f"error: {message}", err=True)
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
