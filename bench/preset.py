"""The time-budgeted preset as a user runs it (`cli.py train TASK --preset P --time-limit T`, in a
subprocess), with what issue 26 asks of it: did it end inside its budget, its peak memory over every
process (folds train in workers), and its leaderboard: the entry it submitted against its best
single learner and against its LightGBM run (LightGBM's default settings on the task's encoding,
early-stopped on an inner share of each fold's training rows, as every preset learner is).

    python bench/preset.py --competitions titanic diabetes house_prices=../shared/datasets/house_prices:rmsle --time-limit 10m
    python bench/preset.py --competitions otto=../shared/datasets/otto --time-limit 30m

Every figure is the preset's own printed CV (the leaderboard's), on one seed's folds (`--seed`).
Rows go to bench/results/preset.json; `python bench/report.py` puts them in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, command_line, main_exit, save  # noqa: E402
from bench.report import preset_rows  # noqa: E402
from bench.scale import measure  # noqa: E402
from core.errors import UsageError  # noqa: E402

LINE = re.compile(r"^\s+\d+\. (.+?)\s+(-?\d+\.\d+)$")     # "  1. mlp #2 (20261205-...-mlp-s0)   0.84624"
SKIPPED = re.compile(r"^(skipped .+|.+: (?:stopped|not started) .+)$")


def parse_competition(item: str) -> tuple[str, Path | None, str | None]:
    """NAME[=DIR][:METRIC]; no DIR: a registered task's bundled data."""
    item, _, metric = item.partition(":")
    name, _, folder = item.partition("=")
    if folder and not Path(folder).is_dir():
        raise UsageError(f"--competitions {item}: no folder {folder} (../shared/datasets absent?)")
    return name, Path(folder) if folder else None, metric or None


def parse_output(stdout: str) -> dict:
    """The leaderboard [(entry, CV)], the entry submitted (or, without test rows, the best one),
    whether a file was written, and the skipped or stopped learners."""
    board = [(m.group(1), float(m.group(2))) for m in map(LINE.match, stdout.splitlines()) if m]
    best = re.search(r"^submission: .+  \((.+)\)$", stdout, re.M) or re.search(r"no submission; best: (.+?)\. ", stdout)
    return {"leaderboard": board, "submitted": best.group(1) if best else None,
            "file": stdout.find("\nsubmission: ") >= 0 or stdout.startswith("submission: "),
            "skipped": [line for line in stdout.splitlines() if SKIPPED.match(line)]}


def run(name: str, folder: Path | None, metric: str | None, preset: str, limit: str, seed: int,
        runs: Path) -> dict:
    cmd = [sys.executable, "cli.py", "train", name, "--preset", preset, "--time-limit", limit, "--seed", str(seed),
           "--runs-dir", str(runs / "runs"), "--out", str(runs / f"{name}-{preset}.csv")]
    cmd += ["--data-dir", str(folder)] if folder else []
    cmd += ["--metric", metric] if metric else []
    got = measure(cmd, timeout=None)
    if got["returncode"] != 0:
        last = (got["stderr"].strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"{name}: the preset failed with exit code {got['returncode']}: {last}")
    budget = float(re.search(r"preset \w+, \d+s of (\d+)s", got["stdout"]).group(1))
    row = {"task": name, "preset": preset, "time_limit": limit, "seed": seed, "wall_s": got["wall_s"],
           "metric": re.search(r"leaderboard \(CV (\w+)\)", got["stdout"]).group(1),
           "budget_s": budget, "rss_tree_mib": got["rss_tree_mib"], **parse_output(got["stdout"])}
    print(got["stdout"].rstrip())
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--competitions", nargs="+", required=True, help="NAME[=DIR][:METRIC]")
    ap.add_argument("--preset", default="best")
    ap.add_argument("--time-limit", default="10m")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    comps = [parse_competition(c) for c in args.competitions]
    rows = []
    with tempfile.TemporaryDirectory(prefix="preset-bench-") as tmp:
        for name, folder, metric in comps:
            rows.append(run(name, folder, metric, args.preset, args.time_limit, args.seed, Path(tmp)))
            print(preset_rows(rows[-1:])[0], flush=True)
    if not args.no_save:
        save("preset", rows, ("task", "preset", "time_limit", "seed"), RESULTS,
             command=command_line("bench/preset.py", argv))
    return 0


if __name__ == "__main__":
    main_exit(main)
