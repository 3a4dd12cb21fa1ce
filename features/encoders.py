"""Generic column encoders built from scikit-learn parts (nothing here re-implements them).

`tabular_encoder` imputes and scales numeric columns and one-hot or ordinal encodes
categorical ones. Categories unseen at fit time go to an explicit bucket: one-hot maps
them to the 'infrequent' column (categories rarer than `min_frequency` share it too),
ordinal maps them to -1. Output is a float32 array whose columns are
`get_feature_names_out()`, saved with each fold so predictions use the same order.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler,
                                   TargetEncoder)


def _to_str(x):
    # one dtype for every category so mixed int/str columns and NaN encode consistently
    return x.astype(object).where(x.notna(), "__missing__").astype(str)


def numeric_encoder(scale: bool = True):
    steps = [SimpleImputer(strategy="median", keep_empty_features=True)]
    return make_pipeline(*steps, StandardScaler()) if scale else make_pipeline(*steps)


def categorical_encoder(kind: str = "onehot", min_frequency: int = 2):
    if kind == "onehot":
        enc = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=min_frequency,
                            sparse_output=False, dtype=np.float32)
    elif kind == "ordinal":
        enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                             min_frequency=min_frequency, dtype=np.float32)
    else:
        raise ValueError(f"unknown categorical encoding {kind!r}; use onehot or ordinal")
    return make_pipeline(FunctionTransformer(_to_str, feature_names_out="one-to-one"), enc)


class InnerFolds(StratifiedKFold):
    """The target encoder's cross-fitting splits, inside one training fold: `n_splits`, or as many
    as the rarest class has rows when a small file gives it fewer (sklearn would stop with
    'n_splits=5 cannot be greater than the number of members in each class', naming a 5 the
    user never chose)."""

    def split(self, X, y, groups=None):
        rarest = int(np.unique(np.asarray(y), return_counts=True)[1].min())
        if rarest < 2:
            raise ValueError(f"a class has {rarest} row in a training fold; target encoding cross-fits "
                             "within the fold and needs 2 or more of each class: more --folds (bigger training folds) or more rows")
        inner = StratifiedKFold(min(self.n_splits, rarest), shuffle=self.shuffle, random_state=self.random_state)
        return inner.split(X, y, groups)


def target_encoder(seed: int, folds: int = 5):
    """sklearn's TargetEncoder: `fit_transform` cross-fits (each training row is encoded by
    the other folds, so its own label never leaks into its feature); `transform` uses all
    fit rows. The splitter is seeded so runs stay reproducible."""
    cv = InnerFolds(folds, shuffle=True, random_state=seed)
    return make_pipeline(FunctionTransformer(_to_str, feature_names_out="one-to-one"),
                         TargetEncoder(target_type="binary", cv=cv), StandardScaler())


def tabular_encoder(numeric: Sequence[str], categorical: Sequence[str] = (), kind: str = "onehot",
                    min_frequency: int = 2, target: Sequence[str] = (), seed: int = 0) -> ColumnTransformer:
    """Numeric impute+scale, categorical one-hot/ordinal, and (binary tasks) target-encoded
    high-cardinality columns. Fit it with `fit_transform(X, y)` on the training rows."""
    parts = [("num", numeric_encoder(), list(numeric))]
    if categorical:
        parts.append(("cat", categorical_encoder(kind, min_frequency), list(categorical)))
    if target:
        parts.append(("te", target_encoder(seed), list(target)))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0,
                             verbose_feature_names_out=True)
