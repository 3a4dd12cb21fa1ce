"""The `runs` table: finished runs grouped by the data they trained on, unfinished runs apart.

Lines only; `cli.py runs` prints them. Reads run folders (pipelines/runs.py), imports no torch.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from data.fingerprint import describe
from pipelines import runs

HEADER = (f"{'task':9s} {'run':34s} {'model':16s} {'folds':>5s} {'metric':>9s} {'cv':>9s} {'seconds':>8s}"
          "  finished (UTC)")


def runs_table(task: str | None = None, runs_root: Path | None = None) -> list[str]:
    """Finished runs (of `task`, or of every task) grouped by task and data, newest data first and
    runs of unrecorded data last, best CV first within a group: runs of different data never rank
    (or blend) together. Then the unfinished runs, with the fold models each has finished."""
    root = runs_root or runs.RUNS_ROOT
    unfinished = runs.list_runs(root, task, states=("interrupted", "failed", "running"))
    groups: dict[tuple, list[runs.Summary]] = {}
    for s in runs.summaries(root, task):
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


def _row(s: runs.Summary) -> str:
    when = datetime.fromtimestamp(s.finished, timezone.utc).strftime("%Y-%m-%d %H:%M") if s.finished else "-"
    return (f"{s.task:9s} {s.path.name:34s} {s.model:16s} {s.folds:5d} {s.metric:>9s} {s.cv:9.5f} "
            f"{s.seconds:8.1f}  {when}")
