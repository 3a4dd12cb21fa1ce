"""`train` and `tune`: the commands that fit models, with their progress bars and closing summaries."""
from __future__ import annotations

import logging
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from commands.logs import set_logging
from commands.options import DataDir, Device, DeviceOpt, Quiet, RunsDir, TaskArg, Verbose
from core.config import load_params, parse_jobs, parse_overrides
from core.errors import UsageError
from commands.competition import (Boolean, Categorical, Drop, IdCol, Metric, NaValues, Numeric, Problem, Submission,
                                  Target, Text, data_dir_of, infer_options, resolve)
from pipelines import option_flags, resolve_task, task_name

log = logging.getLogger(__name__)

# how a table's rows split into folds, and extra training rows (pipelines/inputs.py); config keys
Group = Annotated[Optional[str], typer.Option(help="A train column: rows sharing its value never split across folds (grouped, stratified k-fold).")]
FoldsFile = Annotated[Optional[Path], typer.Option(help="CSV of your own folds: the id column and 'fold' (0..K-1) for every train row (no id column: one 'fold' per train row, in order); --folds follows it.")]
ExtraTrain = Annotated[Optional[Path], typer.Option(help="CSV of extra labelled rows, the train's columns (the id may be absent): added to every fold's training part, never validated on.")]


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


def _bar_total(cfg) -> int | None:
    """A fold model's bar length: its epochs, or none (no total) for trees, whose boosting rounds
    end by early stopping at a count no config gives."""
    from pipelines.learners import LEARNERS
    return cfg.epochs if getattr(LEARNERS.get(cfg.model), "progress_unit", "epoch") == "epoch" else None


class _Bars:
    """Progress bars: one for the folds (showing the CV of the folds done so far), one per fold model
    in training (several with --jobs). The display starts at the first epoch, so an error raised
    before training prints only its own line. `calibrated`: the run temperature-scales its OOF at
    the end, so the fold lines' scores are labelled as the uncalibrated ones."""

    def __init__(self, quiet: bool, folds: int, epochs: int | None, calibrated: bool = False):
        self.epochs, self.started, self.calibrated = epochs, False, calibrated
        self.bar = _progress(quiet)
        self.fold_bar = self.bar.add_task("folds", total=folds, info="")
        self.model_bars: dict[tuple, int] = {}      # (fold, bag, phase) -> its epoch bar

    def on_epoch(self, fold: int, bag: int, row: dict) -> None:
        if not self.started:
            self.bar.start()
            self.started = True
        key = (fold, bag, row.get("phase"))       # stopping=refit: a bar for each of a bag's two fits
        if key not in self.model_bars:
            self._drop_fold(fold)         # the fold's previous bag (or fit) has finished
            label = f"fold {fold} bag {bag}" + (f" {row['phase']}" if row.get("phase") else "")
            self.model_bars[key] = self.bar.add_task(label, total=self.epochs, info="")
        self.bar.update(self.model_bars[key], completed=row["epoch"], info=f"val {row['val_score']:.4f}")
        log.debug("fold %d bag %d %sepoch %d: train_loss %.5f  val_loss %.5f  val_score %.5f  lr %.3g",
                  fold, bag, f"{row['phase']} " if row.get("phase") else "", row["epoch"], row["train_loss"],
                  row["val_loss"], row["val_score"], row["lr"])

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


