"""Which numeric scaling should features/generic.py's encoder default to? 5-fold CV (seed 0) of quick
proxy learners on the encoder's output, for each `numeric` option, on three real tables.

    python bench/encoding.py                              # all datasets, options and learners (~5 min on 2 busy cores)
    python bench/encoding.py --datasets titanic --learners linear
    python bench/encoding.py --timing 1000000             # fit+transform seconds on a synthetic 1M x 30 frame

Column kinds are inferred as a CompetitionSpec would: numbers numeric, bool columns boolean, strings
categorical when they have <= 20 distinct values, else text. The encoder is fit on each fold's
training rows only. Learners: "linear" (LogisticRegression / Ridge) and "mlp" (sklearn's MLP with
early stopping; the regression target standardised). Metrics: accuracy (binary, higher is better),
RMSE of log1p(SalePrice) (house_prices, lower is better). Prints a markdown table; saves nothing.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, root_mean_squared_error
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import main_exit  # noqa: E402
from core.errors import UsageError  # noqa: E402
from features.generic import NUMERIC, generic_encoder  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets"
# name -> (target, id column, problem); the target of house_prices is modelled as log1p(SalePrice)
DATASETS = {"spaceship_titanic": ("Transported", "PassengerId", "binary"),
            "house_prices": ("SalePrice", "Id", "regression"),
            "titanic": ("Survived", "PassengerId", "binary")}
LEARNERS = ("linear", "mlp")


def infer_columns(X: pd.DataFrame) -> dict[str, str]:
    """Column kinds as the bench's stand-in for a CompetitionSpec infers them."""
    kinds = {}
    for col in X.columns:
        s = X[col]
        values = s.dropna()
        if pd.api.types.is_bool_dtype(s) or (len(values) and values.map(type).eq(bool).all()):
            kinds[col] = "boolean"
        elif pd.api.types.is_numeric_dtype(s):
            kinds[col] = "numeric"
        else:
            kinds[col] = "categorical" if values.nunique() <= 20 else "text"
    return kinds


def load(name: str, folder: Path = DATA) -> tuple[pd.DataFrame, pd.Series]:
    target, id_col, problem = DATASETS[name]
    files = sorted((folder / name).glob("train.csv*"))
    if not files:
        raise UsageError(f"{folder / name}/train.csv[.gz] absent")
    df = pd.read_csv(files[0])
    y = df.pop(target)
    return df.drop(columns=[id_col]), (np.log1p(y) if problem == "regression" else y)


def learner(kind: str, problem: str, seed: int):
    if problem == "regression":
        if kind == "linear":
            return Ridge(alpha=1.0)
        return TransformedTargetRegressor(MLPRegressor(hidden_layer_sizes=(128, 64), early_stopping=True, max_iter=300, random_state=seed),
                                          transformer=StandardScaler())
    if kind == "linear":
        return LogisticRegression(max_iter=2000)
    return MLPClassifier(hidden_layer_sizes=(128, 64), early_stopping=True, max_iter=300, random_state=seed)


def cv_scores(name: str, numeric: str, learners: list[str], folds: int, seed: int = 0) -> tuple[dict, float]:
    """Per learner the folds' scores, and the seconds spent encoding (fit on train + transform valid)."""
    X, y = load(name)
    problem = DATASETS[name][2]
    columns = infer_columns(X)
    split = (KFold(folds, shuffle=True, random_state=seed) if problem == "regression"
             else StratifiedKFold(folds, shuffle=True, random_state=seed))
    scores, encode_s = {k: [] for k in learners}, 0.0
    for train, valid in split.split(X, y):
        start = time.perf_counter()
        enc = generic_encoder(columns, problem, seed=seed, numeric=numeric)
        x_train = enc.fit_transform(X.iloc[train], y.iloc[train])
        x_valid = enc.transform(X.iloc[valid])
        encode_s += time.perf_counter() - start
        for kind in learners:
            pred = learner(kind, problem, seed).fit(x_train, y.iloc[train]).predict(x_valid)
            score = (root_mean_squared_error if problem == "regression" else accuracy_score)(y.iloc[valid], pred)
            scores[kind].append(score)
    return scores, encode_s


