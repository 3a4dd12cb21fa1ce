"""Native categorical splits for the tree learners (pipelines/learners_gbdt.py) on a competition
inferred from its files (tasks/generic.py, whose columns a spec names): the fold's matrix keeps each
category as one column of integer codes, which LightGBM (`categorical_feature`), XGBoost
(`enable_categorical`, feature type "c") and CatBoost (`cat_features`, its ordered target
statistics) split on as categories, instead of the nets' one-hot, frequency and target encodings.

`TreeCodes` is the generic encoder (features/generic.py) with every decision it makes from the fold's
training rows kept (constant columns dropped, booleans read, text split into parts, a category's
levels, missing as a level of its own) and only its last step replaced: numbers pass as they are
(trees need no scaling, and a missing number stays NaN, which every library routes natively),
booleans as 0/1/NaN, categories as their level's code (a level unseen in the fold's training rows:
NaN, missing). `categorical_` lists the code columns' positions, saved with the encoder, so `predict`
hands the library the same columns as categories. Hand-made tasks (Titanic, Otto, ...) keep their
own features: their columns are engineered numbers already.

Off by default (`trees` setting native_categorical 1 turns it on): 5-fold CV, seed 0, one bag, this
2-core machine (`train DS --data-dir ../shared/datasets/DS --model M --set bags=1 --set
trees='{"native_categorical": 1}'`, and 0; house_prices with --metric rmsle), codes vs the encoding:
    spaceship_titanic accuracy   LightGBM 0.8088 vs 0.8074   XGBoost 0.8102 vs 0.8073   CatBoost 0.8136 vs 0.8116
    house_prices rmsle           LightGBM 0.1248 vs 0.1245   XGBoost 0.1280 vs 0.1256   CatBoost 0.1221 vs 0.1167
Codes win on Spaceship Titanic for all three and lose on House Prices for all three (LightGBM by a
hair, CatBoost by most); one seed per cell cannot tell more, so the default stays the encoding.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer

from features.generic import GenericEncoder
from tasks.task import Encoded


def unseen_missing(codes: pd.DataFrame) -> np.ndarray:
    """Level codes (-1: a level the fit rows never had) as floats, -1 as NaN (missing)."""
    out = np.asarray(codes, np.float64)
    out[out < 0] = np.nan
    return out


class TreeCodes(GenericEncoder):
    """The generic encoder's columns as trees split them natively; see the module docstring."""

    def _build(self, frame: pd.DataFrame) -> None:
        kinds = {**self.kinds_, **self.parts_}
        groups = [(kind, [c for c, k in kinds.items() if k == kind]) for kind in ("numeric", "boolean", "categorical")]
        parts = [(kind, "passthrough" if kind != "categorical" else
                  FunctionTransformer(unseen_missing, feature_names_out="one-to-one"), cols) for kind, cols in groups]
        self.encoder_ = ColumnTransformer([p for p in parts if p[2]], remainder="drop", sparse_threshold=0.0,
                                          verbose_feature_names_out=True)
        before = sum(len(cols) for kind, cols in groups if kind != "categorical")
        self.categorical_ = list(range(before, before + len(groups[2][1])))


def native_fold(task, cfg, inp, tr, va, test) -> Encoded:
    """A fold's matrices through `TreeCodes`, fit on its training rows (float32; codes are exact)."""
    encoder = TreeCodes(task.spec.columns, task.problem, seed=cfg.seed)
    x_tr = encoder.fit_transform(inp.train.iloc[tr], inp.y[tr])
    columns = [str(c) for c in encoder.get_feature_names_out()]
    return Encoded(encoder, x_tr, encoder.transform(inp.train.iloc[va]),
                   encoder.transform(test) if test is not None else None,
                   {"in_features": len(columns), "out_features": task.out_features}, columns, None)


def categorical_columns(encoder) -> list[int]:
    """The positions of a fold's category code columns: none for the task's own encoding."""
    return list(getattr(encoder, "categorical_", []))
