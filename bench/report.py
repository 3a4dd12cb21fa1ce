"""BENCHMARKS.md's tables, rebuilt from the result files the bench scripts write.

    python bench/report.py                  # both generated blocks of BENCHMARKS.md
    python bench/report.py --results DIR --benchmarks-md FILE

The current-state block (between `<!-- current:start -->` and `<!-- current:end -->`) has one row
per figure, each with the command that printed it, the result (mean ± sample std over seeds where
a command ran several, with every seed's value), wall time, machine and date:

    defaults.json    bench/defaults.py: whole `cli.py train` commands
    tabular.json     bench/compare.py tabular: our default's rows (contender `ours`)
    blend.json       `cli.py blend` results (no script writes this file yet: its rows were backfilled)
    contention.json  bench/contention.py: fold plans under a competing process
    generic.json     bench/generic.py: inferred competitions, ours beside LightGBM and HistGB defaults
    scale.json       bench/scale.py: a 1M-row synthetic table, ingest and the default train
    otto_contenders.json  bench/otto_contenders.py: Otto beside a Kaggle LightGBM and RealMLP-TD
    preset.json      bench/preset.py: `train --preset` inside its budget, its leaderboard and peak memory

Rows whose `source` is `backfilled` were copied from runs recorded in BENCHMARKS.md before the
scripts saved them, with their original commands and dates. The side-by-side block (between the
`compare` markers) is `bench/compare.py report`'s.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, load, main_exit  # noqa: E402

START, END = "<!-- current:start -->", "<!-- current:end -->"
# fields of a result row that say how it ran, not what it measured
RUN_FIELDS = {"task", "seed", "set", "wall_s", "machine", "date", "command", "source", "note"}
HEADER = ["| run | command | result | time | machine | date | source |", "|---|---|---|---|---|---|---|"]


def spread(values: list[float], digits: int = 4) -> str:
    """`v` for one value; `mean ± std (a / b / c)` for several (sample std, as statistics.stdev)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    each = " / ".join(f"{v:.{digits}f}" for v in values)
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f} ({each})"


