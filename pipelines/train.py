"""The staged pipeline: ingest -> feature encoding -> k-fold training -> predict / submit.

`train()` and `predict()` are what the CLI (and tuning) call; they know nothing of the
terminal. Everything a later `predict` needs is written into the run directory.
"""
from __future__ import annotations

import logging
import platform
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection

import joblib
import numpy as np
import pandas as pd
import sklearn
import torch
import torch.nn.functional as F

from core import workers
from core.config import TrainConfig, override, saved_config
from core.files import replace_atomically
from core.errors import UsageError, first_line
from core.runtime import autocast_dtype, resolve_device, seed_everything
from data import fingerprint, ingest
from data.images import load_images
from features.images import shift_images
from models import MODELS, build_model
from models.registry import model_args
from models.trainer import fit, predict_logits
from pipelines import TASKS, Task
from pipelines.calibrate import apply_temperature, cross_fit
from pipelines.folds import make_folds
from pipelines.metrics import METRICS
from pipelines import runs
from pipelines.report import write_plots
from submissions import kaggle
from submissions.format import (SUBMISSIONS_DIR, check_submission, check_test_ids, check_writable,
                                in_sample_order, write_atomic)

DATA_INIT_IMAGES = 5000    # training images a data-dependent init sees (airbench whitens on 5,000)
MIN_VAL_ROWS = 10          # a validation fold below this is warned about: one row moves its accuracy by >10%
FoldHook = Callable[[int, int, dict], None]   # (fold, bag, epoch log row)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    scores: dict[str, float]        # CV scores, primary metric first
    submission: Path | None
    seconds: float
    test_scores: dict[str, float] | None = None   # official test split, when its labels are known
    uncalibrated: dict[str, float] | None = None  # CV before temperature scaling, when the run calibrates


# ---- stage 1: ingest ---------------------------------------------------------------------

def fetch_if_missing(task: Task, data_dir: Path | None, roles: Collection[str] = ("train", "test")) -> None:
    """Download the competition's files into data/<task>/ when one of `roles` is found nowhere and
    Kaggle API credentials exist: the one place a run downloads (data/ingest.py only locates).
    Without credentials the not-found error stands; it names `download TASK` and --data-dir."""
    for role in [r for r in roles if r in task.files]:
        try:
            ingest.locate(task, role, data_dir, warn=False)
        except ingest.DataNotFound:
            if not (task.kaggle and kaggle.has_credentials()):
                raise
            log.info("%s: %s found nowhere; downloading %s into %s", task.name, task.files[role], task.kaggle,
                     task.bundled)
            kaggle.download(task, task.bundled)
            return


def load_inputs(task: Task, data_dir: Path | None):
    fetch_if_missing(task, data_dir)
    train_df = ingest.load(task, "train", data_dir)
    test_df = ingest.load(task, "test", data_dir) if "test" in task.files else None
    return train_df, test_df, load_sample(task, data_dir)


def load_sample(task: Task, data_dir: Path | None) -> pd.DataFrame | None:
    """The sample submission beside the test file, if the competition ships one there.

    Only the test file's own folder is searched: a sample from elsewhere (the bundled
    copy) would describe a different test set.
    """
    if "sample" not in task.files or "test" not in task.files:
        return None
    test_source = str(ingest.locate(task, "test", data_dir))
    folder = Path(test_source.split("::")[0]).parent
    source = ingest.find_in(folder, task.files["sample"], task)
    return ingest.read_csv(task, source) if source else None


# ---- stage 3 helpers: loss, probabilities, tensors ---------------------------------------

def loss_fn(task: Task, label_smoothing: float = 0.0):
    if task.binary:
        return lambda logits, y: F.binary_cross_entropy_with_logits(logits.squeeze(1), y.float())
    return lambda logits, y: F.cross_entropy(logits, y, label_smoothing=label_smoothing)


def to_proba(task: Task, logits: torch.Tensor) -> np.ndarray:
    p = torch.sigmoid(logits.squeeze(1)) if task.binary else torch.softmax(logits, 1)
    return p.double().cpu().numpy()


def epoch_metric_fn(task: Task):
    """The task's metric per epoch, as `val_<metric>` in the history, when early stopping watches
    something else (the loss, ROC AUC), so val_score.png can show the score the task is judged by."""
    if (task.monitor or task.metric) == task.metric:
        return None     # val_score is the metric already
    metric = METRICS[task.metric]
    return lambda logits, y: {f"val_{task.metric}": metric.fn(y.cpu().numpy(), to_proba(task, logits))}


