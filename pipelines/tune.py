"""Optuna tuning of a task's hyperparameters with the same k-fold pipeline `train` uses.

The study lives in runs/<task>/studies/<study>/ (SQLite by default, so rerunning the same
command continues it), or in any RDB URL given with --storage: several `tune` processes on
several machines pointed at one PostgreSQL URL share one study, Optuna's RDB storage being
the coordinator. `jobs` > 1 runs that many trials side by side on one machine, each in a worker
process (core/workers.py) on its share of the cores, all on this study's storage. The search
space is the task's `search_space(trial) -> overrides` (the nets' lr, width, ...), or, when the
model (`--set model=xgboost`) is a learner that declares its own (the gradient-boosted trees: their
learning rate, leaves or depth, sampling, L2), the learner's, drawn into config key `trees`;
either is kept apart from model building so the best params replay through `train --params`.
A trial's intermediate values count the learner's `progress_unit`: epochs, or boosting rounds
(`ROUND_STEP`). Where trials run and how a dead worker's trial
is failed (storage, heartbeat, the trial loop) is pipelines/studies.py's.
"""
from __future__ import annotations

import logging
import os
import re
import time
import uuid
import warnings
from pathlib import Path
from typing import Callable

import optuna

from core import workers
from core.files import remove_empty_dirs
from core.errors import UsageError, first_line
from pipelines import TASKS, runs, studies
from pipelines.metrics import METRICS
from pipelines.cv import cross_validate
from pipelines.inputs import prepare
from pipelines.learners import LEARNERS
from pipelines.proba import score_fn
from pipelines.tune_summary import TuneResult, summarize

# Intermediate steps. Fold 0 reports at fixed fractions of its own schedule (step q after q/QUARTERS of
# its epochs), not at epoch numbers: under a one-cycle schedule epoch 3 of a 40-epoch trial is still
# warming up while a 10-epoch trial is annealing, and comparing them there prunes long schedules for
# being long. Fold k's running CV is step FOLD_STEP + k.
QUARTERS = 4
WARMUP_STEPS = 2      # no pruning before half of fold 0's schedule (trees: before step 2 of ROUND_STEP)
FOLD_STEP = 10_000
# Trees report fold 0's best score so far every ROUND_STEP units of shrinkage (rounds x learning rate:
# 100 rounds at 0.05), so a slow-learning-rate trial is compared with others where it has boosted as
# far, not after as many rounds; the steps (1, 2, ...) stay below FOLD_STEP
ROUND_STEP = 5.0
NOT_REPLAYED = ("task", "device", "folds", "seed", "jobs")    # the study's CV protocol and machine, not a trial's config
_JOB_ATTR = "tune_command"       # user attr: which `tune --jobs` command's worker runs a trial

log = logging.getLogger(__name__)


class TuneFailed(RuntimeError):
    """A worker process running trials died (out of memory?); the study keeps what finished."""


def study_dir(runs_root: Path, task: str, study: str) -> Path:
    return runs_root / task / "studies" / study


def best_params_path(runs_root: Path, task: str, study: str | None = None) -> Path:
    return study_dir(runs_root, task, study or f"{task}-tune") / "best_params.json"


def search_space(task, base: dict) -> tuple[Callable[[optuna.Trial], dict], dict, str]:
    """(trial -> config overrides, the first trial's params, whose space) for the model `base`
    chooses: a learner's own `space` (trees: drawn into config key `trees`, whose keys, the
    learner's `tunable`, are the trial's params one to one) and defaults, else the task's, or its
    space for that model where it keeps one per model (Otto: TabM's and the MLP's), the first trial
    then that model's defaults."""
    model = task.config(**base).model
    learner = LEARNERS.get(model)
    fixed = lambda m: LEARNERS.get(m).progress_unit == "fit" and not hasattr(LEARNERS.get(m), "space")  # noqa: E731
    if all(fixed(m) for m in getattr(learner, "members", (model,))):     # logreg, ridge, knn: one fixed fit
        raise UsageError(f"--model {model}: nothing to tune (one fit with fixed settings, every trial the same); "
                         "tune a net, a tree learner or a combination holding one")
    if hasattr(learner, "space"):
        held = base.get("trees", {})        # `--set trees=...` holds those keys in every trial
        return lambda trial: {"trees": {**learner.space(trial), **held}}, learner.defaults(), model
    spaces = task.search_space
    if isinstance(spaces, dict):
        if model not in spaces:
            raise UsageError(f"tune {task.name}: no search space for model {model!r}; {task.name} tunes "
                             f"{', '.join(spaces)} (--set model=NAME), or a tree learner's own")
        return spaces[model], task.params(model), f"task:{model}"
    return spaces, task.default_params, "task"


