"""Stages 2-3, the cross-validation loop: the fold plan, one fold (fit its encoder on its training
rows, train `cfg.bags` models), the bags, and the OOF and test probabilities they add up to.

`cross_validate(inp, cfg, run_dir)` is what a training run (pipelines/train.py) and tuning call.
With `run_dir`, every artifact a later `predict` needs is saved there: per fold the fitted
encoder, its column order and each bag's model; per run the OOF file and history.

With --extra-train (pipelines/inputs.py) the extra rows follow the competition's in `inp.train` and
`inp.y` and sit in every fold's training indices, so the encoders and models fit on them; the OOF,
the scores and the calibration here are over the competition's own rows only.
"""
from __future__ import annotations

import logging
import time
from contextlib import closing
from pathlib import Path
from typing import Callable, Collection

import numpy as np
import pandas as pd
import torch

from core import workers
from core.config import TrainConfig, override
from core.files import replace_atomically
from core.runtime import autocast_dtype
from pipelines.calibrate import apply_temperature, cross_fit
from pipelines.folds import inner_split
from pipelines.inputs import Inputs
from pipelines.metrics import METRICS
from pipelines.learners import LEARNERS
from pipelines.proba import cv_scores
from pipelines import runs
from tasks.task import Encoded, TaskBase
from submissions.format import write_atomic

FoldHook = Callable[[int, int, dict], None]   # (fold, bag, epoch log row)

log = logging.getLogger(__name__)


def cross_validate(inp: Inputs, cfg: TrainConfig, run_dir: Path | None = None,
                   on_epoch: FoldHook | None = None, on_fold: Callable[[int, dict], None] | None = None,
                   predict_test: bool = True, only_folds: Collection[int] | None = None) -> dict:
    """Stages 2-3 over every fold: fit encoders on the fold's train rows, train `cfg.bags` models,
    collect OOF and averaged test probabilities. With `run_dir`, every artifact is saved there;
    without (tuning), nothing is written. `only_folds` trains just those folds, seeded as in the
    full run (bench/fold.py); CV is then over their rows and calibration, which needs all, is skipped."""
    cfg = one_bag_if_unseeded(cfg)
    task, y, folds = inp.task, inp.y[:inp.own_rows], inp.folds      # extra rows train, never score
    test = inp.test if predict_test else None
    todo = [k for k in range(len(folds)) if only_folds is None or k in only_folds]
    plan = fold_plan(cfg, inp, todo)
    jobs_of = {k: jobs for ks, jobs, _ in plan for k in ks}     # how many folds train beside each

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
                on_fold(k, {**out["row"], "cv_so_far": so_far, "folds_done": len(outputs), "jobs": jobs_of[k]})
    oof = np.full((len(y),) if task.out_features == 1 else (len(y), task.out_features), np.nan)
    fold_rows, history, test_parts = [], [], []    # in fold order, whatever order the folds finished in
    for k in sorted(outputs):
        oof[folds[k][1]] = outputs[k]["val"]
        fold_rows.append(outputs[k]["row"])
        history += outputs[k]["history"]
        test_parts += outputs[k]["test"]       # each model's, averaged once calibration is known
    done = ~np.isnan(oof if oof.ndim == 1 else oof[:, 0])     # folds == 1: holdout rows only
    calibration, temperature = None, 1.0
    if cfg.calibrate and task.problem == "regression":
        log.info("%s: calibrate skipped: temperature scaling rescales probabilities, and a regression "
                 "predicts values", task.name)
    elif cfg.calibrate and len(folds) > 1 and only_folds is None:
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
        _write_oof(task, inp.train.iloc[:len(y)] if inp.extra else inp.train, y, oof, run_dir / "oof.csv")
    return {"task": task.name, "metric": task.metric, "maximize": METRICS[task.metric].maximize,
            "cv": cv_scores(task, y[done], oof[done]), "folds": fold_rows, "n_rows": len(y),
            "n_scored": int(done.sum()), "epochs_run": len(history), "device": str(inp.device),
            "autocast": str(autocast_dtype(inp.device, cfg.precision) or "off").replace("torch.", ""),
            "fold_plan": [{"folds": ks, "jobs": jobs, "threads": threads} for ks, jobs, threads in plan],
            "calibration": calibration, "test": test, **({"extra_train": inp.extra} if inp.extra else {})}