def _groups(rows: list[dict], keys: tuple[str, ...]) -> list[list[dict]]:
    """Rows grouped by `keys`, groups in the order their first row appears."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return list(out.values())


def _row(run: str, rs: list[dict], result: str, seconds: list[float]) -> str:
    first = rs[0]
    dates = ", ".join(sorted({r.get("date", "not recorded") for r in rs}))
    command = f"`{first['command']}`" if first.get("command") else "not recorded"
    return (f"| {run} | {command} | {result} | {spread(seconds, 1)} s | {first.get('machine', 'not recorded')} "
            f"| {dates} | {first.get('source', 'script')} |")


def _seeds(rs: list[dict]) -> str:
    seeds = [str(r["seed"]) for r in rs if "seed" in r]
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}" if seeds else ""


def defaults_rows(rows: list[dict]) -> list[str]:
    out = []
    for rs in _groups(rows, ("task", "set", "command", "machine")):
        first = rs[0]
        run = " ".join(filter(None, (f"`train {first['task']}`", f"--set {first['set']}" if first.get("set") else "",
                                     f"({_seeds(rs)})", first.get("note"))))
        metrics = [k for k in first if k not in RUN_FIELDS]
        result = ", ".join(f"{k} {spread([r[k] for r in rs])}" for k in metrics)
        out.append(_row(run, rs, result, [r["wall_s"] for r in rs]))
    return out


def tabular_rows(rows: list[dict]) -> list[str]:
    out = []
    for rs in _groups([r for r in rows if r["contender"] == "ours"], ("task", "set", "command", "machine")):
        first = rs[0]
        run = " ".join(filter(None, (f"{first['task']}, in-process k-fold CV (`compare.py`'s `ours`)",
                                     f"--set {first['set']}" if first.get("set") else "", f"({_seeds(rs)})",
                                     first.get("note"))))
        metrics = list(first["scores"])
        result = ", ".join(f"{k} {spread([r['scores'][k] for r in rs])}" for k in metrics)
        out.append(_row(run, rs, result, [r["seconds"] for r in rs]))
    return out


def blend_rows(rows: list[dict]) -> list[str]:
    return [_row(f"`blend {r['task']}` of {r['runs']} runs", [r], f"{r['metric']} {r['score']:.5f} ({r['score_note']})",
                 [r["seconds"]]) for r in rows]


def generic_rows(rows: list[dict]) -> list[str]:
    """bench/generic.py: competitions inferred from their files, each contender on the same folds."""
    out = []
    for rs in _groups(rows, ("task", "contender", "set", "command", "machine")):
        first = rs[0]
        who = {"ours": "our default (`train NAME --data-dir DIR`)", "lightgbm": "LightGBM, default settings",
               "histgb": "sklearn HistGradientBoosting, default settings"}.get(first["contender"], first["contender"])
        run = " ".join(filter(None, (f"{first['task']} (inferred): {who}",
                                     f"--set {first['set']}" if first.get("set") else "", f"({_seeds(rs)})",
                                     first.get("note"))))
        out.append(_row(run, rs, f"{first['metric']} {spread([r['cv'] for r in rs])}", [r["wall_s"] for r in rs]))
    return out


def scale_rows(rows: list[dict]) -> list[str]:
    """bench/scale.py: a synthetic Playground-like table, ingest and the default 5-fold train."""
    out = []
    for r in rows:
        what = {"ingest-infer": "inference", "ingest-prepare": "the whole ingest (inference, then reading and checking: prepare)",
                "train": "default 5-fold `train`"}.get(r["stage"], r["stage"])
        run = f"{r['rows']:,} x {r['cols']} synthetic: {what}" + (f" --set {r['set']}" if r.get("set") else "")
        peak = r.get("rss_tree_mib")
        result = ", ".join(filter(None, (
            ", ".join(f"CV {k} {v:.4f}" for k, v in (r.get("cv") or {}).items()),
            f"epochs per fold {'/'.join(map(str, r['epochs_per_fold']))}" if r.get("epochs_per_fold") else "",
            f"steps per fold {r['steps_per_fold']}" if r.get("steps_per_fold") else "",
            f"peak memory {peak / 1024:.1f} GiB (all processes)" if peak else "",
            "killed at the timeout" if r.get("timed_out") else "")))
        out.append(_row(run, [r], result or "-", [r["wall_s"]]))
    return out


def otto_contender_rows(rows: list[dict]) -> list[str]:
    """bench/otto_contenders.py: Otto's folds of `train otto --seed S` beside strong competitors."""
    out = []
    for rs in _groups(rows, ("contender", "set", "variant", "folds", "command", "machine")):
        first, folds = rs[0], rs[0]["folds"].split(",")
        fold_label = f"fold {folds[0]}" if len(folds) == 1 else f"folds {', '.join(folds)}"
        who = {"lightgbm_kaggle": "LightGBM, Kaggle settings (lr 0.05, 63 leaves; early stopping on an inner 15% "
                                  "of each fold's training rows)",
               "realmlp_td": "RealMLP-TD (pytabkit's defaults for logloss: no label smoothing, best epoch by "
                             "cross-entropy on an inner 15% of each fold's training rows)",
               "ours": "our default (`train otto`), in-process"}.get(first["contender"], first["contender"])
        run = " ".join(filter(None, (f"otto, same folds: {who}", f"--set {first['set']}" if first.get("set") else "",
                                     f"({_seeds(rs)}; {fold_label})")))
        parts = [f"{first['metric']} {spread([r['cv'] for r in rs])}"]
        per_fold = [f for r in rs for f in r.get("per_fold", [])]

        def span(key: str, digits: int) -> str:
            lo, hi = min(f[key] for f in per_fold), max(f[key] for f in per_fold)
            return f"{lo:.{digits}f}" if lo == hi else f"{lo:.{digits}f}-{hi:.{digits}f}"
        if first["contender"] == "lightgbm_kaggle" and per_fold:
            parts.append(f"best rounds {'/'.join(str(f['best_iteration']) for f in per_fold)}")
        if first["contender"] == "realmlp_td" and per_fold:
            f0 = per_fold[0]
            budget = f" (budget {f0['budget_s']:.0f} s a fold)" if f0.get("budget_s") else ""
            parts.append(f"{f0['epochs']} of its default {f0['default_epochs']} epochs{budget}, {f0['steps_per_epoch']} "
                         f"steps each, {f0.get('threads', 1)} thread, {span('steps_per_s', 0)} steps/s: the "
                         f"default would take {span('default_projected_s', 0)} s a fold")
        if per_fold and all("load_1min" in f for f in per_fold):     # other jobs slow every contender
            parts.append(f"1-min load {span('load_1min', 1)} on the 2 cores as folds ended")
        out.append(_row(run, rs, ", ".join(parts), [r["wall_s"] for r in rs]))
    return out


