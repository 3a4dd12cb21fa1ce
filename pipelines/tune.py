"""Optuna tuning of a task's hyperparameters with the same k-fold pipeline `train` uses.

The study lives in runs/<task>/studies/<study>/ (SQLite by default, so rerunning the same
command continues it), or in any RDB URL given with --storage: several `tune` processes on
several machines pointed at one PostgreSQL URL share one study, Optuna's RDB storage being
the coordinator. The search space is the task's `search_space(trial) -> overrides`, kept
apart from model building so the best params replay through `train --params`.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import optuna

from core.config import TrainConfig
from core.registry import UsageError, first_line
from pipelines import TASKS, runs
from pipelines.metrics import METRICS
from pipelines.train import cross_validate, prepare, score_fn

HEARTBEAT_S = 30      # a RUNNING trial whose process stops beating this long ...
GRACE_S = 90          # ... plus this grace is marked FAILED when any worker next starts a trial
FOLD_STEP = 10_000    # intermediate steps: fold-0 epochs are 1..E, fold k's running CV is FOLD_STEP + k


@dataclass
class TuneResult:
    study_dir: Path
    best_value: float
    best_params: dict
    n_complete: int
    n_pruned: int
    n_failed: int
    seconds_saved: float          # estimated: pruned trials x mean complete-trial time - their own time
    top: list[dict]
    plots: list[Path]


def study_dir(runs_root: Path, task: str, study: str) -> Path:
    return runs_root / task / "studies" / study


def best_params_path(runs_root: Path, task: str, study: str | None = None) -> Path:
    return study_dir(runs_root, task, study or f"{task}-tune") / "best_params.json"


def _storage(url: str | None, folder: Path):
    if url is None:
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / 'study.db'}"
    import sqlalchemy.exc
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                              engine_kwargs={"pool_pre_ping": True})
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # workers started together on a fresh database race to create Optuna's tables;
            # the loser sees a duplicate-key error, and a moment later the tables exist
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
        except Exception as e:      # bad scheme, unreachable server, missing driver
            raise UsageError(f"cannot open storage {url!r}: {first_line(e)}") from None


def _objective(inputs, base: TrainConfig, task, fixed: dict):
    metric = METRICS[task.metric]
    # the early-stopping signal may be a loss (minimise) while the study maximises accuracy:
    # report it signed so that "better" points the study's way for the pruner
    flip = score_fn(task)[1] != metric.maximize

    def objective(trial: optuna.Trial) -> float:
        overrides = task.search_space(trial)
        cfg = task.config(**{**base.to_dict(), **overrides, **fixed})   # fixed keys win

        def on_epoch(fold, bag, row):
            if fold == 0 and bag == 0:
                trial.report(-row["val_score"] if flip else row["val_score"], row["epoch"])
                if trial.should_prune():
                    raise optuna.TrialPruned()

        def on_fold(fold, row):
            trial.report(row[task.metric], FOLD_STEP + fold)
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = cross_validate(inputs, cfg, on_epoch=on_epoch, on_fold=on_fold, predict_test=False)
        return result["cv"][task.metric]
    return objective


def tune(task_name: str, trials: int, timeout: float | None = None, folds: int | None = None,
         study: str | None = None, storage: str | None = None, seed: int = 0, data_dir: Path | None = None,
         runs_root: Path | None = None, device: str = "auto", fixed: dict | None = None,
         on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
         tensorboard: bool = False) -> TuneResult:
    if trials < 1:
        raise UsageError(f"--trials must be at least 1, got {trials}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)      # the CLI shows progress; no log spill
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeat args
    task = TASKS.create(task_name)
    root = runs_root or runs.RUNS_ROOT
    name = study or f"{task.name}-tune"
    # `fixed`: config keys held constant for every trial (e.g. bags=1 for a faster search)
    base = task.config(**{**(fixed or {}), "seed": seed, "device": device, **({"folds": folds} if folds else {})})
    inputs = prepare(base, data_dir, root)               # bad data fails before a study is made
    folder = study_dir(root, task.name, name)
    created = not folder.exists()
    try:
        st = optuna.create_study(
            study_name=name, storage=_storage(storage, folder), load_if_exists=True,
            direction="maximize" if METRICS[task.metric].maximize else "minimize",
            sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(trials // 3, 3))),
            # prune once 2 trials (the default config and one more) have finished: on expensive tasks
            # a 30-minute budget holds only a handful of trials, so waiting for more prunes nothing
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=3))
    except ValueError as e:     # e.g. an existing study with the other direction
        raise UsageError(f"study {name!r}: {e}") from None
    except UsageError:
        if created:
            import shutil
            shutil.rmtree(folder, ignore_errors=True)
        raise
    st.set_user_attr("task", task.name)
    if not st.trials:      # a new study starts from the task's defaults, so tuning can only improve on them
        st.enqueue_trial(dict(task.defaults), skip_if_exists=True)   # keys the space never suggests are unused
    callbacks = [on_trial] if on_trial else []
    tb = None
    if tensorboard:      # this process's trials, one event file per process under <study>/tensorboard/
        from pipelines.tblog import StudyLog
        tb = StudyLog(folder)
        callbacks.insert(0, tb.on_trial)
    try:
        st.optimize(_objective(inputs, base, task, fixed or {}), n_trials=trials, timeout=timeout,
                    callbacks=callbacks or None, catch=())
    finally:
        if tb is not None:
            tb.close()
    return summarize(st, task, folder, fixed or {})


def summarize(st: optuna.Study, task, folder: Path, fixed: dict, top_n: int = 5) -> TuneResult:
    states = optuna.trial.TrialState
    done = [t for t in st.trials if t.state == states.COMPLETE]
    pruned = [t for t in st.trials if t.state == states.PRUNED]
    failed = [t for t in st.trials if t.state == states.FAIL]
    if not done:
        raise UsageError(f"study {st.study_name!r} has no complete trial yet (pruned {len(pruned)}, failed {len(failed)})")
    secs = lambda t: (t.datetime_complete - t.datetime_start).total_seconds()
    mean_done = sum(map(secs, done)) / len(done)
    saved = sum(max(mean_done - secs(t), 0.0) for t in pruned)
    folder.mkdir(parents=True, exist_ok=True)
    best = st.best_trial
    params = {**best.params, **fixed}       # the config the best trial actually trained with
    runs.write_json(folder / "best_params.json", params)
    reverse = st.direction == optuna.study.StudyDirection.MAXIMIZE
    top = sorted(done, key=lambda t: t.value, reverse=reverse)[:top_n]
    top_rows = [{"trial": t.number, "value": t.value, "seconds": secs(t), **t.params} for t in top]
    return TuneResult(folder, best.value, params, len(done), len(pruned), len(failed), saved, top_rows,
                      write_plots(st, folder))


def write_plots(st: optuna.Study, folder: Path) -> list[Path]:
    """Optimization history and parameter importances as PNG (matplotlib backend)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as ovm
    except ImportError:
        return []
    out = []
    warnings.filterwarnings("ignore", message=".*importances.*", category=UserWarning)
    for name, plot in [("history", ovm.plot_optimization_history), ("importances", ovm.plot_param_importances)]:
        try:
            ax = plot(st)
        except (ValueError, RuntimeError):      # importances need >= 2 complete trials with varying params
            continue
        path = folder / f"{name}.png"
        (ax.figure if hasattr(ax, "figure") else ax[0].figure).savefig(path, dpi=100, bbox_inches="tight")
        plt.close("all")
        out.append(path)
    return out


def resolve_params(spec: str, task: str, runs_root: Path | None = None) -> Path:
    """`--params best` -> the default study's best_params.json; `best:NAME` -> study NAME's;
    anything else is a path to a JSON file."""
    if spec == "best" or spec.startswith("best:"):
        name = spec.partition(":")[2] or None
        path = best_params_path(runs_root or runs.RUNS_ROOT, task, name)
        if not path.is_file():
            what = f"study {name!r}" if name else "the default study"
            raise UsageError(f"no tuned params for {task} from {what} at {path}; run `tune {task}"
                             f"{' --study ' + name if name else ''}` first")
        return path
    return Path(spec)
