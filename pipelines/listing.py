"""Which finished runs there are and how they rank: runs of one data only (`blend --top`), and
the `runs` table, grouped by the data they trained on, unfinished runs apart (lines only;
`cli.py runs` prints them). Reads run folders (pipelines/runs.py), imports no torch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from core.errors import UsageError
from data.fingerprint import describe
from pipelines import runs
from pipelines.runs import list_runs, read_json

log = logging.getLogger(__name__)

def data_of(run: Path) -> dict | None:
    """The run's `data` record (source, rows, fingerprint: data/fingerprint.py); None for a run
    recorded before runs had one, or whose config.json cannot be read."""
    try:
        saved = read_json(run / "config.json")
    except UsageError:
        return None
    rec = saved.get("data") if isinstance(saved, dict) else None
    return rec if isinstance(rec, dict) and isinstance(rec.get("fingerprint"), str) else None


def newest_data(root: Path, task: str) -> dict | None:
    """The data record of the task's newest complete run that has one (ids start with their UTC start)."""
    for run in reversed(list_runs(root, task)):
        rec = data_of(run)
        if rec is not None:
            return rec
    return None


def ranked_runs(root: Path, task: str, fingerprint: str | None = None) -> list[Path]:
    """The task's complete runs of one data, best CV score first: those whose data fingerprint is
    `fingerprint` (default: the newest run's data). Runs of other data, runs recorded before data
    fingerprints and runs whose metrics cannot be read are left out."""
    if fingerprint is None:
        newest = newest_data(root, task)
        fingerprint = newest["fingerprint"] if newest else None
    scored = []
    for run in list_runs(root, task):
        rec = data_of(run)
        if rec is None or rec["fingerprint"] != fingerprint:
            continue
        try:
            m = read_json(run / "metrics.json")
            score = m["cv"][m["metric"]]
        except (UsageError, KeyError, TypeError):
            log.warning("%s: no readable CV score; run left out", run)
            continue
        scored.append((-score if m.get("maximize", True) else score, run.name, run))
    return [run for *_, run in sorted(scored)]


@dataclass
class Summary:
    """One complete run as `runs` lists it."""
    path: Path
    task: str
    model: str
    folds: int
    metric: str
    cv: float
    maximize: bool
    seconds: float
    finished: float | None        # epoch seconds, status.json's last update
    data: dict | None             # data_of(run)


def summaries(root: Path, task: str | None = None) -> list[Summary]:
    """The complete runs (of `task`, or every task) with readable metrics; a damaged one is skipped
    with a warning, so it cannot hide the others."""
    out = []
    for run in list_runs(root, task):
        try:
            m = read_json(run / "metrics.json")
            cfg = read_json(run / "config.json")["config"]
            finished = read_json(run / "status.json").get("updated")
        except UsageError as e:
            log.warning("%s; run skipped", e)
            continue
        out.append(Summary(run, m["task"], cfg["model"], cfg["folds"], m["metric"], m["cv"][m["metric"]],
                           m["maximize"], m["seconds_total"], finished, data_of(run)))
    return out


HEADER = (f"{'task':9s} {'run':34s} {'model':16s} {'folds':>5s} {'metric':>9s} {'cv':>9s} {'seconds':>8s}"
          "  finished (UTC)")


def runs_table(task: str | None = None, runs_root: Path | None = None) -> list[str]:
    """Finished runs (of `task`, or of every task) grouped by task and data, newest data first and
    runs of unrecorded data last, best CV first within a group: runs of different data never rank
    (or blend) together. Then the unfinished runs, with the fold models each has finished."""
    root = runs_root or runs.RUNS_ROOT
    unfinished = runs.list_runs(root, task, states=("interrupted", "failed", "running"))
    groups: dict[tuple, list[Summary]] = {}
    for s in summaries(root, task):
        groups.setdefault((s.task, s.data["fingerprint"] if s.data else None), []).append(s)
    order = sorted(groups, key=lambda k: max(s.path.name for s in groups[k]), reverse=True)   # ids start with UTC time
    order.sort(key=lambda k: (k[0], k[1] is None))       # stable: per task, newest data first, unrecorded last
    lines = [HEADER] if groups else ["no finished runs"]
    for key in order:
        rows = sorted(groups[key], key=lambda s: -s.cv if s.maximize else s.cv)
        lines.append(f"{key[0]}, {describe(rows[0].data)}:")
        lines += [_row(s) for s in rows]
    if unfinished:
        lines.append("\nunfinished (continue with `train TASK --resume RUN`):")
        for run in unfinished:
            done = len(list(run.glob("fold*/bag*.json")))
            lines.append(f"{run.parent.name:9s} {run.name:34s} {runs.state_of(run):12s} {done} fold model(s) finished")
    return lines


def _row(s: Summary) -> str:
    when = datetime.fromtimestamp(s.finished, timezone.utc).strftime("%Y-%m-%d %H:%M") if s.finished else "-"
    return (f"{s.task:9s} {s.path.name:34s} {s.model:16s} {s.folds:5d} {s.metric:>9s} {s.cv:9.5f} "
            f"{s.seconds:8.1f}  {when}")