def _entry(entry: str) -> str:
    """A leaderboard name without its run: 'mlp #2 (20261205-...)' -> 'mlp #2'."""
    return entry.split(" (2")[0]


def _preset_scores(r: dict) -> tuple[float | None, tuple[str, float], float | None]:
    """(the submitted entry's CV, (best single learner, its CV), its LightGBM run's CV) of one preset run."""
    board = r["leaderboard"]
    submitted = next((v for k, v in board if _entry(k) == r["submitted"]), None)
    single = next((k, v) for k, v in board if not k.startswith("stack ("))
    lightgbm = next((v for k, v in board if _entry(k) == "lightgbm"), None)
    return submitted, single, lightgbm


def preset_summary_rows(rows: list[dict]) -> list[str]:
    """bench/preset.py over seeds: per competition, preset and budget run with more than one seed,
    the chosen entry's CV (submitted, where there are test rows), the best single learner's and
    LightGBM's, each mean ± std over the seeds, how many ended inside their budget and the highest
    peak memory."""
    out = []
    for rs in _groups(rows, ("task", "preset", "time_limit", "machine", "note")):
        if len({r["seed"] for r in rs}) < 2:
            continue
        got = [_preset_scores(r) for r in rs]
        if any(sub is None or lgb is None for sub, _, lgb in got):
            continue
        first, metric = rs[0], rs[0].get("metric", "CV")
        parts = [f"chosen entry {spread([sub for sub, _, _ in got])}",
                 f"best single {spread([single[1] for _, single, _ in got])}",
                 f"its lightgbm {spread([lgb for _, _, lgb in got])}",
                 f"{sum(r['wall_s'] <= r['budget_s'] for r in rs)} of {len(rs)} inside their {first['budget_s']:.0f} s",
                 f"peak {max(r['rss_tree_mib'] for r in rs) / 1024:.1f} GiB at most"]
        run = (f"`train {first['task']} --preset {first['preset']} --time-limit {first['time_limit']}` "
               f"({_seeds(rs)}; CV {metric})" + (f" {first['note']}" if first.get("note") else ""))
        commands = sorted({r.get("command", "") for r in rs})
        command = {**first, "command": commands[0].rsplit(" --seed", 1)[0] + " --seed S" if commands[0] else ""}
        out.append(_row(run, [command, *rs[1:]], "; ".join(parts), [r["wall_s"] for r in rs]))
    return out


