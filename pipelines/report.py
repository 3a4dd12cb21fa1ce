"""A run at a glance: the summary `cli.py report` prints, in any state the run is in.

It reads only the run directory (`config.json`, `status.json`, `metrics.json`, and for an unfinished
run the finished folds' `fold<k>/scores.json` and `val.npz`); the plots it lists are
pipelines/plots.py's, made there when missing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines import runs
from pipelines.metrics import METRICS
from pipelines.plots import ensure_plots


def _scores(scores: dict) -> str:
    return "  ".join(f"{k} {v:.5f}" for k, v in scores.items())


def summary_lines(run: runs.Run, plots: bool = True) -> list[str]:
    """What `cli.py report` prints: the run's config, state, scores and plot paths."""
    run_dir, cfg, state = run.path, run.saved["config"], run.state
    lines = [f"task:        {cfg['task']}", f"run:         {run_dir.name}  ({run_dir})", f"state:       {state}",
             f"model:       {cfg['model']}  (folds {cfg['folds']}, bags {cfg.get('bags', 1)}, "
             f"epochs {cfg['epochs']}, seed {cfg['seed']})"]
    m = run.metrics
    if m is not None:
        lines.append(f"{'CV:' if cfg['folds'] > 1 else 'holdout:':12s} {_scores(m['cv'])}"
                     f"  ({m.get('n_scored', m.get('n_rows'))} rows)")
        if m.get("calibration"):
            c = m["calibration"]
            lines.append(f"calibration: temperature {c['temperature']:.4f} (each fold's fitted on the other folds' "
                         f"OOF rows); before: {_scores(c['cv_uncalibrated'])}")
        if m.get("test_scores"):
            lines.append(f"test:        {_scores(m['test_scores'])}")
        lines += [_fold_line(f) for f in m.get("folds", [])]
        lines.append(f"seconds:     {m.get('seconds_total', 0):.1f}")
        lines.append(f"submission:  {m.get('submission') or '-'}")
    else:
        lines += _progress_lines(run_dir, cfg, state)
    if plots:
        lines += [f"plot:        {p}" for p in ensure_plots(run_dir, state)]
    return lines


def _fold_line(f: dict) -> str:
    """A fold's scores, as metrics.json (calibrated ones labelled, with the uncalibrated ones `train`
    printed) or a finished fold's scores.json holds them."""
    scores = {k: v for k, v in f.items() if isinstance(v, float) and k not in ("seconds", "temperature")}
    label = ""
    if "temperature" in f:
        raw = f.get("uncalibrated")
        label = (f"  (calibrated, temperature {f['temperature']:.3f}"
                 + (f"; uncalibrated, as train printed: {_scores(raw)})" if raw else ")"))
    best = f.get("best_epochs", [])
    return (f"fold {f['fold']}:{'':5s} {_scores(scores)}{label}  best epoch{'s' * (len(best) > 1)} "
            f"{', '.join(map(str, best))}  ({f.get('seconds', 0):.1f}s)")


def _finished_folds(run_dir: Path) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    """(scores row, validation targets, probabilities) of each fold an unfinished run finished,
    in fold order; a fold whose record is not whole (scores.json is written last) is left out."""
    out = []
    for scores in sorted(run_dir.glob("fold*/scores.json"), key=lambda p: int(p.parent.name[4:])):
        val = scores.parent / "val.npz"
        if val.is_file():
            with np.load(val) as z:
                out.append((runs.read_json(scores), z["y"], z["proba"]))
    return out


def _progress_lines(run_dir: Path, cfg: dict, state: str) -> list[str]:
    from pipelines import TASKS
    finished = sorted(run_dir.glob("fold*/bag*.json"))
    in_progress = sorted(run_dir.glob("fold*/ckpt*.pt"))
    lines = [f"progress:    {len(finished)} of {cfg['folds'] * cfg.get('bags', 1)} fold model(s) finished"
             + (f", in progress: {', '.join(f'{p.parent.name}/{p.name}' for p in in_progress)}" if in_progress else "")]
    folds = _finished_folds(run_dir)
    if folds:
        task = TASKS.create(cfg["task"])
        y, p = np.concatenate([f[1] for f in folds]), np.concatenate([f[2] for f in folds])
        cv = {m: METRICS[m].fn(y, p) for m in (task.metric, *task.extra_metrics)}
        raw = "; uncalibrated, as the fold lines" if cfg.get("calibrate") and cfg["folds"] > 1 else ""
        lines += [_fold_line(row) for row, _, _ in folds]
        lines.append(f"CV so far:   {_scores(cv)}  (partial: {len(folds)} of {cfg['folds']} folds, {len(y)} rows{raw})")
        lines.append("metrics:     the full CV (metrics.json) comes when the run completes")
    else:
        lines.append("metrics:     none yet: no fold finished (metrics.json is written when the run completes)")
    if state in ("interrupted", "failed"):
        lines.append(f"continue:    python cli.py train {cfg['task']} --resume {run_dir.name}")
    return lines


def report(run: str, task: str | None = None, runs_root: Path | None = None) -> list[str]:
    """`cli.py report`: the summary of a run in any state (id, 'latest' or a path; no task: any task's)."""
    return summary_lines(runs.load(task, run, require=None, runs_root=runs_root))
