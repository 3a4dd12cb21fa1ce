"""One fold of `train`'s k-fold pipeline, for choosing a task's defaults quickly.

    python bench/fold.py otto                                  # fold 0 with the defaults
    python bench/fold.py otto --set shrink=0.25                # a candidate, same fold and seeds
    python bench/fold.py otto --fold 2 --set width=768 epochs=25
    python bench/fold.py otto --threads 1 --set epochs=8       # on one torch thread (what a --jobs worker gets)
    python bench/fold.py otto --curve --set model=tabm stopping=fixed epochs=35   # every epoch's score too

The fold is trained exactly as `train` trains it (the same StratifiedKFold split, encoder fit on
the fold's train rows, per-fold/bag seeds, trainer, early stopping), so a candidate and the
default differ only in what --set changes; no run directory or submission is written and the
cross-fitted calibration (it needs every fold) is skipped. Prints the fold's score, the epoch
the best weights came from, and training seconds (per epoch too: comparable between configs only
on a quiet machine). One fold's score moves by a few thousandths with the seed alone, so confirm a
winner with the full `bench/defaults.py` run. `--curve` prints the validation score after every
epoch (boosting round): with stopping=fixed, how far the kept last epoch is from the best one,
the check before fixing a net's epoch count.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import check_overrides, check_tasks, main_exit  # noqa: E402
from core.config import format_overrides  # noqa: E402
from core.errors import UsageError  # noqa: E402
from pipelines import TASKS  # noqa: E402
from pipelines.cv import cross_validate  # noqa: E402
from pipelines.inputs import prepare  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"


def run_fold(task_name: str, fold: int, overrides: dict, data_dir: Path | None, seed: int = 0) -> dict:
    task = TASKS.create(task_name)
    cfg = task.config(**{**overrides, "seed": seed, "device": "cpu"})
    inp = prepare(cfg, data_dir)
    if not 0 <= fold < len(inp.folds):
        raise UsageError(f"--fold must be in 0..{len(inp.folds) - 1}, got {fold}")
    curve: list[dict] = []      # one fold, trained here (no worker): the hook sees every epoch
    start = time.perf_counter()
    result = cross_validate(inp, cfg, predict_test=False, only_folds=[fold],
                            on_epoch=lambda k, b, row: curve.append({"bag": b, **row}))
    seconds = time.perf_counter() - start
    row = result["folds"][0]
    return {"task": task_name, "fold": fold, "set": format_overrides(overrides) or "defaults",
            "metric": task.metric, "score": row[task.metric], "best_epochs": row["best_epochs"],
            "epochs_run": result["epochs_run"], "seconds": seconds, "curve": curve}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, help="default: ../shared/datasets/<task> when it exists, else bundled")
    ap.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE", help="config overrides, as train --set")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    ap.add_argument("--curve", action="store_true", help="print the validation score after every epoch (round)")
    args = ap.parse_args(argv)
    overrides = check_overrides(check_tasks([args.task]), args.set)
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise UsageError(f"--data-dir {args.data_dir} is not a folder")
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    data_dir = args.data_dir or (SHARED / args.task if (SHARED / args.task).is_dir() else None)
    r = run_fold(args.task, args.fold, overrides, data_dir, args.seed)
    print(f"| {r['task']} | fold {r['fold']} | {r['set']} | {r['metric']} {r['score']:.4f} | best epoch(s) "
          f"{', '.join(map(str, r['best_epochs']))} | {r['seconds']:.1f} s ({r['seconds'] / r['epochs_run']:.2f} s/epoch) |")
    if args.curve:      # val_score: what early stopping watches (the metric, or the loss beside it)
        for b in sorted({c["bag"] for c in r["curve"]}):
            print(f"bag {b} val_score by epoch: " + " ".join(f"{c['epoch']}:{c['val_score']:.4f}"
                                                               for c in r["curve"] if c["bag"] == b))
    return 0


if __name__ == "__main__":
    main_exit(main)