def preset_rows(rows: list[dict]) -> list[str]:
    """bench/preset.py: the entry the preset submitted, its best single learner, its LightGBM run,
    every other entry, and whether it ended inside the budget with what peak memory."""
    out = []
    for r in rows:
        board = r["leaderboard"]
        name = _entry
        submitted, single, lightgbm = _preset_scores(r)
        metric = r.get("metric", "CV")
        chosen = "submitted" if r.get("file", True) else "best (no test rows)"
        parts = [f"{chosen} {r['submitted']} {submitted:.5f}" if submitted is not None else "no entry finished",
                 f"best single {name(single[0])} {single[1]:.5f}",
                 f"its lightgbm {lightgbm:.5f}" if lightgbm is not None else "no lightgbm run",
                 # the rest of the board, without the entries named before it (a board of 11 entries
                 # would otherwise pass the 600 characters a line of BENCHMARKS.md may take)
                 "the rest " + ", ".join(f"{name(k)} {v:.4f}" for k, v in board
                                         if name(k) not in (r["submitted"], name(single[0]), "lightgbm")),
                 f"{'inside' if r['wall_s'] <= r['budget_s'] else 'PAST'} its {r['budget_s']:.0f} s",
                 f"peak {r['rss_tree_mib'] / 1024:.1f} GiB"]      # over all processes (bench/preset.py)
        # note: what sets a group of seeds apart (the summary groups on it); remark: this seed's alone
        run = f"`train {r['task']} --preset {r['preset']} --time-limit {r['time_limit']}` (seed {r['seed']}; CV {metric})" + \
            "".join(f" {r[k]}" for k in ("note", "remark") if r.get(k))
        out.append(_row(run, [r], "; ".join(parts), [r["wall_s"]]))
    return out


def contention_rows(rows: list[dict]) -> list[str]:
    out = ["| load | plan | command | CV logloss | wall | fold seconds | machine | date | source |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        folds = " / ".join(f"{s:.1f}" for s in r["fold_s"])
        out.append(f"| {r['load']} | {r['plan']} | `{r.get('command', 'not recorded')}` | {r['logloss']:.4f} "
                   f"| {r['wall_s']:.1f} s | {folds} | {r.get('machine', 'not recorded')} "
                   f"| {r.get('date', 'not recorded')} | {r.get('source', 'script')} |")
    return out


def current_state(folder: Path = RESULTS) -> str:
    """The markdown between the current-state markers."""
    lines = [f"Generated by `python bench/report.py` on {date.today()} from bench/results/*.json. Wall times "
             "compare only on one machine (`python bench/machine.py` names it). Where a command ran several "
             "seeds, the result is the mean ± sample std over them, then each seed's value.", ""]
    table = defaults_rows(load("defaults", folder)) + tabular_rows(load("tabular", folder)) + \
        blend_rows(load("blend", folder)) + generic_rows(load("generic", folder)) + scale_rows(load("scale", folder)) + \
        otto_contender_rows(load("otto_contenders", folder)) + \
        preset_summary_rows(load("preset", folder)) + preset_rows(load("preset", folder))
    if table:
        lines += HEADER + table + [""]
    contention = load("contention", folder)
    if contention:
        first = contention[0]
        lines += [f"Fold plans under a competing process: `cli.py train otto` on {first['rows']:,} random Otto "
                  f"train rows, {first['epochs']} epochs, 5 folds, while busy processes compete for the cores "
                  "(plans and loads: `bench/contention.py`'s docstring).", ""]
        lines += contention_rows(contention) + [""]
    return "\n".join(lines)


def write_current(folder: Path = RESULTS, target: Path = ROOT / "BENCHMARKS.md") -> None:
    """Replace the block between the current-state markers (put it after the title if absent)."""
    block = f"{START}\n{current_state(folder)}{END}"
    text = target.read_text() if target.is_file() else "# Benchmarks\n"
    if START in text:
        before, rest = text.split(START, 1)
        text = before + block + rest.split(END, 1)[1]
    else:
        title, _, body = text.partition("\n")
        text = f"{title}\n\n{block}\n{body}"
    target.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--benchmarks-md", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--current-only", action="store_true", help="leave the side-by-side block (and its plots) alone")
    args = ap.parse_args(argv)
    write_current(args.results, args.benchmarks_md)
    if not args.current_only:
        from bench.compare import write_report
        write_report(args.results, args.benchmarks_md)
    print(f"wrote {args.benchmarks_md}")
    return 0


if __name__ == "__main__":
    main_exit(main)