def score_fn(task: Task):
    """Early-stopping signal and its direction (see Task.monitor)."""
    if task.monitor == "loss":
        return (lambda logits, y: loss_fn(task)(logits, y).item()), False
    metric = METRICS[task.monitor or task.metric]
    return (lambda logits, y: metric.fn(y.cpu().numpy(), to_proba(task, logits))), metric.maximize


def as_tensor(x, device, dtype=torch.float32) -> torch.Tensor:
    x = np.ascontiguousarray(x)
    if not x.flags.writeable:     # IDX bytes read with np.frombuffer: torch would share a read-only buffer
        x = x.copy()
    return torch.as_tensor(x, dtype=dtype, device=device)


def predict_proba(task, model, x: torch.Tensor, batch_fn=None, precision: str = "fp32") -> np.ndarray:
    """Probabilities for `x`, the forward pass at `precision` (the run's). Image tasks average
    test-time views (airbench's TTA): x and its mirror when the task flips; with `tta_translate`,
    half the weight goes to those views shifted diagonally by +-tta_translate pixels."""
    bf = batch_fn or (lambda xb, training: xb)

    def views(shift: int) -> torch.Tensor:
        def view(xb, training, mirror=False):
            out = shift_images(bf(xb, training), shift)
            out = out.flip(3) if mirror else out
            return out.contiguous(memory_format=torch.channels_last) if out.dim() == 4 else out   # NHWC: see batch_transform
        logits = predict_logits(model, x, batch_transform=view, precision=precision)
        if getattr(task, "flip", False):
            mirrored = predict_logits(model, x, batch_transform=lambda xb, t: view(xb, t, True), precision=precision)
            logits = (logits + mirrored) / 2
        return logits

    logits = views(0)
    pixels = getattr(task, "tta_translate", 0)
    if pixels:
        logits = (logits + (views(pixels) + views(-pixels)) / 2) / 2
    return to_proba(task, logits)


@dataclass
class Encoded:
    """One fold's model inputs: tensors on the device, the fitted encoder, the data's shape."""
    encoder: object
    x_train: torch.Tensor
    x_val: torch.Tensor
    x_test: torch.Tensor | None
    shape: dict                  # model_args shape kwargs (in_features / in_channels, ...)
    columns: list[str]           # encoded column order (tables) or channel names (images)
    batch_fn: Callable | None    # per-batch normalise/augment (images), None for tables


def encode_fold(task, cfg: TrainConfig, inp: "Inputs", tr, va, test) -> Encoded:
    """Stage 2: fit the encoder on the fold's training rows only, encode train/val/test."""
    device = inp.device
    if task.kind == "image":
        from features.images import BatchTransform, ChannelStats, preflip
        stats = ChannelStats().fit(inp.train[tr])
        u8 = torch.uint8       # images stay uint8 on the device; batch_fn normalises per batch
        x_tr = as_tensor(inp.train[tr], device, u8)
        x_tr = preflip(x_tr, cfg.seed) if task.flip else x_tr    # the alternating flip's starting sides
        return Encoded(stats, x_tr, as_tensor(inp.train[va], device, u8),
                       as_tensor(test, device, u8) if test is not None and len(test) else None,
                       {"in_channels": task.channels, "image_size": task.size, "num_classes": task.out_features},
                       [str(c) for c in stats.get_feature_names_out()],
                       BatchTransform(stats, device, task.flip, task.translate))
    encoder = task.features(cfg)
    # fit_transform, not fit().transform(): target encoders cross-fit the training rows
    x_tr = as_tensor(encoder.fit_transform(inp.train.iloc[tr], inp.y[tr]), device)
    columns = [str(c) for c in encoder.get_feature_names_out()]
    return Encoded(encoder, x_tr, as_tensor(encoder.transform(inp.train.iloc[va]), device),
                   as_tensor(encoder.transform(test), device) if test is not None else None,
                   {"in_features": len(columns), "out_features": task.out_features}, columns, None)


