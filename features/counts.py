"""Count-feature transforms (Otto's 93 product counts are heavy-tailed non-negative integers)."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class CountTransform(TransformerMixin, BaseEstimator):
    """Variance-stabilise counts: 'log1p' -> log(1 + x); 'anscombe' -> 2 sqrt(x + 3/8); 'none'.

    Stateless, but keeps the sklearn contract (fit returns self, sets n_features_in_).
    Optionally appends per-row summaries of the raw counts (total, non-zero count), which
    an MLP does not derive easily from the standardised columns.
    """

    KINDS = ("none", "log1p", "anscombe")

    def __init__(self, kind: str = "log1p", row_stats: bool = True):
        self.kind = kind
        self.row_stats = row_stats

    def fit(self, X, y=None):
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown count transform {self.kind!r}; use one of {', '.join(self.KINDS)}")
        X = np.asarray(X, dtype=np.float64)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        out = {"none": X, "log1p": np.log1p(np.maximum(X, 0)), "anscombe": 2 * np.sqrt(np.maximum(X, 0) + 3 / 8)}[self.kind]
        if self.row_stats:
            out = np.column_stack([out, np.log1p(X.sum(1)), (X > 0).sum(1)])
        return out

    def get_feature_names_out(self, input_features=None):
        names = list(input_features) if input_features is not None else [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray(names + (["row_total", "row_nonzero"] if self.row_stats else []), dtype=object)
