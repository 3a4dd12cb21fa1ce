"""The regression target as a net learns it: a transform fit on each fold's training rows only,
chosen by the task's metric, and its inverse, which brings every score, early-stopping decision
and prediction back to the target's own units.

    rmsle       log1p, then standardise: the net's squared error is then the metric's own
                (in standard units), and a prediction's inverse, expm1, is clipped at 0
    otherwise   standardise: a target in the 100,000s trains at the learning rates the
                tables' defaults were tuned for
"""
from __future__ import annotations

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler


def expm1_at_least_0(z: np.ndarray) -> np.ndarray:
    """log1p's inverse for predictions: a value below 0 would be no valid count or price."""
    return np.maximum(np.expm1(z), 0.0)


def target_pipeline(metric: str):
    """The unfitted scikit-learn transform for `metric` (2-D in and out, as scikit-learn's)."""
    log = [FunctionTransformer(np.log1p, expm1_at_least_0, check_inverse=False)] if metric == "rmsle" else []
    return make_pipeline(*log, StandardScaler())


class TargetScaler:
    """`target_pipeline` on 1-D arrays: fit(y) on the fold's training targets, transform(y) -> what
    the net fits (float32), inverse(z) -> the target's units (float64). Pickles with joblib."""

    def __init__(self, metric: str):
        self.metric = metric

    def fit(self, y: np.ndarray) -> "TargetScaler":
        self.pipeline_ = target_pipeline(self.metric).fit(np.asarray(y, np.float64).reshape(-1, 1))
        return self

    def transform(self, y: np.ndarray) -> np.ndarray:
        return self.pipeline_.transform(np.asarray(y, np.float64).reshape(-1, 1))[:, 0].astype(np.float32)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return self.pipeline_.inverse_transform(np.asarray(z, np.float64).reshape(-1, 1))[:, 0]
