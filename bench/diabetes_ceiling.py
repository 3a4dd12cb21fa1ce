"""How far can the course's diabetes file go? scikit-learn's usual models on the same 5 folds
(StratifiedKFold, shuffle, seed) that `train diabetes` uses, over several seeds, with the raw
features and with the file's missing values marked.

    python bench/diabetes_ceiling.py --seeds 0 1 2

In the course's file a 0.0 in glucose, blood pressure, skin thickness, insulin or BMI is the
original data's 0, i.e. not measured (the counts match the original Pima file's zeros). The
'marked' variant turns those into NaN, imputes the fold's median and adds missing-indicator
columns. Prints the mean over seeds of the 5 folds' mean accuracy and ROC AUC, per model and variant.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

ROOT = Path(__file__).resolve().parent.parent
MISSING_AS_ZERO = [1, 2, 3, 4, 5]       # glucose, blood pressure, skin, insulin, BMI

MODELS = {
    "logistic C=0.1": lambda: LogisticRegression(C=0.1, max_iter=1000),
    "logistic C=1": lambda: LogisticRegression(C=1.0, max_iter=1000),
    "svc rbf C=0.5": lambda: SVC(C=0.5),
    "hist gbm depth 3": lambda: HistGradientBoostingClassifier(max_depth=3, learning_rate=0.05, max_iter=100),
    "random forest 500": lambda: RandomForestClassifier(500, min_samples_leaf=3, random_state=0, n_jobs=1),
}


def load() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    df = pd.read_csv(ROOT / "data" / "diabetes" / "diabetes.csv.gz", header=None)
    raw, y = df.iloc[:, :8], df[8].to_numpy()
    marked = raw.copy()
    marked[MISSING_AS_ZERO] = marked[MISSING_AS_ZERO].replace(0.0, np.nan)
    return raw, marked, y


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = ap.parse_args(argv)
    raw, marked, y = load()
    print("| model | features | accuracy (mean ± sd over seeds) | ROC AUC |\n|---|---|---|---|")
    for name in args.models:
        for variant, x in (("raw", raw), ("missing marked", marked)):
            acc, auc = [], []
            for seed in args.seeds:
                pipe = make_pipeline(SimpleImputer(strategy="median", add_indicator=variant != "raw"),
                                     StandardScaler(), MODELS[name]())
                res = cross_validate(pipe, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=seed),
                                     scoring=("accuracy", "roc_auc"))
                acc.append(res["test_accuracy"].mean())
                auc.append(res["test_roc_auc"].mean())
            sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
            print(f"| {name} | {variant} | {statistics.mean(acc):.4f} ± {sd:.4f} | {statistics.mean(auc):.4f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