def synthetic(rows: int, seed: int = 0) -> tuple[pd.DataFrame, dict[str, str], np.ndarray]:
    """A 30-column mixed frame: 18 numeric (half skewed money-like), 6 categorical (10 levels),
    2 high-cardinality (10k levels), 3 boolean, 1 text "D/123/P"; 5% missing everywhere."""
    rng = np.random.default_rng(seed)
    cols = {}
    for i in range(18):
        v = rng.normal(size=rows) if i % 2 else np.where(rng.random(rows) < 0.6, 0.0, rng.lognormal(5, 2, rows))
        cols[f"n{i}"] = ("numeric", v)
    for i in range(6):
        cols[f"c{i}"] = ("categorical", rng.choice(list("abcdefghij"), rows).astype(object))
    for i in range(2):
        cols[f"h{i}"] = ("categorical", rng.integers(0, 10_000, rows).astype(str).astype(object))
    for i in range(3):
        cols[f"b{i}"] = ("boolean", rng.random(rows) < 0.3)
    cols["cabin"] = ("text", pd.Series(rng.choice(list("ABCDEFG"), rows)) + "/" + rng.integers(0, 2000, rows).astype(str)
                     + "/" + rng.choice(["P", "S"], rows))
    frame = pd.DataFrame({k: v for k, (_, v) in cols.items()})
    for col in frame.columns:
        frame[col] = frame[col].astype(object if frame[col].dtype == bool else frame[col].dtype)
        frame.loc[rng.random(rows) < 0.05, col] = np.nan
    y = (frame["n1"].fillna(0).to_numpy() + rng.normal(size=rows) > 0).astype(int)
    return frame, {k: kind for k, (kind, _) in cols.items()}, y


def timing(rows: int, options: list[str]) -> int:
    X, columns, y = synthetic(rows)
    for numeric in options:
        start = time.perf_counter()
        enc = generic_encoder(columns, "binary", numeric=numeric)
        out = enc.fit_transform(X, y)
        fit_s = time.perf_counter() - start
        enc.transform(X)
        print(f"{numeric}: {rows:,} x {X.shape[1]} -> {out.shape[1]} features; fit_transform {fit_s:.1f} s, "
              f"transform {time.perf_counter() - start - fit_s:.1f} s", flush=True)
    return 0


class Parser(argparse.ArgumentParser):
    def error(self, message):             # one line and exit code 2 (through main_exit), not argparse's usage block
        raise UsageError(message)


def main(argv=None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    ap.add_argument("--numeric", nargs="+", choices=list(NUMERIC), default=list(NUMERIC))
    ap.add_argument("--learners", nargs="+", choices=list(LEARNERS), default=list(LEARNERS))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--timing", type=int, metavar="ROWS", help="only time the encoder on a synthetic ROWS x 30 frame")
    args = ap.parse_args(argv)
    if args.timing:
        return timing(args.timing, args.numeric)
    if args.folds < 2:
        raise UsageError(f"--folds wants 2 or more, got {args.folds}")
    print("| dataset | metric | numeric | learner | CV mean ± sd | encode s |\n|---|---|---|---|---|---|")
    for name in args.datasets:
        metric = "RMSE log1p" if DATASETS[name][2] == "regression" else "accuracy"
        for numeric in args.numeric:
            scores, encode_s = cv_scores(name, numeric, args.learners, args.folds)
            for kind, s in scores.items():
                print(f"| {name} | {metric} | {numeric} | {kind} | {statistics.mean(s):.4f} ± {statistics.stdev(s):.4f} "
                      f"| {encode_s:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    main_exit(main)