def cv_scores(task: Task, y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    return {m: METRICS[m].fn(y, proba) for m in (task.metric, *task.extra_metrics)}


# ---- the pipeline ------------------------------------------------------------------------

@dataclass
class Inputs:
    """Everything stage 1 produced: validated data, encoded target, folds, device.

    Tables: `train`/`test` are DataFrames. Images: uint8 arrays (N, C, H, W)."""
    task: Task
    train: pd.DataFrame | np.ndarray
    test: pd.DataFrame | np.ndarray | None
    sample: pd.DataFrame | None
    y: np.ndarray
    folds: list
    device: torch.device
    test_ids: np.ndarray | None = None
    test_y: np.ndarray | None = None      # images whose layout knows the test labels


def prepare(cfg: TrainConfig, data_dir: Path | None = None, runs_root: Path | None = None) -> Inputs:
    """Ingest and check everything a run needs; raises UsageError before anything is written."""
    task = TASKS.create(cfg.task)
    MODELS.get(cfg.model)
    device = resolve_device(cfg.device)
    if task.kind == "image":
        if cfg.precision == "auto" and autocast_dtype(device, "auto") is None:
            log.info("%s: this CPU has no native bfloat16, so the run trains in float32 and takes ~1.7-2.5x as "
                     "long as where it has (BENCHMARKS.md); --epochs and --set width=N trade accuracy for time",
                     task.name)
        imgs = load_images(task, data_dir, (runs_root or runs.RUNS_ROOT) / ".cache")
        folds = checked_folds(task, imgs.train_y, cfg)
        return Inputs(task, imgs.train_x, imgs.test_x, None, imgs.train_y, folds, device, imgs.test_ids, imgs.test_y)
    train_df, test_df, sample = load_inputs(task, data_dir)
    y = ingest.encode_target(task, train_df[task.target])
    test_ids = _ids(task, test_df).to_numpy() if test_df is not None else None
    if test_ids is not None:
        check_test_ids(test_ids, sample, task.id_col, task.files["test"], task.files.get("sample", "the sample"))
    return Inputs(task, train_df, test_df, sample, y, checked_folds(task, y, cfg), device, test_ids)


def checked_folds(task, y: np.ndarray, cfg: TrainConfig) -> list:
    """`make_folds` for this target, and what it cannot say: one class is refused (nothing to learn,
    nothing to score); classes of the task absent from the train are named in a warning (the models
    learn to give them ~0 probability, and the CV never scores them); so are folds too small to score."""
    names = [str(c) for c in task.classes]
    present = set(np.unique(y).tolist())
    if len(present) < 2:
        only = f"only {names[min(present)]}" if present else "no rows"
        raise UsageError(f"{task.name}: the training data has {only} of the {len(names)} classes; nothing to "
                         f"learn, and {task.metric} needs at least two")
    folds = make_folds(y, cfg.folds, cfg.seed, cfg.holdout)      # its errors first: one line, no warnings before
    absent = [name for i, name in enumerate(names) if i not in present]
    if absent:
        log.warning("warning: %s: %d of the %d classes never appear in the training data (%s); the models learn "
                    "to give them ~0 probability and the CV cannot score them", task.name, len(absent), len(names),
                    ", ".join(absent))
    sizes = sorted(len(va) for _, va in folds)
    if sizes[0] < MIN_VAL_ROWS:
        rows = f"{sizes[0]}" if sizes[0] == sizes[-1] else f"{sizes[0]}-{sizes[-1]}"
        split = f"{len(folds)} folds: each fold validates on" if len(folds) > 1 else "a holdout: it validates on"
        log.warning("warning: %s: %d training rows in %s %s rows, too few for a steady score or early stopping; "
                    "use more rows%s", task.name, len(y), split, rows, " or fewer --folds" if len(folds) > 2 else "")
    return folds


def train(cfg: TrainConfig, data_dir: Path | None = None, out: Path | None = None,
          runs_root: Path | None = None, on_epoch: FoldHook | None = None,
          on_fold: Callable[[int, dict], None] | None = None, tensorboard: bool = False) -> TrainResult:
    """A new run: ingest, k-fold training, metrics, submission, plots (`tensorboard`: event files
    under <run>/tensorboard/, see pipelines/tblog.py)."""
    start = time.perf_counter()
    if out is not None:
        check_writable(out)
    inp = prepare(cfg, data_dir, runs_root)
    run_dir = runs.new_run(runs_root or runs.RUNS_ROOT, inp.task.name, cfg.model, cfg.seed)
    runs.write_json(run_dir / "config.json", {
        "config": cfg.to_dict(),
        # where the data came from and where the submission goes, so `--resume` needs neither again
        "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
        "data": fingerprint.record(inp.task, inp.train, inp.y, data_dir),   # which runs rank and blend together
        "out": str(Path(out).resolve()) if out else None,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "sklearn": sklearn.__version__, "pandas": pd.__version__, "code": runs.code_version()}})
    return _complete(inp, cfg, run_dir, out, start, on_epoch, on_fold, resumed=False, tensorboard=tensorboard)


