"""Competitions the tool has no task file for, inferred from their files (issue 25), side by side
with what a competitor would run instead, on the same folds:

    ours      `cli.py train NAME --data-dir DIR` as a user runs it: the inferred spec, the generic
              encoder, the default MLP (pipelines.train.train in-process; wall time of the whole run)
    lightgbm  LGBMClassifier / LGBMRegressor with default settings on the raw columns (numbers as
              numbers, strings as pandas categories: LightGBM's native categorical splits)
    histgb    scikit-learn's HistGradientBoosting with default settings (native categoricals,
              categorical_features="from_dtype"; its own early stopping on 10% of the training
              part above 10,000 rows)

For rmsle the trees fit log1p(target) and predict expm1, as competitors do. Every contender
scores the same metric on the same folds (make_folds with the run's seed).

    python bench/generic.py --competitions spaceship_titanic house_prices:rmsle --seeds 0 1 2
    python bench/generic.py --competitions otto_inferred=../shared/datasets/otto --contenders ours
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, command_line, main_exit, save  # noqa: E402
from core.config import format_overrides, parse_overrides  # noqa: E402
from core.errors import UsageError  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
CONTENDERS = ("ours", "lightgbm", "histgb")


def parse_competition(item: str) -> tuple[str, Path, str | None]:
    """NAME[=DIR][:METRIC]: DIR defaults to ../shared/datasets/NAME."""
    item, _, metric = item.partition(":")
    name, _, folder = item.partition("=")
    path = Path(folder) if folder else SHARED / name
    if not path.is_dir():
        raise UsageError(f"--competitions {item}: no folder {path} (../shared/datasets absent?)")
    return name, path, metric or None


def raw_frame(task, train: pd.DataFrame) -> pd.DataFrame:
    """The feature columns as a tree library takes them: numbers and booleans as floats, the rest
    as pandas categories (unseen test categories become NaN, which both libraries route)."""
    out = {}
    for col, kind in task.spec.columns.items():
        if kind in ("numeric", "boolean"):
            values = train[col]
            if kind == "boolean":     # read as text ('True') or as bools, with missing values
                values = values.map(lambda v: str(v).lower(), na_action="ignore").map(
                    {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0})
            out[col] = pd.to_numeric(values, errors="coerce").astype(float)
        else:
            out[col] = train[col].map(str, na_action="ignore").astype("category")
    return pd.DataFrame(out, index=train.index)


def as_histgb(x: pd.DataFrame) -> pd.DataFrame:
    """HistGradientBoosting takes categories of at most 255 levels: wider ones (names, free text)
    go in as their category codes, a number, as a competitor would pass them."""
    wide = [c for c in x if isinstance(x[c].dtype, pd.CategoricalDtype) and len(x[c].cat.categories) > 250]
    return x.assign(**{c: x[c].cat.codes.replace(-1, np.nan).astype(float) for c in wide})


def tree_contender(name: str, task, inp, seed: int) -> tuple[np.ndarray, float]:
    """OOF predictions (probabilities or values) of a default GBDT, and its seconds."""
    x = raw_frame(task, inp.train) if name == "lightgbm" else as_histgb(raw_frame(task, inp.train))
    regression = task.problem == "regression"
    log_target = regression and task.metric == "rmsle"
    y = np.log1p(inp.y) if log_target else inp.y
    oof = np.zeros(len(y) if task.problem != "multiclass" else (len(y), len(task.classes)))
    start = time.perf_counter()
    for tr, va in inp.folds:
        if name == "lightgbm":
            import lightgbm as lgb
            cls = lgb.LGBMRegressor if regression else lgb.LGBMClassifier
            model = cls(random_state=seed, verbose=-1, n_jobs=2)
        else:
            from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
            cls = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
            model = cls(random_state=seed, categorical_features="from_dtype")
        model.fit(x.iloc[tr], y[tr])
        if regression:
            pred = model.predict(x.iloc[va])
            oof[va] = np.expm1(pred) if log_target else pred
        else:
            proba = model.predict_proba(x.iloc[va])
            oof[va] = proba[:, 1] if task.problem == "binary" else proba
    return oof, time.perf_counter() - start


def run(name: str, folder: Path, metric: str | None, seed: int, contenders: list[str],
        overrides: dict | None = None) -> list[dict]:
    from pipelines import resolve_task
    from pipelines.inputs import prepare
    from pipelines.proba import cv_scores
    from pipelines.train import train
    task = resolve_task(name, data_dir=folder, infer_options={"metric": metric} if metric else {})
    cfg = task.config(**{**(overrides or {}), "seed": seed})
    rows = []
    for contender in contenders:
        if contender == "ours":
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                result = train(cfg, data_dir=folder, runs_root=Path(tmp), out=Path(tmp) / "submission.csv")
                seconds = time.perf_counter() - start
            scores = result.scores
        else:
            inp = prepare(cfg, folder)
            oof, seconds = tree_contender(contender, task, inp, seed)
            scores = cv_scores(task, inp.y, oof)
        label = format_overrides(overrides or {}) if contender == "ours" else ""
        rows.append({"task": name, "contender": contender, "seed": seed, "set": label, "metric": task.metric,
                     "cv": scores[task.metric], "scores": scores, "wall_s": round(seconds, 2),
                     "rows": task.spec.rows})
        print(f"{name:18s} {contender:9s} {label} seed {seed}  {task.metric} {scores[task.metric]:.5f}  ({seconds:.1f}s)",
              flush=True)
    return rows


def summary(rows: list[dict]) -> list[str]:
    lines = ["| competition | contender | metric | CV (mean over seeds) | seeds | seconds (mean) |", "|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["task"], r["contender"], r.get("set", "")) for r in rows))
    for task, contender, label in keys:
        rs = [r for r in rows if (r["task"], r["contender"], r.get("set", "")) == (task, contender, label)]
        contender = f"{contender} {label}".strip()
        cvs = [r["cv"] for r in rs]
        lines.append(f"| {task} | {contender} | {rs[0]['metric']} | {statistics.mean(cvs):.5f} "
                     f"({' / '.join(f'{v:.5f}' for v in cvs)}) | {len(rs)} | {statistics.mean(r['wall_s'] for r in rs):.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--competitions", nargs="+", default=["spaceship_titanic", "house_prices:rmsle"],
                        help="NAME[=DIR][:METRIC]; DIR defaults to ../shared/datasets/NAME")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS))
    parser.add_argument("--set", dest="set_", nargs="*", default=[], help="config overrides KEY=VALUE for ours")
    parser.add_argument("--no-save", action="store_true", help="print only; leave bench/results/generic.json alone")
    args = parser.parse_args(argv)
    unknown = [c for c in args.contenders if c not in CONTENDERS]
    if unknown:
        raise UsageError(f"unknown contender(s) {', '.join(unknown)}; known: {', '.join(CONTENDERS)}")
    overrides = parse_overrides(args.set_)
    competitions = [parse_competition(c) for c in args.competitions]     # every folder checked before a run
    rows = [row for name, folder, metric in competitions for seed in args.seeds
            for row in run(name, folder, metric, seed, args.contenders, overrides)]
    print("\n".join(summary(rows)))
    if not args.no_save:
        save("generic", rows, ("task", "contender", "set", "seed"), RESULTS, command=command_line("bench/generic.py", argv))
    return 0


if __name__ == "__main__":
    main_exit(main)