def _objective(inputs, base: dict, task, fixed: dict):
    """`base`: the overrides every trial starts from (seed, device, folds, `fixed`); a trial's own
    overrides go over them, then the task's and its chosen model's defaults fill in the rest."""
    metric = METRICS[task.metric]
    # the early-stopping signal may be a loss (minimise) while the study maximises accuracy:
    # report it signed so that "better" points the study's way for the pruner
    flip = score_fn(task)[1] != metric.maximize
    space = search_space(task, base)[0]
    better = max if metric.maximize else min

    def objective(trial: optuna.Trial) -> float:
        overrides = space(trial)
        # fixed keys win; a tree space's `trees` holds the fixed trees keys already
        cfg = task.config(**{**base, **overrides, **fixed, **({"trees": overrides["trees"]} if "trees" in overrides else {})})
        trial.set_user_attr("fixed", fixed)    # what this trial held, for its row in the summary
        # everything it trained with but the CV protocol (folds, seed) and the device: what
        # `train --params best` replays, so later changes to the task's defaults cannot alter it
        trial.set_user_attr("config", {k: v for k, v in cfg.to_dict().items() if k not in NOT_REPLAYED})
        n_models = len(inputs.folds) * cfg.bags
        reported = 0           # fold 0's last quarter step reported (trees: ROUND_STEP step)
        # a combination (mlp+lightgbm, pipelines/learners_ensemble.py) prunes on its first member's steps
        first = getattr(LEARNERS.get(cfg.model), "members", (cfg.model,))[0]
        learner = LEARNERS.get(first)
        trees = learner.progress_unit == "round"
        best = None            # trees: fold 0's best signed score so far

        def prune(done: float):
            """Stop here if the pruner says so; `done` (fraction of the whole trial's training) is
            kept on the trial so the summary can estimate what pruning saved."""
            if trial.should_prune():
                trial.set_user_attr("done", done)
                raise optuna.TrialPruned()

        def on_epoch(fold, bag, row):
            nonlocal reported, best
            if row.get("member", first) != first or row.get("phase") == "refit":
                return         # stopping=refit: its second fit's epochs are a count already chosen
            if fold == 0 and bag == 0 and trees:
                value = -row["val_score"] if flip else row["val_score"]
                best = value if best is None else better(best, value)
                step = min(int(row["epoch"] * row["lr"] / ROUND_STEP), FOLD_STEP - 1)
                if step > reported:
                    trial.report(best, step)
                    reported = step
                    prune(row["epoch"] / cfg.trees.get("max_rounds", learner.max_rounds) / n_models)
            elif fold == 0 and bag == 0 and learner.progress_unit != "fit":    # a forest's chunks are no epochs
                quarter = QUARTERS * row["epoch"] // cfg.epochs
                if quarter > reported:
                    value = -row["val_score"] if flip else row["val_score"]
                    for q in range(reported + 1, quarter + 1):    # a short schedule crosses several at once
                        trial.report(value, q)
                    reported = quarter
                    prune(row["epoch"] / cfg.epochs / n_models)

        def on_fold(fold, row):
            trial.report(row[task.metric], FOLD_STEP + fold)
            prune((fold + 1) / len(inputs.folds))

        result = cross_validate(inputs, cfg, on_epoch=on_epoch, on_fold=on_fold, predict_test=False)
        return result["cv"][task.metric]
    return objective


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)      # the CLI shows progress; no log spill
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeat args
    # `studies.run_trials` is Study.optimize's loop with the heartbeat, which ask() does not know
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def _pruner() -> optuna.pruners.BasePruner:
    # prune once 2 trials (the default config and one more) have finished: on expensive tasks
    # a 30-minute budget holds only a handful of trials, so waiting for more prunes nothing
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=WARMUP_STEPS)