def resume(task_name: str, run: str, data_dir: Path | None = None, out: Path | None = None,
           runs_root: Path | None = None, device: str | None = None, on_epoch: FoldHook | None = None,
           on_fold: Callable[[int, dict], None] | None = None, tensorboard: bool = False) -> TrainResult:
    """Continue an interrupted or failed run from its last finished epoch, with its own config.

    Finished fold models are loaded, the fold in progress continues from its checkpoint; on the
    CPU the OOF file and submission are byte-identical to those of an uninterrupted run."""
    start = time.perf_counter()
    task = TASKS.create(task_name)
    run_dir = runs.resolve_unfinished(runs_root or runs.RUNS_ROOT, task.name, run)
    saved = runs.read_json(run_dir / "config.json")
    saved["config"].setdefault("jobs", 1)      # runs from before --jobs trained one fold at a time
    if saved["config"].get("task") != task.name:
        raise UsageError(f"run {run_dir.name} is a {saved['config'].get('task')} run, not {task.name}")
    cfg = saved_config(saved["config"], run_dir / "config.json")
    if device is not None:
        cfg = override(cfg, {"device": device})
    data_dir = data_dir or (Path(saved["data_dir"]) if saved.get("data_dir") else None)
    out = out or (Path(saved["out"]) if saved.get("out") else None)
    if out is not None:
        check_writable(out)
    inp = prepare(cfg, data_dir, runs_root)
    start -= runs.read_json(run_dir / "status.json").get("seconds", 0.0)   # time spent before the interruption
    runs.set_status(run_dir, "running")
    return _complete(inp, cfg, run_dir, out, start, on_epoch, on_fold, resumed=True, tensorboard=tensorboard)


def _complete(inp: Inputs, cfg: TrainConfig, run_dir: Path, out: Path | None, start: float,
              on_epoch, on_fold, resumed: bool, tensorboard: bool = False) -> TrainResult:
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


