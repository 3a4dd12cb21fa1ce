"""Tuning benchmark: does a time-boxed Optuna study beat the task's default config?

    python bench/tune.py titanic --trials 30
    python bench/tune.py otto --timeout 1800 --trials 100
    python bench/tune.py otto --trials 2 --folds 3 --jobs 2 --set epochs=8   # trials side by side

Runs `cli.py tune` in a fresh study under bench/out/ and reads the study back: trial 0 is
always the task's default config (tune enqueues it), so default and tuned CV come from the
same folds. Prints default vs best, trials complete / pruned / failed, and the wall time.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import check_overrides, check_tasks, main_exit, run_cli  # noqa: E402
from core.errors import UsageError  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
DATA = {"otto": SHARED / "otto"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=1, help="trials side by side (tune --jobs)")
    ap.add_argument("--set", action="append", default=[], help="config key held fixed, KEY=VALUE")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "tune")
    ap.add_argument("--report", metavar="STUDY", help="only report on an existing study under --out")
    args = ap.parse_args(argv)
    check_overrides(check_tasks([args.task]), args.set)
    if args.report:
        return report(args.task, args.out, args.report, wall=None)
    name = f"bench-{args.task}-{int(time.time())}"
    cmd = [sys.executable, "cli.py", "tune", args.task, "--trials", str(args.trials), "--study", name,
           "--seed", str(args.seed), "--jobs", str(args.jobs), "--runs-dir", str(args.out), "--quiet"]
    cmd += ["--timeout", str(args.timeout)] if args.timeout else []
    cmd += ["--folds", str(args.folds)] if args.folds else []
    cmd += [a for kv in args.set for a in ("--set", kv)]
    cmd += ["--data-dir", str(DATA[args.task])] if args.task in DATA else []
    start = time.perf_counter()
    proc = run_cli(cmd)
    wall = time.perf_counter() - start
    print(proc.stdout)
    return report(args.task, args.out, name, wall)


def report(task: str, runs_root: Path, name: str, wall: float | None) -> int:
    db = runs_root / task / "studies" / name / "study.db"
    if not db.is_file():
        raise UsageError(f"no study {name!r} for {task} under {runs_root} ({db} not found)")
    storage = f"sqlite:///{db}"
    study = optuna.load_study(study_name=name, storage=storage)
    default = study.trials[0]
    states = [t.state.name for t in study.trials]
    spent = sum(t.duration.total_seconds() for t in study.trials if t.duration)
    print(f"task {task}: default CV {default.value:.5f} ({default.duration.total_seconds():.0f}s)  "
          f"tuned best {study.best_value:.5f} (trial {study.best_trial.number})  "
          f"trials {len(states)}: complete {states.count('COMPLETE')}, pruned {states.count('PRUNED')}, "
          f"failed {states.count('FAIL')}  trial time {spent:.0f}s" + (f"  wall {wall:.0f}s" if wall else ""))
    print(f"best params: {study.best_params}")
    return 0


if __name__ == "__main__":
    main_exit(main)