def _sampler(seed: int, trials: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed % 2 ** 32, n_startup_trials=min(10, max(trials // 3, 3)))


def tune(task_name: str, trials: int, timeout: float | None = None, folds: int | None = None,
         study: str | None = None, storage: str | None = None, seed: int = 0, data_dir: Path | None = None,
         runs_root: Path | None = None, device: str = "auto", fixed: dict | None = None,
         on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
         tensorboard: bool = False, jobs: int = 1) -> TuneResult:
    if trials < 1:
        raise UsageError(f"--trials must be at least 1, got {trials}")
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    if jobs > 1 and storage is not None and re.fullmatch(r"sqlite(\+\w+)?://(/:memory:)?", storage):
        raise UsageError(f"--jobs {jobs} needs a storage its worker processes can share; {storage!r} is an "
                         "in-memory database of one process (leave --storage out for SQLite under runs/)")
    _quiet_optuna()
    task = TASKS.create(task_name)
    root = runs_root or runs.RUNS_ROOT
    name = study or f"{task.name}-tune"
    clash = sorted(set(fixed or {}) & set(NOT_REPLAYED))     # the whole study's, not one trial's
    if clash:
        key = clash[0]
        why = {"task": "the task is the command's argument",
               "jobs": "tune trains a trial's folds one after the other, so the pruner can stop it on "
                       "fold 0's epochs; --jobs N runs N trials side by side instead"}
        raise UsageError(f"tune --set {key}=...: " + why.get(key, f"use tune's own --{key} option"))
    # `fixed`: config keys held constant for every trial (e.g. bags=1 for a faster search);
    # jobs=1: pruning reads fold 0's epochs and each finished fold, in order
    base = {**(fixed or {}), "seed": seed, "device": device, "jobs": 1, **({"folds": folds} if folds else {})}
    inputs = prepare(task.config(**base), data_dir, root)               # bad data fails before a study is made
    _, defaults, space = search_space(task, base)
    folder = study_dir(root, task.name, name)
    created = not folder.exists()
    try:
        store = studies.open_storage(storage, folder, defaults)
        st = optuna.create_study(
            study_name=name, storage=store, load_if_exists=True,
            direction="maximize" if METRICS[task.metric].maximize else "minimize", pruner=_pruner())
    except UsageError:          # before ValueError, its base class: the storage did not open
        _discard_new(folder, created)
        raise
    except ValueError as e:     # e.g. an existing study with the other direction
        raise UsageError(f"study {name!r}: {e}") from None
    owner = st.user_attrs.get("task")
    if owner not in (None, task.name):     # another task's search space: Optuna fails mid-trial, or mixes them
        raise UsageError(f"study {name!r} tunes {owner}, not {task.name}; pick another --study name")
    drawn = st.user_attrs.get("space", "task")     # studies from before this attribute drew the task's
    if st.trials and drawn != space:        # one study, one space: TPE cannot mix two sets of params
        def what(label: str) -> str:      # "task", "task:MODEL" (a space per model) or a tree learner's name
            kind, _, model = label.partition(":")
            return f"the task's search space{f' for {model}' if model else ''}" if kind == "task" else f"{label}'s trees"
        raise UsageError(f"study {name!r} searches {what(drawn)}, not {what(space)}; pick another --study name")
    new_study = owner is None and not st.trials
    st.set_user_attr("task", task.name)
    st.set_user_attr("space", space)
    # trials of killed workers are failed (see studies.HEARTBEAT_S) while trials run; do it now too, so that
    # a defaults trial left RUNNING by kill -9 counts as unfinished below
    studies.fail_stale(st)
    # a continued study must not replay the draws of the process before it (the same seed would
    # propose the same start-up trials again): the seed moves on with the trials already there.
    # Workers sharing a --storage study may start together, seeing the same trials: their process
    # ids tell them apart (a shared study's order of trials is not reproducible anyway), as do
    # the jobs of one process
    sampler_seed = seed + len(st.trials) + 7919 * (os.getpid() if storage else 0)
    studies.enqueue_defaults(st, defaults)
    try:
        if jobs == 1:
            st.sampler = _sampler(sampler_seed, trials)
            studies.optimize(st, _objective(inputs, base, task, fixed or {}), trials, timeout, folder, tensorboard,
                      on_trial)
        else:
            _side_by_side(st, inputs, base, fixed or {}, trials, timeout, folder, tensorboard, on_trial,
                          jobs, storage, sampler_seed)
    except (UsageError, ValueError) as e:     # bad data found by a trial (e.g. too few rows of a class)
        if new_study and not any(t.state == optuna.trial.TrialState.COMPLETE for t in st.trials):
            optuna.delete_study(study_name=name, storage=store)    # a shared --storage keeps none either
            _discard_new(folder, created)
        raise UsageError(first_line(e)) from None
    return summarize(st, task, folder, fixed or {})


def _side_by_side(st: optuna.Study, inputs, base: dict, fixed: dict, trials: int, timeout: float | None,
                  folder: Path, tensorboard: bool, on_trial, jobs: int, storage: str | None,
                  sampler_seed: int) -> None:
    """`trials` trials, `jobs` at a time: each job a worker process running its share of the
    trials one after another on its share of the cores, on the study's storage (Optuna's way
    to run trials in parallel); each finished trial reaches `on_trial` here.

    Enqueued trials (the defaults, or any a user queued) all go to the first worker, and the
    others start once it has taken them: SQLite cannot lock a row, so two workers asking at
    once would both take one queued trial and both run it (the second then fails to report it)."""
    import torch
    queued = [t.number for t in st.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))]
    first = min(trials, max(-(-trials // jobs), len(queued)))        # ceil(trials / jobs), or the queue
    rest = trials - first
    shares = [first] + [rest // (jobs - 1) + (j < rest % (jobs - 1)) for j in range(jobs - 1)]
    shares = [n for n in shares if n]
    held = queued[:first]                     # the first worker takes these (Optuna pops oldest first)
    token = uuid.uuid4().hex                  # marks this command's trials in the storage
    beat = (studies.HEARTBEAT_S, studies.GRACE_S)    # read here, so a test's shorter beat reaches the workers
    calls = [(inputs, base, fixed, n, timeout, folder, tensorboard, st.study_name, storage,
              sampler_seed + 7919 * (j + 1), trials, [] if j == 0 else held, token, beat)
             for j, n in enumerate(shares)]

    def finished(number: int) -> None:
        if on_trial is not None:
            on_trial(st, next(t for t in st.get_trials(deepcopy=False) if t.number == number))
    threads = max(1, torch.get_num_threads() // len(calls))
    before = {t.number for t in st.get_trials(deepcopy=False)}
    try:
        for _ in workers.run_jobs(_trials_job, calls, len(calls), threads, on_epoch=finished):
            pass
    except BaseException as e:
        # the workers are gone (Ctrl-C, an error, a killed worker): their trials end now as failed,
        # as Optuna ends a trial interrupted in this process, not at the heartbeat's grace period
        # (a defaults trial still RUNNING would not be enqueued again by a command started within it). A worker
        # killed between Optuna's ask() (the trial is RUNNING) and `marked` (the token) leaves a trial
        # with no mark: failed too when it is new and the study is this command's own file
        for t in st.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            unmarked = storage is None and _JOB_ATTR not in t.user_attrs and t.number not in before
            if t.user_attrs.get(_JOB_ATTR) == token or unmarked:
                st.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        if isinstance(e, workers.WorkerDied):
            raise TuneFailed(f"{e}; the study keeps its finished trials: the same command continues it") from None
        raise


def _trials_job(inputs, base: dict, fixed: dict, trials: int, timeout: float | None, folder: Path,
                tensorboard: bool, name: str, storage: str | None, sampler_seed: int, total: int,
                held: list[int], token: str, beat: tuple[int, int], on_epoch: Callable) -> None:
    """One worker's share of `_side_by_side`: its own sampler seed, the study's pruner; Optuna's
    log records go to the parent's loggers, as the CLI routes them there. It starts once the
    first worker has taken the queued trials in `held` (never past `timeout`), and marks each of
    its trials with `token` as it starts, so the parent can fail them if the workers are stopped."""
    start = time.monotonic()
    _quiet_optuna()                      # this process never ran tune() or the CLI
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    defaults = search_space(inputs.task, base)[1]
    st = optuna.load_study(study_name=name, storage=studies.open_storage(storage, folder, defaults, beat),
                           sampler=_sampler(sampler_seed, total), pruner=_pruner())
    waiting = (optuna.trial.TrialState.WAITING,)
    while held and any(t.number in held for t in st.get_trials(deepcopy=False, states=waiting)):
        if timeout is not None and time.monotonic() - start >= timeout:
            return
        time.sleep(0.1)
    objective = _objective(inputs, base, inputs.task, fixed)

    def marked(trial: optuna.Trial) -> float:
        trial.set_user_attr(_JOB_ATTR, token)
        return objective(trial)
    remaining = None if timeout is None else max(timeout - (time.monotonic() - start), 1e-3)
    studies.optimize(st, marked, trials, remaining, folder, tensorboard,
              on_trial=lambda study, trial: on_epoch(trial.number))


def _discard_new(folder: Path, created: bool) -> None:
    """Remove a study folder this process made, and the runs/<task>/studies/ folders it leaves empty."""
    if created:
        import shutil
        shutil.rmtree(folder, ignore_errors=True)
        remove_empty_dirs((folder.parent, folder.parent.parent))


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