def _heartbeat(run_dir: Path, start: float, on_epoch: FoldHook | None) -> FoldHook:
    """`on_epoch`, after recording the run's time so far in status.json: kill -9 runs no handler,
    and a resume adds this figure (the time up to the last checkpoint) to its own."""
    def hook(fold: int, bag: int, row: dict) -> None:
        runs.set_status(run_dir, "running", seconds=time.perf_counter() - start)
        if on_epoch is not None:
            on_epoch(fold, bag, row)
    return hook


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during training; the run directory is kept for `--resume`."""


class RunFailed(RuntimeError):
    """Training stopped for a reason outside the input (a worker process killed); kept for `--resume`."""


def _ids(task: Task, df: pd.DataFrame) -> pd.Series:
    return df[task.id_col] if task.id_col else pd.Series(np.arange(1, len(df) + 1))


def cross_validate(inp: Inputs, cfg: TrainConfig, run_dir: Path | None = None,
                   on_epoch: FoldHook | None = None, on_fold: Callable[[int, dict], None] | None = None,
                   predict_test: bool = True, only_folds: Collection[int] | None = None) -> dict:
    """Stages 2-3 over every fold: fit encoders on the fold's train rows, train `cfg.bags` models,
    collect OOF and averaged test probabilities. With `run_dir`, every artifact is saved there;
    without (tuning), nothing is written. `only_folds` trains just those folds, seeded as in the
    full run (bench/fold.py); CV is then over their rows and calibration, which needs all, is skipped."""
    task, y, folds = inp.task, inp.y, inp.folds
    test = inp.test if predict_test else None
    todo = [k for k in range(len(folds)) if only_folds is None or k in only_folds]
    plan = fold_plan(cfg, inp, todo)

    def trained():
        for ks, jobs, threads in plan:
            calls = [(inp, cfg, k, test, run_dir) for k in ks]
            if jobs == 1:      # here, on this process's threads
                yield from ((k, _train_fold(*args, on_epoch=on_epoch)) for k, args in zip(ks, calls))
            else:
                yield from ((ks[i], out) for i, out in workers.run_jobs(_train_fold, calls, jobs, threads, on_epoch))
    finished = trained()
    outputs = {}
    with closing(finished):    # an error in on_fold stops the workers too
        for k, out in finished:
            outputs[k] = out
            if run_dir is not None:
                _record_fold(run_dir / f"fold{k}", out["row"], y[folds[k][1]], out["val"])
            if on_fold:      # with the CV of the folds finished so far (uncalibrated), for progress lines
                idx = np.concatenate([folds[j][1] for j in outputs])
                so_far = cv_scores(task, y[idx], np.concatenate([outputs[j]["val"] for j in outputs]))
                on_fold(k, {**out["row"], "cv_so_far": so_far, "folds_done": len(outputs)})
    oof = np.full((len(y),) if task.binary else (len(y), task.out_features), np.nan)
    fold_rows, history, test_parts = [], [], []    # in fold order, whatever order the folds finished in
    for k in sorted(outputs):
        oof[folds[k][1]] = outputs[k]["val"]
        fold_rows.append(outputs[k]["row"])
        history += outputs[k]["history"]
        test_parts += outputs[k]["test"]       # each model's, averaged once calibration is known
    done = ~np.isnan(oof if oof.ndim == 1 else oof[:, 0])     # folds == 1: holdout rows only
    calibration, temperature = None, 1.0
    if cfg.calibrate and len(folds) > 1 and only_folds is None:
        raw = cv_scores(task, y, oof)
        oof, fold_t, temperature = cross_fit(oof, y, folds)
        calibration = {"temperature": temperature, "fold_temperatures": fold_t, "cv_uncalibrated": raw}
        for row, (_, va), t in zip(fold_rows, folds, fold_t):      # the scores train printed stay, labelled
            raw_row = {m: row[m] for m in (task.metric, *task.extra_metrics)}
            row |= {"temperature": t, **cv_scores(task, y[va], oof[va]), "uncalibrated": raw_row}
    test = (sum(apply_temperature(p, temperature) for p in test_parts) / len(test_parts)) if test_parts else None
    if run_dir is not None:
        if calibration is not None:
            runs.write_json(run_dir / "calibration.json", calibration)
        pd.DataFrame(history).to_csv(run_dir / "history.csv", index=False, float_format="%.6g")
        _write_oof(task, inp.train, y, oof, run_dir / "oof.csv")
    return {"task": task.name, "metric": task.metric, "maximize": METRICS[task.metric].maximize,
            "cv": cv_scores(task, y[done], oof[done]), "folds": fold_rows, "n_rows": len(y),
            "n_scored": int(done.sum()), "epochs_run": len(history), "device": str(inp.device),
            "autocast": str(autocast_dtype(inp.device, cfg.precision) or "off").replace("torch.", ""),
            "fold_plan": [{"folds": ks, "jobs": jobs, "threads": threads} for ks, jobs, threads in plan],
            "calibration": calibration, "test": test}


def _record_fold(fold_dir: Path, row: dict, y: np.ndarray, proba: np.ndarray) -> None:
    """A finished fold's scores (`scores.json`, last: it marks the record whole) and validation targets
    and probabilities (`val.npz`): what `report` shows of a run interrupted before metrics.json, with
    the CV of the finished folds."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, y=y, proba=proba)
    replace_atomically(fold_dir / "val.npz", write)
    runs.write_json(fold_dir / "scores.json", row)