def train(
    task: TaskArg,
    folds: Annotated[Optional[int], typer.Option(help="K for stratified k-fold (1 = one holdout).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Max epochs per fold.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for folds, init and shuffling.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Registered model name (see `models`).")] = None,
    data_dir: DataDir = None,
    device: Annotated[Device, typer.Option(help="auto picks CUDA when torch sees a GPU.")] = Device.auto,
    jobs: Annotated[Optional[str], typer.Option(help="Folds trained at once, each in its own process: a positive number, or 'auto' (the default: one per CPU core for tables, 1 for a forest, images and CUDA).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Submission path (default: submissions/<task>-<run>.csv).")] = None,
    params: Annotated[Optional[str], typer.Option(help="'best' (tuned params of `tune TASK`), 'best:STUDY', or a JSON file of config overrides.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Config override KEY=VALUE (repeatable).")] = [],
    runs_dir: RunsDir = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    resume: Annotated[Optional[str], typer.Option(help="Continue an interrupted run (id, path or 'latest') from its last finished epoch, with its own config.")] = None,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Write TensorBoard event files to <run>/tensorboard/.")] = False,
    group: Group = None, folds_file: FoldsFile = None, extra_train: ExtraTrain = None,
    preset: Annotated[Optional[str], typer.Option(help="best or fast: a portfolio of learners, one run each, inside --time-limit, then stacked; the best submission is written (tables).")] = None,
    time_limit: Annotated[Optional[str], typer.Option(help="--preset's budget, e.g. 90s, 30m, 1h (default: 1m fast, 1h best).")] = None,

    target: Target = None, id_col: IdCol = None, metric: Metric = None, problem: Problem = None,
    submission: Submission = None, na_values: NaValues = None, categorical: Categorical = None,
    numeric: Numeric = None, text: Text = None, boolean: Boolean = None, drop: Drop = None,
):
    """Train K fold models, report CV, write the run directory and the submission."""
    options = infer_options(target, id_col, metric, problem, submission, na_values, categorical, numeric, text,
                            boolean, drop)
    if resume is not None and options:
        raise UsageError(f"--resume continues a run with its saved spec; drop {', '.join(option_flags(options))}")
    from pipelines import train as pipeline
    from pipelines.tune import resolve_params
    set_logging(verbose, quiet)
    _stop_on_sigterm()
    if time_limit is not None and preset is None:
        raise UsageError("--time-limit is the budget of a --preset; give --preset best or fast")
    if preset is not None:
        given = [flag for flag, v in (("--model", model), ("--epochs", epochs), ("--params", params), ("--set", set_),
                                      ("--resume", resume), ("--tensorboard", tensorboard or None)) if v]
        if given:
            raise UsageError(f"--preset picks each learner's settings; drop {', '.join(given)}")
        return _train_preset(task, preset, time_limit, data_dir, runs_dir, out, options, quiet,
                             dict(folds=folds, seed=seed, device=device.value,
                                  jobs=parse_jobs(jobs) if jobs is not None else None),
                             (group, folds_file, extra_train))
    if resume is not None:
        given = [f"--{k}" for k, v in dict(folds=folds, epochs=epochs, seed=seed, model=model, params=params,
                                           set=set_, jobs=jobs, group=group, folds_file=folds_file,
                                           extra_train=extra_train).items() if v is not None and v != []]
        given = [flag.replace("_", "-") for flag in given]
        if given:
            raise UsageError(f"--resume continues a run with its saved config; drop {', '.join(given)}")
        from pipelines import register_run_spec, runs
        name = task_name(task, runs_dir)
        cfg = (run := runs.load(name, resume, require="unfinished", runs_root=runs_dir)).config
        t = register_run_spec(run.path) or resolve_task(name)
        with _interruptible(), _Bars(quiet, cfg.folds, _bar_total(cfg), _calibrated(cfg)) as bars:
            result = pipeline.resume(t.name, str(run.path), data_dir=data_dir, out=out, runs_root=runs_dir,
                                     device=None if device is Device.auto else device.value,
                                     on_epoch=bars.on_epoch, on_fold=bars.on_fold, tensorboard=tensorboard)
        return _report_train(t.name, cfg, result)
    t = resolve(task, data_dir, runs_dir, options, quiet)
    data_dir = data_dir_of(t, data_dir)
    overrides = {**(load_params(resolve_params(params, t.name, runs_dir)) if params else {}), **parse_overrides(set_)}
    overrides |= {k: v for k, v in dict(folds=folds, epochs=epochs, seed=seed, model=model,
                                        jobs=parse_jobs(jobs) if jobs is not None else None).items() if v is not None}
    if device is not Device.auto or "device" not in overrides:    # --device wins; else a --set/--params device
        overrides["device"] = device.value
    from pipelines.inputs import row_options
    overrides |= row_options(t, overrides, group, folds_file, extra_train)
    cfg = t.config(**overrides)
    from models.registry import all_options, check_options
    check_options(cfg.model, set(parse_overrides(set_)), all_options())   # a --set the model never reads
    with _interruptible(), _Bars(quiet, cfg.folds, _bar_total(cfg), _calibrated(cfg)) as bars:
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


