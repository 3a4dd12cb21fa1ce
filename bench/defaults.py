"""Default `train` runs: CV score (and official test accuracy for images) and whole-command wall time.

    python bench/defaults.py                       # titanic, diabetes, otto, mnist from ../shared/datasets
    python bench/defaults.py --tasks titanic diabetes --seeds 0 1 2
    python bench/defaults.py --tasks cifar10 --data cifar10=/tmp/cifar   # after ../shared/datasets/cifar10/materialize.py /tmp/cifar --layout kaggle
    python bench/defaults.py --tasks mnist --set width=16 epochs=3          # a candidate default, measured the same way

Each run is the real CLI in a subprocess (imports and data loading included), writing into
bench/out/ (git-ignored). Prints one markdown row per run and mean ± std per task, and saves the
rows to bench/results/defaults.json (a rerun of a task, seed and `--set` replaces its row), from
which `python bench/report.py` writes BENCHMARKS.md's current-state table.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (RESULTS, check_overrides, check_tasks, command_line, main_exit, parse_data,  # noqa: E402
                          run_cli, save)
from core.config import format_overrides  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
DATA = {"titanic": None, "diabetes": None, "otto": SHARED / "otto", "mnist": SHARED / "mnist"}  # None: bundled


def run(task: str, seed: int, data_dir: Path | None, out: Path, overrides: list[str] = ()) -> dict:
    cmd = [sys.executable, "cli.py", "train", task, "--seed", str(seed), "--quiet",
           "--runs-dir", str(out / "runs"), "--out", str(out / f"{task}-s{seed}.csv")]
    cmd += ["--data-dir", str(data_dir)] if data_dir else []
    cmd += [a for kv in overrides for a in ("--set", kv)]
    start = time.perf_counter()
    proc = run_cli(cmd)
    wall = time.perf_counter() - start
    run_dir = Path(proc.stdout.split("run: ")[1].split()[0])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = {f"test_{k}": v for k, v in metrics.get("test_scores", {}).items()}
    return {"task": task, "seed": seed, "wall_s": wall, **metrics["cv"], **test}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(DATA))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--data", nargs="*", action="extend", default=[], metavar="TASK=DIR", help="data folder for a task")
    ap.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE", help="config overrides, as train --set")
    ap.add_argument("--results", type=Path, default=RESULTS, help="folder of the result files")
    args = ap.parse_args(argv)
    overrides = check_overrides(check_tasks(args.tasks), args.set)
    data = {**DATA, **parse_data(args.data)}
    rows = []
    for task in args.tasks:
        data_dir = data.get(task)
        if data_dir is not None and not data_dir.is_dir():
            print(f"skip {task}: {data_dir} not found")
            continue
        for seed in args.seeds:
            rows.append(row := run(task, seed, data_dir, args.out, args.set))
            scores = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("task", "seed", "wall_s"))
            print(f"| {task} | {seed} | {scores} | {row['wall_s']:.1f} s |", flush=True)
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        keys = [k for k in mine[0] if k not in ("task", "seed")]
        summary = []
        for k in keys:
            vals = [r[k] for r in mine]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            summary.append(f"{k} {statistics.mean(vals):.4f} ± {sd:.4f}")
        print(f"{task} over {len(mine)} seed(s): " + ", ".join(summary))
    if rows:
        label = {"set": format_overrides(dict(sorted(overrides.items())))} if overrides else {}
        path = save("defaults", [{**r, **label} for r in rows], ("task", "seed", "set"), args.results,
                    command_line("bench/defaults.py", argv))
        print(f"saved {path}")
    return 0


if __name__ == "__main__":
    main_exit(main)