def fold_plan(cfg: TrainConfig, inp: Inputs, folds: list[int]) -> list[tuple[list[int], int, int]]:
    """How the folds train: rounds of (folds, how many at once, torch threads each), one after the other.

    `cfg.jobs` 0 (auto): on the CPU, tables train one fold per core, each in a worker process on
    one thread (a small MLP uses a second thread badly); images and CUDA one fold at a time, here,
    on every thread. Every fold gets the same threads, the last one too: a fold left over from the
    last full round (5 folds on 2 cores: fold 4) trains alone on one thread rather than on every
    core, as a multi-threaded fold waits at each step for its slowest thread and so slows down
    most when another process wants a core (bench/contention.py, BENCHMARKS.md). Threads follow
    from the jobs and the cores, not from timing, so a run reproduces on the same machine."""
    cores = torch.get_num_threads()
    jobs = cfg.jobs or (cores if inp.device.type == "cpu" and inp.task.kind != "image" else 1)
    jobs = max(1, min(jobs, len(folds)))
    return [(folds, jobs, cores if jobs == 1 else max(1, cores // jobs))]


def _train_fold(inp: Inputs, cfg: TrainConfig, k: int, test, run_dir: Path | None,
                on_epoch: FoldHook | None = None) -> dict:
    """Fold k, stages 2-3: fit its encoder on its training rows, train `cfg.bags` models, predict
    its validation rows (bag-averaged) and the test rows (one array per model). A job of its own
    with --jobs > 1, so it takes and returns only what pickles."""
    task = inp.task
    tr, va = inp.folds[k]
    fold_start = time.perf_counter()
    enc = encode_fold(task, cfg, inp, tr, va, test)
    y_tr, y_va = as_tensor(inp.y[tr], inp.device, torch.long), as_tensor(inp.y[va], inp.device, torch.long)
    fold_dir = run_dir / f"fold{k}" if run_dir is not None else None
    if fold_dir is not None:
        # a resumed run refits the encoder: it is deterministic, and cheaper than trusting a half-written file
        fold_dir.mkdir(exist_ok=True)
        runs.dump_joblib(enc.encoder, fold_dir / "encoder.joblib")
        runs.write_json(fold_dir / "columns.json", enc.columns)
    fold_val, best_epochs, earlier, history, test_parts = 0.0, [], 0.0, [], []   # earlier: seconds before a resume
    for b in range(cfg.bags):
        model, res = _fit_bag(inp, cfg, enc, k, b, y_tr, y_va, fold_dir, on_epoch)
        earlier += res.pop("seconds_before", 0.0)
        history += [{"fold": k, "bag": b, **row} for row in res["history"]]
        best_epochs.append(res["best_epoch"])
        fold_val = fold_val + predict_proba(task, model, enc.x_val, enc.batch_fn, cfg.precision) / cfg.bags
        if enc.x_test is not None:
            test_parts.append(predict_proba(task, model, enc.x_test, enc.batch_fn, cfg.precision))
    row = {"fold": k, "n_train": len(tr), "n_val": len(va), "best_epochs": best_epochs,
           **cv_scores(task, inp.y[va], fold_val), "seconds": time.perf_counter() - fold_start + earlier}
    return {"val": fold_val, "test": test_parts, "history": history, "row": row}


def init_from_data(net: torch.nn.Module, x_train: torch.Tensor, batch_fn) -> None:
    """A model's data-dependent init (fastnet's whitened stem), on the first DATA_INIT_IMAGES
    training images as the model sees them; models without one are left as built."""
    if hasattr(net, "init_from_data"):
        net.init_from_data(batch_fn(x_train[:DATA_INIT_IMAGES], False))


def _fit_bag(inp: Inputs, cfg: TrainConfig, enc: Encoded, k: int, b: int, y_tr, y_va,
             fold_dir: Path | None, on_epoch: FoldHook | None):
    """Train fold k's bag b, or load it when a resumed run finished it already.

    In a run directory the trainer checkpoints every epoch to `ckpt<b>.pt`; the finished
    model goes to `model<b>.pt` and its record to `bag<b>.json`, then the checkpoint is deleted."""
    task = inp.task
    done = fold_dir / f"bag{b}.json" if fold_dir is not None else None
    if done is not None and done.is_file() and (fold_dir / f"model{b}.pt").is_file():
        record = runs.read_json(done)          # finished before a resume: all its training time was earlier
        seconds = record["history"][-1]["seconds"] if record.get("history") else 0.0
        return runs.load_model(fold_dir / f"model{b}.pt", inp.device), {**record, "seconds_before": seconds}
    gen = seed_everything(cfg.seed * 10_007 + k * 101 + b)   # distinct, reproducible per fold/bag
    args = model_args(cfg.model, cfg.to_dict(), **enc.shape)
    net = build_model(cfg.model, args).to(inp.device)
    if enc.batch_fn is not None:
        init_from_data(net, enc.x_train, enc.batch_fn)
    if inp.device.type == "cuda" and task.kind == "image":
        net = net.to(memory_format=torch.channels_last)     # NHWC: faster convs on tensor cores
    model = torch.compile(net) if cfg.compile else net   # shares `net`'s parameters
    hook = (lambda row: on_epoch(k, b, row)) if on_epoch else None
    extra = {"batch_transform": enc.batch_fn} if enc.batch_fn else {}
    ckpt = fold_dir / f"ckpt{b}.pt" if fold_dir is not None else None
    score, maximize = score_fn(task)
    res = fit(model, enc.x_train, y_tr, enc.x_val, y_va, cfg=cfg, loss_fn=loss_fn(task, cfg.label_smoothing),
              score_fn=score, maximize=maximize, generator=gen, on_epoch=hook, checkpoint=ckpt,
              epoch_metrics=epoch_metric_fn(task), **extra)
    record = {"best_epoch": res.best_epoch, "best_score": res.best_score, "history": res.history}
    if fold_dir is not None:
        runs.save_model(fold_dir / f"model{b}.pt", cfg.model, args, net)   # uncompiled keys
        runs.write_json(done, record)
        ckpt.unlink(missing_ok=True)
    return res.model, {**record, "seconds_before": res.seconds_before}


def _write_oof(task: Task, train, y: np.ndarray, oof: np.ndarray, path: Path) -> None:
    ids = _ids(task, train).to_numpy() if isinstance(train, pd.DataFrame) else np.arange(1, len(y) + 1)
    cols = {"id": ids, "target": y}
    if task.binary:
        cols["proba"] = oof
    else:
        cols |= {str(c): oof[:, i] for i, c in enumerate(task.classes)}
    write_atomic(pd.DataFrame(cols), path, float_format="%.8f")


def _load_run(task_name: str, run: str, runs_root: Path | None):
    task = TASKS.create(task_name)
    run_dir = runs.resolve_run(runs_root or runs.RUNS_ROOT, task.name, run)
    saved = runs.read_json(run_dir / "config.json")      # the run's config, data folder and versions
    cfg = saved["config"]
    state = runs.state_of(run_dir)
    if state != "complete":
        raise UsageError(f"run {run_dir.name} is {state}, not complete; finish it with "
                         f"`train {task.name} --resume {run_dir.name}`")
    if cfg["task"] != task.name:
        raise UsageError(f"run {run_dir.name} is a {cfg['task']} run, not {task.name}")
    fold_dirs = sorted(run_dir.glob("fold*"), key=lambda p: int(p.name[4:]))
    if not fold_dirs:
        raise UsageError(f"{run_dir}: no fold directories; the run is incomplete")
    return task, run_dir, fold_dirs, saved


def _temperature(run_dir: Path) -> float:
    path = run_dir / "calibration.json"
    return float(runs.read_json(path)["temperature"]) if path.is_file() else 1.0


def _precision(saved: dict) -> str:
    """The precision a run trained at; runs from before the option trained in float32 on the CPU."""
    return saved["config"].get("precision", "fp32")


def ensemble_proba(task, run_dir: Path, fold_dirs: list[Path], saved: dict, data, device: torch.device) -> np.ndarray:
    """Average the probabilities of every fold's models, each fold with its own fitted encoder,
    each model's temperature-scaled first (the run's calibration.json, when it has one), at the
    precision the run trained at. `saved`: the run's config.json, as `_load_run` read it.

    `data`: a DataFrame (tables) or uint8 array (N, C, H, W) (images)."""
    from features.images import BatchTransform
    temperature, precision = _temperature(run_dir), _precision(saved)
    trained_by = saved.get("versions", {}).get("code")      # named if a changed model no longer fits the weights
    total, n = None, 0
    images = as_tensor(data, device, torch.uint8) if task.kind == "image" else None   # one copy for all folds
    for fold_dir in fold_dirs:
        try:
            encoder = joblib.load(fold_dir / "encoder.joblib")
        except Exception as e:
            raise UsageError(f"{fold_dir / 'encoder.joblib'}: missing or corrupted ({type(e).__name__})") from None
        columns = runs.read_json(fold_dir / "columns.json")
        if task.kind == "image":
            x = images
            batch_fn = BatchTransform(encoder, device, task.flip, task.translate)
        else:
            x, batch_fn = encoder.transform(data), None
            if x.shape[1] != len(columns):
                raise UsageError(f"{fold_dir}: encoder gives {x.shape[1]} columns, the model was trained on {len(columns)}")
            x = as_tensor(x, device)
        for path in sorted(fold_dir.glob("model*.pt")):
            p = apply_temperature(predict_proba(task, runs.load_model(path, device, trained_by), x, batch_fn, precision), temperature)
            total = p if total is None else total + p
            n += 1
    if n == 0:
        raise UsageError(f"{fold_dirs[0].parent}: no model weights; the run is incomplete")
    return total / n


def run_test_predictions(run: str, task_name: str, data_dir: Path | None = None, input_path: Path | None = None,
                     runs_root: Path | None = None, device: str = "auto"):
    """A run's fold models, rebuilt from its directory, on a test set: (task, run_dir, ids, proba,
    sample), the ids in test-file order and `sample` the competition's sample submission if found."""
    task, run_dir, fold_dirs, saved = _load_run(task_name, run, runs_root)
    dev = resolve_device(device)
    if data_dir is None and input_path is None:     # the folder the run trained from, as --resume uses it
        if saved.get("data_dir") and Path(saved["data_dir"]).is_dir():
            data_dir = Path(saved["data_dir"])
            log.info("%s: test data from the run's --data-dir %s", task.name, data_dir)
    if task.kind == "image":
        if input_path is not None:
            raise UsageError("image tasks predict a --data-dir test split; for single files use predict-image")
        imgs = load_images(task, data_dir, (runs_root or runs.RUNS_ROOT) / ".cache")
        if not len(imgs.test_x):
            raise UsageError(f"{task.name}: the data has no test images")
        proba = ensemble_proba(task, run_dir, fold_dirs, saved, imgs.test_x, dev)
        return task, run_dir, np.asarray(imgs.test_ids), proba, None
    if input_path is None and "test" not in task.files:
        raise UsageError(f"{task.name} has no test file; pass --input FILE with rows to predict")
    if input_path is None:
        fetch_if_missing(task, data_dir, roles=("test",))
    test_df = ingest.load(task, "test", data_dir, path=input_path)
    sample = load_sample(task, data_dir) if input_path is None else None
    ids = _ids(task, test_df).to_numpy()
    check_test_ids(ids, sample, task.id_col, task.files.get("test", "test file"), task.files.get("sample", "the sample"))
    proba = ensemble_proba(task, run_dir, fold_dirs, saved, test_df, dev)
    return task, run_dir, ids, proba, sample


def write_submission(task, ids, proba: np.ndarray, sample: pd.DataFrame | None, out: Path) -> Path:
    """The task's submission file for these probabilities, in the sample's row order, checked, written atomically."""
    sub = in_sample_order(task.submission(ids, proba, task), sample, task.id_col)
    check_submission(sub, sample, task.id_col)
    return write_atomic(sub, out)


def predict(run: str, task_name: str, data_dir: Path | None = None, input_path: Path | None = None,
            out: Path | None = None, runs_root: Path | None = None, device: str = "auto") -> Path:
    """Rebuild every fold's encoder and models from the run directory and predict a test set."""
    task, run_dir, ids, proba, sample = run_test_predictions(run, task_name, data_dir, input_path, runs_root, device)
    return write_submission(task, ids, proba, sample, out or SUBMISSIONS_DIR / f"{task.name}-{run_dir.name}-predict.csv")


def _image_files(paths) -> list[Path]:
    """The given files, with a folder standing for the image files directly inside it (sorted)."""
    from data.images import IMAGE_EXTS
    out: list[Path] = []
    for f in map(Path, paths):
        if f.is_dir():
            found = sorted(p for p in f.iterdir() if p.is_file() and not p.name.startswith(".")
                           and p.suffix.lower() in IMAGE_EXTS | {".gif", ".webp", ".tif", ".tiff"})
            if not found:
                raise UsageError(f"{f}: folder holds no image files")
            out += found
        elif f.is_file():
            out.append(f)
        else:
            raise UsageError(f"{f}: file not found")
    return out


def predict_images(run: str, task_name: str, files: list[Path], runs_root: Path | None = None,
                   device: str = "auto") -> list[tuple[Path, str, float]]:
    """Classify image files of any size and mode: converted to the task's channels and size."""
    from data.images import decode_image
    task, run_dir, fold_dirs, saved = _load_run(task_name, run, runs_root)
    if task.kind != "image":
        raise UsageError(f"{task.name} is not an image task")
    files = _image_files(files)
    x = np.stack([decode_image(Path(f), task.channels, task.size, resize=True) for f in files])
    proba = ensemble_proba(task, run_dir, fold_dirs, saved, x, resolve_device(device))
    return [(Path(f), str(task.classes[i]), float(p[i])) for f, p, i in zip(files, proba, proba.argmax(1))]