def _train_preset(task: str, preset: str, time_limit: str | None, data_dir, runs_dir, out, options, quiet,
                  shared: dict, rows: tuple) -> None:
    """`train --preset`: pipelines/preset.py's portfolio, a line per learner, then the leaderboard.
    The budget counts from here: reading and inferring the competition spend it too."""
    import time
    start = time.perf_counter()
    from pipelines.inputs import row_options
    from pipelines.preset import parse_duration, run_preset
    seconds = parse_duration(time_limit or {"fast": "1m"}.get(preset, "1h"))
    t = resolve(task, data_dir, runs_dir, options, quiet)
    data_dir = data_dir_of(t, data_dir)
    overrides = {k: v for k, v in shared.items() if v is not None}
    overrides |= row_options(t, overrides, *rows)
    say = (lambda line: None) if quiet else typer.echo
    with _interruptible():
        result = run_preset(t.name, preset, seconds, overrides, data_dir=data_dir, out=out, runs_root=runs_dir,
                            say=say, start=start)
    typer.echo(f"{t.name}: preset {preset}, {result.seconds:.0f}s of {seconds:.0f}s; leaderboard (CV {result.metric}):")
    for i, (name, scores) in enumerate(result.leaderboard(), 1):
        typer.echo(f"  {i}. {name:48s} {scores[result.metric]:.5f}")
    if result.submission is not None:
        typer.echo(f"submission: {result.submission}  ({result.best})")
        return
    best = next((e.run for e in result.entries if e.name == result.best), None)
    again = (f"predict {t.name} --run {best}" if best else f"stack {t.name} {' '.join(result.runs)}")
    again += f" --runs-dir {runs_dir}" if runs_dir else ""
    typer.echo(f"{t.name} has no test rows, so no submission; best: {result.best}. "
               f"New rows: python cli.py {again} --input FILE")


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
    model: Annotated[Optional[str], typer.Option(help="Model to tune (default: the task's); a tree learner (lightgbm, xgboost, catboost) searches its own space.")] = None,
    runs_dir: RunsDir = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Write each trial's value and params to <study>/tensorboard/.")] = False,
    jobs: Annotated[int, typer.Option(help="Trials side by side, each in a worker process on its share of the cores (default 1: one after another, in a reproducible order).")] = 1,
    group: Group = None, folds_file: FoldsFile = None, extra_train: ExtraTrain = None,

    target: Target = None, id_col: IdCol = None, metric: Metric = None, problem: Problem = None,
    submission: Submission = None, na_values: NaValues = None, categorical: Categorical = None,
    numeric: Numeric = None, text: Text = None, boolean: Boolean = None, drop: Drop = None,
):
    """Search the task's hyperparameters with Optuna (TPE + median pruning) on the k-fold CV score."""
    import optuna
    from pipelines.tune import TuneFailed
    from pipelines.tune import tune as run_tune
    set_logging(verbose, quiet)
    t = resolve(task, data_dir, runs_dir, infer_options(target, id_col, metric, problem, submission, na_values,
                                                        categorical, numeric, text, boolean, drop), quiet)
    task, data_dir = t.name, data_dir_of(t, data_dir)
    optuna.logging.disable_default_handler()     # optuna's own records go through ours (see set_logging)
    optuna.logging.enable_propagation()
    if timeout is not None and not timeout > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {timeout}")
    from pipelines.inputs import row_options
    fixed = parse_overrides(set_) | ({"model": model} if model else {})    # held in every trial, the row options too
    rows = row_options(t, {**fixed, **({"folds": folds} if folds else {})}, group, folds_file, extra_train)
    folds = rows.pop("folds", folds)    # a folds file's K: tune's --folds, not a trial's key
    fixed |= rows
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
                          data_dir=data_dir, runs_root=runs_dir, device=device.value, fixed=fixed,
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
