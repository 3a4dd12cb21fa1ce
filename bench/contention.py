"""Fold plans under a competing process: the whole `train` command's wall time, and each fold's.

    python bench/contention.py                                     # every plan under every load
    python bench/contention.py --loads none normal --plans default tail1 --rows 20000 --epochs 10

A laptop or a Kaggle notebook always has something else running. This times `cli.py train otto`
(a random `--rows` subset of Kaggle's train, the first 2,000 test rows) with each fold plan while
busy-looping processes compete for the cores:

    loads   none    nothing else running
            nice    one busy process at `nice -n 19`
            normal  one busy process at normal priority
            heavy   one busy process per core, at normal priority
    plans   jobs1   `--jobs 1`: every fold here, one after another, on every core's thread
            tail2   one fold per core on one thread each; a fold left over from the last full
                    round (fold 4 of 5 on 2 cores) then trains alone on every core
            tail1   one fold per core on one thread each, every fold: the left-over fold trains
                    alone on one thread

`tail2` and `tail1` replace `fold_plan` in the child process (`train`'s own plan is one of them:
`metrics.json` records which), so every plan runs the same code otherwise. Prints one markdown
row per (load, plan) and saves them to bench/results/contention.json (a rerun of a load, plan,
row count and epoch count replaces its row) for `python bench/report.py`. Runs land in bench/out/
(ignored).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, command_line, main_exit, save  # noqa: E402
from core.errors import UsageError  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
LOADS = ("none", "nice", "normal", "heavy")
PLANS = ("jobs1", "tail2", "tail1")
BUSY = "while True: pass"


def _tail_plan(tail_threads_all: bool):
    """A `fold_plan` replacement: one fold per core on one thread; the left-over folds on every
    core (`tail_threads_all`) or on one thread each."""
    import torch

    def plan(cfg, inp, folds):
        cores = torch.get_num_threads()
        jobs = max(1, min(cfg.jobs or cores, len(folds)))
        if jobs == 1:
            return [(folds, 1, cores)]
        if not tail_threads_all:
            return [(folds, jobs, max(1, cores // jobs))]
        full = len(folds) - len(folds) % jobs
        tail = folds[full:]
        return [(folds[:full], jobs, max(1, cores // jobs))] + ([(tail, 1, cores)] if len(tail) == 1 else
                                                                 [(tail, len(tail), max(1, cores // len(tail)))] if tail else [])
    return plan


def child(plan: str, argv: list[str]) -> int:
    """`cli.py` with `plan`'s fold plan, in this process."""
    import cli
    import pipelines.cv
    if plan in ("tail1", "tail2"):
        pipelines.cv.fold_plan = _tail_plan(plan == "tail2")
    return cli.main(argv)


def subset(data: Path, rows: int, seed: int, out: Path) -> Path:
    import pandas as pd
    train = pd.read_csv(data / "train.csv.gz")
    if rows > len(train):
        raise UsageError(f"--rows {rows}: Otto's train has only {len(train)} rows")
    train.sample(rows, random_state=seed).to_csv(out / "train.csv", index=False)
    pd.read_csv(data / "test.csv.gz", nrows=2000).to_csv(out / "test.csv", index=False)
    pd.read_csv(data / "sampleSubmission.csv.gz", nrows=2000).to_csv(out / "sampleSubmission.csv", index=False)
    return out


def start_load(load: str) -> list[subprocess.Popen]:
    count = {"none": 0, "nice": 1, "normal": 1, "heavy": os.cpu_count() or 2}[load]
    prefix = ["nice", "-n", "19"] if load == "nice" else []
    return [subprocess.Popen(prefix + [sys.executable, "-c", BUSY]) for _ in range(count)]


def run(plan: str, load: str, data: Path, epochs: int, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", plan, "--", "train", "otto", "--data-dir", str(data),
           "--epochs", str(epochs), "--quiet", "--runs-dir", str(out / "runs"),
           "--out", str(out / f"contention-{plan}-{load}.csv")] + (["--jobs", "1"] if plan == "jobs1" else [])
    busy = start_load(load)
    try:
        time.sleep(1.0 if busy else 0.0)           # the load is running before the command starts
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
    finally:
        for p in busy:
            p.kill()
            p.wait()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit code {proc.returncode}):\n{proc.stderr}")
    run_dir = Path(proc.stdout.split("run: ")[1].split()[0])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"plan": plan, "load": load, "wall_s": wall, "logloss": metrics["cv"]["logloss"],
            "fold_s": [f["seconds"] for f in metrics["folds"]], "fold_plan": metrics.get("fold_plan")}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1], argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loads", nargs="+", default=list(LOADS))
    ap.add_argument("--plans", nargs="+", default=list(PLANS))
    ap.add_argument("--rows", type=int, default=20_000, help="random train rows (Otto has 61,878)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--data", type=Path, default=SHARED / "otto")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--results", type=Path, default=RESULTS, help="folder of the result files")
    args = ap.parse_args(argv)
    for name, given, known in (("load", args.loads, LOADS), ("plan", args.plans, PLANS)):
        bad = [g for g in given if g not in known]
        if bad:
            raise UsageError(f"unknown {name} {bad[0]!r}; known: {', '.join(known)}")
    if not (args.data / "train.csv.gz").is_file():
        raise UsageError(f"--data {args.data}: no train.csv.gz (Otto as ../shared/datasets/otto holds it)")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"cores {os.cpu_count()}, {args.rows:,} Otto rows, {args.epochs} epochs, 5 folds", flush=True)
    print("| load | plan | wall | fold seconds | CV logloss | plan |\n|---|---|---|---|---|---|", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = subset(args.data, args.rows, 0, Path(tmp))
        for load in args.loads:
            for plan in args.plans:
                r = run(plan, load, data, args.epochs, args.out)
                rows.append({**r, "rows": args.rows, "epochs": args.epochs})
                folds = " / ".join(f"{s:.1f}" for s in r["fold_s"])
                shape = "; ".join(f"{p['folds']}x{p['jobs']} on {p['threads']}t" for p in r["fold_plan"] or [])
                print(f"| {load} | {plan} | {r['wall_s']:.1f} s | {folds} | {r['logloss']:.4f} | {shape} |", flush=True)
    path = save("contention", rows, ("load", "plan", "rows", "epochs"), args.results,
                command_line("bench/contention.py", argv))
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    main_exit(main)