def one_bag_if_unseeded(cfg: TrainConfig) -> TrainConfig:
    """`cfg` with bags=1 where the learner's fit ignores its seed (logreg, ridge, knn,
    `Learner.seeded`): every bag of a fold fits the same rows, so more bags would repeat one fit
    (Titanic's default of 3 bags meets `--model logreg`). Said at DEBUG: the run is the same, only faster."""
    if cfg.bags > 1 and not LEARNERS.get(cfg.model).seeded:
        log.debug("%s: bags=%d would fit the same model %d times (its fit ignores the seed); one bag per fold",
                 cfg.model, cfg.bags, cfg.bags)
        return override(cfg, {"bags": 1})
    return cfg


def fold_plan(cfg: TrainConfig, inp: Inputs, folds: list[int]) -> list[tuple[list[int], int, int]]:
    """How the folds train: rounds of (folds, how many at once, torch threads each), one after the other.

    `cfg.jobs` 0 (auto): on the CPU, tables train one fold per core, each in a worker process on
    one thread (a small MLP uses a second thread badly); images and CUDA one fold at a time, here,
    on every thread. Every fold gets the same threads, the last one too: a fold left over from the
    last full round (5 folds on 2 cores: fold 4) trains alone on one thread rather than on every
    core, as a multi-threaded fold waits at each step for its slowest thread and so slows down
    most when another process wants a core (bench/contention.py, BENCHMARKS.md). Threads follow
    from the jobs and the cores, not from timing, so a run reproduces on the same machine.
    A learner that says `parallel_folds = False` (the forests) trains one fold at a time on every
    core: it spreads its own work (trees) over the cores without lockstep, and one fold's model
    is large enough that two at once would double the memory."""
    cores = torch.get_num_threads()
    side_by_side = inp.task.parallel_folds and getattr(LEARNERS.get(cfg.model), "parallel_folds", True)
    jobs = cfg.jobs or (cores if inp.device.type == "cpu" and side_by_side else 1)
    jobs = max(1, min(jobs, len(folds)))
    return [(folds, jobs, cores if jobs == 1 else max(1, cores // jobs))]


def _train_fold(inp: Inputs, cfg: TrainConfig, k: int, test, run_dir: Path | None,
                on_epoch: FoldHook | None = None) -> dict:
    """Fold k, stages 2-3: fit its encoder on its training rows, train `cfg.bags` models, predict
    its validation rows (bag-averaged) and the test rows (one array per model). A job of its own
    with --jobs > 1, so it takes and returns only what pickles.

    stopping='refit': each bag's epochs (rounds) are first chosen on the inner split
    (`_choose_steps`), then the bag trains again on all the fold's training rows for that count."""
    task = inp.task
    tr, va = inp.folds[k]
    fold_start = time.perf_counter()
    fold_dir = run_dir / f"fold{k}" if run_dir is not None else None
    if fold_dir is not None:
        fold_dir.mkdir(exist_ok=True)
    fit, stop = stopping_rows(inp, cfg, k)
    chosen, grow, earlier = [None] * cfg.bags, 1.0, 0.0     # earlier: seconds spent before a resume
    if cfg.stopping == "refit":
        if LEARNERS.get(cfg.model).progress_unit != "fit":    # a one-fit learner (logreg) has no count to choose
            chosen, earlier = _choose_steps(inp, cfg, k, fold_dir, on_epoch, fit, stop)
        fit, stop, grow = tr, va, len(tr) / len(fit)
    enc = encode_fold(task, cfg, inp, fit, stop, test)
    # what the OOF scores: the rows early stopping watched ('val'), or the fold's validation rows
    # through the fitted encoder, as test rows go ('inner': no label of theirs chose anything;
    # 'refit': the same, with the validation rows passed to the refit for its log only)
    x_val = enc.x_val if stop is va else \
        LEARNERS.get(cfg.model).fold_input(task, enc.encoder, enc.columns, inp.train.iloc[va], inp.device, fold_dir)[0]
    if fold_dir is not None:
        # a resumed run refits the encoder: it is deterministic, and cheaper than trusting a half-written file
        runs.dump_joblib(enc.encoder, fold_dir / "encoder.joblib")
        runs.write_json(fold_dir / "columns.json", enc.columns)
    fold_val, best_epochs, history, test_parts = 0.0, [], [], []
    for b in range(cfg.bags):
        learner, res = _fit_bag(inp, cfg, enc, k, b, fold_dir, on_epoch, fit, stop, chosen[b], grow)
        earlier += res.pop("seconds_before", 0.0)
        history += [{"fold": k, "bag": b, **row} for row in res["history"]]
        best_epochs.append(res["best_epoch"])
        fold_val = fold_val + learner.predict_proba(x_val, enc.batch_fn) / cfg.bags
        if enc.x_test is not None:
            test_parts.append(learner.predict_proba(enc.x_test, enc.batch_fn))
    row = {"fold": k, "n_train": len(tr), "n_val": len(va), "best_epochs": best_epochs,
           **cv_scores(task, inp.y[va], fold_val), "seconds": time.perf_counter() - fold_start + earlier}
    return {"val": fold_val, "test": test_parts, "history": history, "row": row}


def stopping_rows(inp: Inputs, cfg: TrainConfig, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Fold k's (rows a model fits, rows its early stopping watches): with stopping='val' its
    training and validation rows; with 'inner' and 'refit' its training rows split
    (pipelines/folds.inner_split), the validation rows left to be scored only; with 'fixed' its
    training and validation rows, the latter watched for the log only (nothing stops early)."""
    tr, va = inp.folds[k]
    if cfg.stopping in ("val", "fixed"):
        return tr, va
    return inner_split(tr, inp.y, inp.own_rows, cfg.inner, cfg.seed * 10_007 + k,
                       stratify=inp.task.problem != "regression")


def encode_fold(task, cfg: TrainConfig, inp: Inputs, tr, va, test) -> Encoded:
    """Stage 2: fit the encoder on the fold's training rows only, encode train/val/test, the
    learner's way (by default the task's: tables its feature pipeline, images channel statistics
    and a per-batch transform)."""
    return LEARNERS.get(cfg.model).encode_fold(task, cfg, inp, tr, va, test)


def _seed(cfg: TrainConfig, k: int, b: int) -> int:
    """A distinct, reproducible seed per fold and bag (the same for a refit's two fits)."""
    return cfg.seed * 10_007 + k * 101 + b


def _tagged(hook: FoldHook | None, k: int, b: int, phase: str | None):
    """The learner's per-step hook: `hook` for fold k's bag b, each row tagged with its `phase`."""
    if hook is None:
        return None
    return (lambda row: hook(k, b, {**row, "phase": phase})) if phase else (lambda row: hook(k, b, row))


def _choose_steps(inp: Inputs, cfg: TrainConfig, k: int, fold_dir: Path | None, on_epoch: FoldHook | None,
                  fit: np.ndarray, stop: np.ndarray) -> tuple[list, float]:
    """stopping='refit', first part: per bag, the epochs (rounds) early stopping chooses on the
    inner rows `stop`, the model fit on `fit` (an encoder of their own); and the seconds of it spent
    before a resume. In a run directory each bag's choice is kept as `chosen<b>.json` (with its
    history) until the bag's refit is saved, so a resumed run skips it; the models are not kept."""
    enc, out, earlier = None, [], 0.0
    for b in range(cfg.bags):
        done = fold_dir / f"chosen{b}.json" if fold_dir is not None else None
        if done is not None and done.is_file():          # chosen before a resume
            out.append(runs.read_json(done))
            earlier += out[-1].get("seconds", 0.0)
            continue
        if done is not None and (fold_dir / f"bag{b}.json").is_file():
            out.append(runs.read_json(fold_dir / f"bag{b}.json"))   # finished: `_fit_bag` loads it, and counts its time
            continue
        enc = enc or encode_fold(inp.task, cfg, inp, fit, stop, None)
        learner = LEARNERS.create(cfg.model, task=inp.task, cfg=cfg, device=inp.device, random_state=_seed(cfg, k, b))
        ckpt = fold_dir / f"ckpt{b}-chosen.pt" if fold_dir is not None else None
        learner.fit(enc, inp.y[fit], inp.y[stop], on_step=_tagged(on_epoch, k, b, "choose"), checkpoint=ckpt)
        record = {**_record(learner, "choose"), "seconds": learner.history_[-1]["seconds"] if learner.history_ else 0.0}
        if done is not None:
            runs.write_json(done, record)
            ckpt.unlink(missing_ok=True)
        out.append(record)
        earlier += learner.seconds_before_
    return out, earlier


def _fit_bag(inp: Inputs, cfg: TrainConfig, enc: Encoded, k: int, b: int,
             fold_dir: Path | None, on_epoch: FoldHook | None, fit: np.ndarray, stop: np.ndarray,
             chosen: dict | None = None, grow: float = 1.0):
    """Train fold k's bag b (pipelines/learners.py), or load it when a resumed run finished it already.

    In a run directory the learner may checkpoint to `ckpt<b>.pt` (the trainer does, every epoch);
    the finished model goes to `model<b><suffix>` and its record to `bag<b>.json`, then the
    checkpoint is deleted. `chosen` (stopping='refit'): `_choose_steps`'s record for this bag; the
    model trains its `best_epoch` steps (`grow` times as many rows) and the record holds both fits."""
    factory = LEARNERS.get(cfg.model)
    done = fold_dir / f"bag{b}.json" if fold_dir is not None else None
    saved = fold_dir / f"model{b}{factory.suffix}" if fold_dir is not None else None
    if done is not None and done.is_file() and saved.is_file():
        record = runs.read_json(done)          # finished before a resume: all its training time was earlier
        seconds = record["history"][-1]["seconds"] if record.get("history") else 0.0
        return factory.load(saved, inp.task, inp.device, cfg.precision), {**record, "seconds_before": seconds}
    learner = LEARNERS.create(cfg.model, task=inp.task, cfg=cfg, device=inp.device, random_state=_seed(cfg, k, b))
    ckpt = fold_dir / f"ckpt{b}.pt" if fold_dir is not None else None
    steps = chosen["best_epoch"] if chosen else None
    learner.fit(enc, inp.y[fit], inp.y[stop], on_step=_tagged(on_epoch, k, b, "refit" if chosen else None),
                checkpoint=ckpt, steps=steps, grow=grow)
    record = _record(learner)
    if chosen:       # the fold's best epochs are the chosen ones; the history, both fits' (the refit's timed after)
        before = chosen.get("seconds", 0.0)
        refit = [{**row, "phase": "refit", "seconds": row["seconds"] + before} for row in learner.history_]
        record = {"best_epoch": steps, "best_score": chosen["best_score"], "refit_steps": learner.best_step_,
                  "history": chosen["history"] + refit}
    if fold_dir is not None:
        learner.save(saved)
        runs.write_json(done, record)
        ckpt.unlink(missing_ok=True)
        (fold_dir / f"chosen{b}.json").unlink(missing_ok=True)     # bag<b>.json holds it now
    return learner, {**record, "seconds_before": learner.seconds_before_}


def _record(learner, phase: str | None = None) -> dict:
    """A fitted bag's record (bag<b>.json, chosen<b>.json): its best step and score, and its history,
    each row tagged with `phase` when given."""
    history = [{**row, "phase": phase} for row in learner.history_] if phase else learner.history_
    return {"best_epoch": learner.best_step_, "best_score": learner.best_score_, "history": history}


def _record_fold(fold_dir: Path, row: dict, y: np.ndarray, proba: np.ndarray) -> None:
    """A finished fold's scores (`scores.json`, last: it marks the record whole) and validation targets
    and probabilities (`val.npz`): what `report` shows of a run interrupted before metrics.json, with
    the CV of the finished folds."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, y=y, proba=proba)
    replace_atomically(fold_dir / "val.npz", write)
    runs.write_json(fold_dir / "scores.json", row)


def _write_oof(task: TaskBase, train, y: np.ndarray, oof: np.ndarray, path: Path) -> None:
    """id, target, then P(class 1) as `proba` (binary), one column per class, or the predicted value
    as `prediction` (regression, in 10 significant digits: a target may be 1e-6 or 1e6)."""
    cols = {"id": task.row_ids(train), "target": y}
    if task.problem == "regression":
        write_atomic(pd.DataFrame(cols | {"prediction": oof}), path, float_format="%.10g")
        return
    if task.binary:
        cols["proba"] = oof
    else:
        cols |= {str(c): oof[:, i] for i, c in enumerate(task.classes)}
    write_atomic(pd.DataFrame(cols), path, float_format="%.8f")
