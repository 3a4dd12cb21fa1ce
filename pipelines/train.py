"""A training run's life: start one (`train`) or continue an interrupted one (`resume`), then
cross-validate, write the submission, metrics and plots, and record how the run ended.

`train()` and `resume()` are what the CLI calls; they know nothing of the terminal. The stages
they run, in order: pipelines/inputs.py (`prepare`), pipelines/cv.py (`cross_validate`),
pipelines/predict.py (`write_submission`). Everything a later `predict` needs is written into
the run directory.
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import sklearn
import torch

from core import workers
from core.config import TrainConfig, override
from core.errors import UsageError, first_line
from data import fingerprint
from pipelines import TASKS
from pipelines.cv import FoldHook, cross_validate, one_bag_if_unseeded
from pipelines.inputs import Inputs, prepare
from pipelines.predict import save_test_proba, write_submission
from pipelines.proba import cv_scores
from pipelines import runs
from pipelines.plots import write_plots
from submissions.format import SUBMISSIONS_DIR, check_writable


@dataclass
class TrainResult:
    run_dir: Path
    scores: dict[str, float]        # CV scores, primary metric first
    submission: Path | None
    seconds: float
    test_scores: dict[str, float] | None = None   # official test split, when its labels are known
    uncalibrated: dict[str, float] | None = None  # CV before temperature scaling, when the run calibrates


def train(cfg: TrainConfig, data_dir: Path | None = None, out: Path | None = None,
          runs_root: Path | None = None, on_epoch: FoldHook | None = None,
          on_fold: Callable[[int, dict], None] | None = None, tensorboard: bool = False) -> TrainResult:
    """A new run: ingest, k-fold training, metrics, submission, plots (`tensorboard`: event files
    under <run>/tensorboard/, see pipelines/tblog.py)."""
    start = time.perf_counter()
    if out is not None:
        check_writable(out)
    inp = prepare(cfg, data_dir, runs_root)
    cfg = one_bag_if_unseeded(cfg)       # config.json records the bags the run trains
    run_dir = runs.new_run(runs_root or runs.RUNS_ROOT, inp.task.name, cfg.model, cfg.seed)
    if inp.task.spec is not None:       # an inferred competition: the run keeps the spec it trained with
        runs.save_spec(run_dir, inp.task.spec)
    runs.write_json(run_dir / "config.json", {
        "config": cfg.to_dict(),
        # where the data came from and where the submission goes, so `--resume` needs neither again
        "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
        "data": fingerprint.record(inp.task, inp.train, inp.y, data_dir),   # which runs rank and blend together
        "out": str(Path(out).resolve()) if out else None,
        "extra_train": inp.extra,                 # rows added to every fold's training part (--extra-train), or None
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "sklearn": sklearn.__version__, "pandas": pd.__version__, "code": runs.code_version()}})
    return _cross_validate_and_write(inp, cfg, run_dir, out, start, on_epoch, on_fold, resumed=False,
                                     tensorboard=tensorboard)


def resume(task_name: str, run: str, data_dir: Path | None = None, out: Path | None = None,
           runs_root: Path | None = None, device: str | None = None, on_epoch: FoldHook | None = None,
           on_fold: Callable[[int, dict], None] | None = None, tensorboard: bool = False) -> TrainResult:
    """Continue an interrupted or failed run from its last finished epoch, with its own config.

    Finished fold models are loaded, the fold in progress continues from its checkpoint; on the
    CPU the OOF file and submission are byte-identical to those of an uninterrupted run."""
    start = time.perf_counter()
    task = TASKS.create(task_name)
    found = runs.load(task.name, run, require="unfinished", runs_root=runs_root)
    run_dir, saved, cfg = found.path, found.saved, found.config
    if device is not None:
        cfg = override(cfg, {"device": device})
    data_dir = data_dir or (Path(saved["data_dir"]) if saved.get("data_dir") else None)
    out = out or (Path(saved["out"]) if saved.get("out") else None)
    if out is not None:
        check_writable(out)
    inp = prepare(cfg, data_dir, runs_root)
    start -= runs.read_json(run_dir / "status.json").get("seconds", 0.0)   # time spent before the interruption
    runs.set_status(run_dir, "running")
    return _cross_validate_and_write(inp, cfg, run_dir, out, start, on_epoch, on_fold, resumed=True,
                                     tensorboard=tensorboard)


def _cross_validate_and_write(inp: Inputs, cfg: TrainConfig, run_dir: Path, out: Path | None, start: float,
                              on_epoch, on_fold, resumed: bool, tensorboard: bool = False) -> TrainResult:
    """The run proper, for `train` and `resume` alike: cross-validate into `run_dir`, write the submission
    (to `out`, or submissions/<task>-<run>.csv), metrics.json and the plots, and mark the run complete.
    A run stopped by bad input is discarded (a new one) or marked failed (a resumed one); Ctrl-C or a
    killed worker keeps it for `--resume`."""
    task = inp.task
    tb = None
    try:
        if tensorboard:      # inside the try: no tensorboard package discards the new run like a bad option
            from pipelines.tblog import TrainLog
            tb = TrainLog(run_dir)
            on_epoch, on_fold = tb.hooks(on_epoch, on_fold)
        result = cross_validate(inp, cfg, run_dir, _heartbeat(run_dir, start, on_epoch), on_fold)
        sub_path = None
        if inp.test is not None and len(inp.test):
            sub_path = write_submission(task, inp.test_ids, result["test"], inp.sample,
                                        out or SUBMISSIONS_DIR / f"{task.name}-{run_dir.name}.csv")
            save_test_proba(run_dir, inp.test, inp.test_ids, result["test"])
        seconds = time.perf_counter() - start
        metrics = {**result, "submission": str(sub_path) if sub_path else None, "seconds_total": seconds,
                   "resumed": resumed}
        test_proba = metrics.pop("test", None)
        if inp.test_y is not None and test_proba is not None:     # official test labels known
            metrics["test_scores"] = cv_scores(task, inp.test_y, test_proba)
        runs.write_json(run_dir / "metrics.json", metrics)
        if tb is not None:
            tb.finish(metrics, inp)
        write_plots(run_dir)       # warns, never raises: `report` can make them later
        runs.set_status(run_dir, "complete", seconds=seconds)
        return TrainResult(run_dir, metrics["cv"], sub_path, seconds, metrics.get("test_scores"),
                           (metrics.get("calibration") or {}).get("cv_uncalibrated"))
    except (UsageError, ValueError) as e:      # bad input found mid-run: leave no partial run
        if resumed:
            runs.set_status(run_dir, "failed", seconds=time.perf_counter() - start)
        else:
            runs.discard(run_dir)
        raise UsageError(first_line(e)) from None
    except KeyboardInterrupt:       # the time so far, so a resumed run reports its whole time
        runs.set_status(run_dir, "interrupted", seconds=time.perf_counter() - start)
        raise RunInterrupted(f"run {run_dir.name} interrupted; continue it with "
                             f"`train {task.name} --resume {run_dir.name}`") from None
    except workers.WorkerDied as e:     # not the input's fault: keep what the other folds finished
        runs.set_status(run_dir, "failed", seconds=time.perf_counter() - start)
        raise RunFailed(f"{e}; run {run_dir.name} kept, continue it with "
                        f"`train {task.name} --resume {run_dir.name}`") from None
    except BaseException:
        runs.set_status(run_dir, "failed", seconds=time.perf_counter() - start)
        raise
    finally:
        if tb is not None:
            tb.close()


HEARTBEAT_S = 1.0     # at most one status.json write a second: a boosting round takes milliseconds


def _heartbeat(run_dir: Path, start: float, on_epoch: FoldHook | None) -> FoldHook:
    """`on_epoch`, after recording the run's time so far in status.json (at most every HEARTBEAT_S
    seconds): kill -9 runs no handler, and a resume adds this figure (the time up to the last
    checkpoint, give or take HEARTBEAT_S) to its own."""
    last = float("-inf")

    def hook(fold: int, bag: int, row: dict) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last >= HEARTBEAT_S:
            runs.set_status(run_dir, "running", seconds=now - start)
            last = now
        if on_epoch is not None:
            on_epoch(fold, bag, row)
    return hook


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during training; the run directory is kept for `--resume`."""


class RunFailed(RuntimeError):
    """Training stopped for a reason outside the input (a worker process killed); kept for `--resume`."""
