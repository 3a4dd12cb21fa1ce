"""Otto beside what a strong competitor would run instead (issue 26), on the same folds and machine:

    lightgbm_kaggle  LGBMClassifier on the 93 raw count features, a Kaggler's configuration:
                     objective multiclass, learning_rate 0.05, num_leaves 63, n_estimators up to
                     3000 with early stopping after 100 rounds without a better multi_logloss,
                     colsample_bytree 0.5, subsample 0.8 with subsample_freq 1 (row bagging every
                     round), min_child_samples 20, min_child_weight 1e-3 and no L1/L2
                     (LightGBM's defaults), n_jobs 2, random_state seed * 101 + fold
    realmlp_td       pytabkit's RealMLP_TD_Classifier with its authors' tuned defaults (RealMLP-TD,
                     not the cut-down TD-S) and the settings pytabkit's README and docstring give
                     for log-loss: val_metric_name='cross_entropy', use_ls=False (no label
                     smoothing); device cpu, n_threads 1, n_cv 1, n_refit 0, random_state
                     seed * 101 + fold. On the raw 93 counts: its own preprocessing (median
                     centring, robust scaling, smooth clipping, PBLD embeddings) does the rest
    ours             our `train otto` default in-process (pipelines.cv.cross_validate, as
                     bench/compare.py's `ours`; cross-fitted calibration only when every fold runs;
                     with --folds-only of one fold, the tool's fold plan gives it both threads)

Every contender trains on the folds `train otto --seed S` uses (pipelines.inputs.prepare, which
makes them with pipelines.folds.make_folds) and is scored by the tool's own logloss on each
fold's validation rows, as Kaggle scores it (pipelines.metrics: clipped to [1e-15, 1 - 1e-15]).
The validation rows choose nothing: LightGBM's early stopping and RealMLP's best-epoch selection
(it trains every epoch and keeps the one with the best validation cross-entropy) both watch a
stratified 15% of the fold's training rows, the very split `train --set stopping=inner` holds out
(pipelines.cv.stopping_rows), and fit on the other 85%. `ours` keeps its own --set (by default
it early-stops on the validation rows, as the figures recorded in BENCHMARKS.md did).

RealMLP-TD's default is 256 epochs, far beyond a CPU budget here, so it gets ours instead:
`--realmlp-budget SECONDS` (default 120, the ~2 minutes per fold that `train otto --set bags=4
precision=bf16` takes) first times two probe fits of 1 and 3 epochs on the first fold's rows (the
difference is the seconds an epoch takes, the rest the fixed cost of a fit: preprocessing,
set-up, prediction), then sets n_epochs to the most that fit the budget; later folds keep that
n_epochs. pytabkit's coslog4 learning-rate and flat_cos dropout and weight-decay schedules are
functions of the share of training done, so they adapt to n_epochs. The row records the default
and the epochs used, steps per epoch (floor(rows / 256): pytabkit drops the last partial batch),
the steps per second of the probes and of the run, and the seconds the full 256-epoch default
would have taken at the run's rate; a fold's seconds leave the probes out. `--realmlp-epochs N`
sets n_epochs outright (no probes). RealMLP runs on one torch thread (`--realmlp-threads`), as our
tool gives each fold of a table one thread: on a loaded 2-core machine a 2-thread step waits on
its slower thread (1 epoch of 80 steps on 20,480 Otto rows: 2.9 s on one thread, 13.4 s on two,
while another job's two processes held the cores). Each fold's row also keeps the 1-minute load
average when it ended: other jobs on the machine slow every contender.

    python bench/otto_contenders.py --seeds 0 --contenders lightgbm_kaggle
    python bench/otto_contenders.py --seeds 0 --folds-only 0 --contenders realmlp_td --realmlp-budget 120
    python bench/otto_contenders.py --seeds 0 --contenders ours --set precision=bf16

One line is printed per contender, seed and fold (score, seconds), then one per contender and
seed over the folds run; the rows (per contender and seed) go to bench/results/otto_contenders.json
with the command line, unless --no-save. `pip install pytabkit` for realmlp_td.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, command_line, main_exit, save  # noqa: E402
from core.config import format_overrides, parse_overrides  # noqa: E402
from core.errors import UsageError  # noqa: E402

SHARED_OTTO = ROOT.parent / "shared" / "datasets" / "otto"
CONTENDERS = ("lightgbm_kaggle", "realmlp_td", "ours")

LGBM_PARAMS = dict(objective="multiclass", learning_rate=0.05, num_leaves=63, n_estimators=3000,
                   colsample_bytree=0.5, subsample=0.8, subsample_freq=1, min_child_samples=20,
                   reg_alpha=0.0, reg_lambda=0.0, n_jobs=2, verbose=-1)
LGBM_STOP_ROUNDS = 100
# pytabkit README / RealMLP_TD_Classifier docstring: "if you care about metrics like cross-entropy
# or AUC instead of accuracy, we recommend setting val_metric_name='cross_entropy' and use_ls=False"
REALMLP_PARAMS = dict(val_metric_name="cross_entropy", use_ls=False, device="cpu", n_cv=1, n_refit=0,
                      verbosity=0)
REALMLP_BATCH = 256        # RealMLP-TD's default batch size (pytabkit's nn_creator: drop_last=True)


def realmlp_default_epochs() -> int:
    from pytabkit.models.sklearn.default_params import DefaultParams
    return int(DefaultParams.RealMLP_TD_CLASS["n_epochs"])


def fit_lightgbm(x_fit, y_fit, x_stop, y_stop, x_va, seed: int) -> tuple[np.ndarray, dict]:
    import lightgbm as lgb
    clf = lgb.LGBMClassifier(**LGBM_PARAMS, random_state=seed)
    clf.fit(x_fit, y_fit, eval_X=(x_stop,), eval_y=(y_stop,), eval_metric="multi_logloss",
            callbacks=[lgb.early_stopping(LGBM_STOP_ROUNDS, verbose=False)])
    return clf.predict_proba(x_va), {"best_iteration": int(clf.best_iteration_ or LGBM_PARAMS["n_estimators"])}


def fit_realmlp(x_fit, y_fit, x_stop, y_stop, x_va, seed: int, n_epochs: int, threads: int) -> np.ndarray:
    from pytabkit import RealMLP_TD_Classifier
    clf = RealMLP_TD_Classifier(**REALMLP_PARAMS, random_state=seed, n_epochs=n_epochs, n_threads=threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # lightning's and torch.jit's deprecation chatter
        clf.fit(x_fit, y_fit, x_stop, y_stop)
        return clf.predict_proba(x_va)


def realmlp_fold(x_fit, y_fit, x_stop, y_stop, x_va, seed: int, budget: float, epochs: int | None,
                 threads: int) -> tuple[np.ndarray, dict]:
    """RealMLP-TD on one fold under a wall-clock budget. Without `epochs`, two probe fits of 1 and
    3 epochs on the same rows give the seconds an epoch takes (their difference over 2) and the
    fixed cost of a fit (preprocessing, set-up, prediction); n_epochs is then the most that fit
    the budget after the fixed cost."""
    steps_per_epoch = max(1, len(y_fit) // REALMLP_BATCH)    # batches of min(256, rows)
    info = {"default_epochs": realmlp_default_epochs(), "steps_per_epoch": steps_per_epoch, "threads": threads}
    if epochs is None:
        took = {}
        for n in (1, 3):
            start = time.perf_counter()
            fit_realmlp(x_fit, y_fit, x_stop, y_stop, x_va[:1], seed, n, threads)
            took[n] = time.perf_counter() - start
        per_epoch = max((took[3] - took[1]) / 2, 1e-3)
        fixed = max(took[1] - per_epoch, 0.0)
        epochs = max(1, math.floor((budget - fixed) / per_epoch))
        info |= {"budget_s": budget, "probe_s": [round(took[1], 2), round(took[3], 2)],
                 "probe_steps_per_s": round(steps_per_epoch / per_epoch, 2), "probe_fixed_s": round(fixed, 2)}
        print(f"    realmlp_td probe: 1 and 3 epochs of {steps_per_epoch} steps in {took[1]:.1f}s and "
              f"{took[3]:.1f}s ({info['probe_steps_per_s']:.1f} steps/s, {fixed:.1f}s fixed) -> "
              f"n_epochs {epochs} for {budget:.0f}s", flush=True)
    start = time.perf_counter()
    proba = fit_realmlp(x_fit, y_fit, x_stop, y_stop, x_va, seed, epochs, threads)
    seconds = time.perf_counter() - start
    rate = epochs * steps_per_epoch / seconds
    info |= {"epochs": epochs, "steps_per_s": round(rate, 2),
             "default_projected_s": round(info["default_epochs"] * steps_per_epoch / rate, 1)}
    return proba, info


def run(folder: Path, seed: int, contenders: list[str], folds_only: list[int] | None, budget: float,
        realmlp_epochs: int | None, threads: int, overrides: dict) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:      # prepare's parsed-data cache: none left in runs/
        return _run(folder, seed, contenders, folds_only, budget, realmlp_epochs, threads, overrides, Path(tmp))


def _run(folder: Path, seed: int, contenders: list[str], folds_only: list[int] | None, budget: float,
         realmlp_epochs: int | None, threads: int, overrides: dict, cache: Path) -> list[dict]:
    """Each contender on the chosen folds of `train otto --seed seed`; one row per contender.
    RealMLP's n_epochs, probed on the first fold run, stays the same on the later ones."""
    from pipelines import TASKS
    from pipelines.cv import cross_validate, stopping_rows
    from pipelines.inputs import prepare
    from pipelines.proba import cv_scores
    from tasks.otto import FEATURES
    task = TASKS.create("otto")
    cfg = task.config(**{**overrides, "seed": seed})
    inp = prepare(cfg, folder, runs_root=cache)
    todo = list(range(len(inp.folds))) if folds_only is None else folds_only
    bad = [k for k in todo if not 0 <= k < len(inp.folds)]
    if bad:
        raise UsageError(f"--folds-only {bad[0]}: otto has folds 0..{len(inp.folds) - 1}")
    x = inp.train[list(FEATURES)].to_numpy(np.float32)
    variant = f"n_epochs={realmlp_epochs}" if realmlp_epochs is not None else None     # else the budget's
    inner = task.config(seed=seed, stopping="inner")     # the rows `--set stopping=inner` holds out
    rows = []
    for contender in contenders:
        label = format_overrides(overrides) if contender == "ours" else ""
        scored = np.concatenate([inp.folds[k][1] for k in todo])
        if contender == "ours":
            start = time.perf_counter()
            result = cross_validate(inp, cfg, predict_test=False, only_folds=None if folds_only is None else todo)
            seconds = time.perf_counter() - start
            scores, per_fold = result["cv"], [{"fold": r["fold"], "logloss": r[task.metric], "seconds": round(r["seconds"], 2)}
                                              for r in result["folds"]]
            for r in per_fold:
                print(f"otto {contender:15s} {label} seed {seed} fold {r['fold']}  logloss {r['logloss']:.5f}  "
                      f"({r['seconds']:.1f}s)", flush=True)
        else:
            oof = np.zeros((len(inp.y), len(task.classes)))
            per_fold, seconds = [], 0.0
            for k in todo:
                fit, stop = stopping_rows(inp, inner, k)
                va = inp.folds[k][1]
                fold_seed = seed * 101 + k
                start = time.perf_counter()
                if contender == "lightgbm_kaggle":
                    proba, info = fit_lightgbm(x[fit], inp.y[fit], x[stop], inp.y[stop], x[va], fold_seed)
                else:
                    proba, info = realmlp_fold(x[fit], inp.y[fit], x[stop], inp.y[stop], x[va], fold_seed,
                                               budget, realmlp_epochs, threads)
                    realmlp_epochs = info["epochs"]
                fold_s = time.perf_counter() - start - sum(info.get("probe_s", []))    # the probes are not the fit
                seconds += fold_s
                oof[va] = proba
                fold_score = cv_scores(task, inp.y[va], proba)[task.metric]
                per_fold.append({"fold": k, "logloss": fold_score, "seconds": round(fold_s, 2),
                                 "n_fit": len(fit), "n_stop": len(stop), "n_val": len(va), **info,
                                 "load_1min": round(os.getloadavg()[0], 2)})
                extra = "  ".join(f"{key} {val}" for key, val in info.items() if val is not None)
                print(f"otto {contender:15s} seed {seed} fold {k}  logloss {fold_score:.5f}  ({fold_s:.1f}s)  {extra}",
                      flush=True)
            scores = cv_scores(task, inp.y[scored], oof[scored])
        print(f"otto {contender:15s} {label} seed {seed} folds {','.join(map(str, todo))}  "
              f"logloss {scores[task.metric]:.5f}  ({seconds:.1f}s)", flush=True)
        rows.append({"task": "otto", "contender": contender, "seed": seed, "set": label,
                     **({"variant": variant} if contender == "realmlp_td" and variant else {}),
                     "folds": ",".join(map(str, todo)), "metric": task.metric, "cv": scores[task.metric],
                     "scores": scores, "wall_s": round(seconds, 2), "per_fold": per_fold})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED_OTTO)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--folds-only", nargs="+", type=int, default=None, metavar="K",
                        help="run only these folds (0-based); the score is over their validation rows")
    parser.add_argument("--contenders", nargs="+", default=["lightgbm_kaggle", "realmlp_td"])
    parser.add_argument("--realmlp-budget", type=float, default=120.0,
                        help="seconds per fold RealMLP-TD's whole fit may take (sets its n_epochs)")
    parser.add_argument("--realmlp-epochs", type=int, default=None, help="n_epochs outright (no probe, no budget)")
    parser.add_argument("--realmlp-threads", type=int, default=1,
                        help="torch threads for RealMLP (default 1, as our tool gives each table fold)")
    parser.add_argument("--set", dest="set_", nargs="*", default=[], help="config overrides KEY=VALUE for ours")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where otto_contenders.json goes")
    parser.add_argument("--no-save", action="store_true", help="print only; leave bench/results alone")
    args = parser.parse_args(argv)
    unknown = [c for c in args.contenders if c not in CONTENDERS]
    if unknown:
        raise UsageError(f"unknown contender(s) {', '.join(unknown)}; known: {', '.join(CONTENDERS)}")
    if not any((args.data_dir / name).is_file() for name in ("train.csv", "train.csv.gz")):
        raise UsageError(f"--data-dir {args.data_dir}: no train.csv(.gz) (../shared/datasets/otto absent?)")
    if "realmlp_td" in args.contenders:
        try:
            import pytabkit  # noqa: F401
        except ImportError:
            raise UsageError("realmlp_td needs pytabkit: pip install pytabkit") from None
    overrides = parse_overrides(args.set_)
    from pipelines import TASKS
    TASKS.create("otto").config(**overrides)        # a bad --set fails before the first fit
    rows = [row for seed in args.seeds
            for row in run(args.data_dir, seed, args.contenders, args.folds_only, args.realmlp_budget,
                           args.realmlp_epochs, args.realmlp_threads, overrides)]
    if not args.no_save:
        save("otto_contenders", rows, ("task", "contender", "set", "variant", "seed", "folds"), args.results,
             command=command_line("bench/otto_contenders.py", argv))
    return 0


if __name__ == "__main__":
    main_exit(main)
