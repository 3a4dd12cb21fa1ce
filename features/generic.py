"""The feature encoder for a table the project has never seen: column kinds in, a dense float32 matrix out.

A `CompetitionSpec` names each feature column "numeric", "categorical", "boolean" or "text";
`generic_encoder` turns that map into a scikit-learn transformer fit once per CV fold on the fold's
training rows only. Everything data-dependent is decided in `fit` from those rows: which columns are
constant (dropped), which have missing values (they get an indicator), which categoricals are
high-cardinality (they also get frequency and target encoding), and how a text column splits into
parts (Spaceship Titanic's Cabin "B/0/P" is deck / number / side). Numeric scaling is an option:
"quantile+standard" (both, the default, picked by bench/encoding.py), "quantile" (to a normal
distribution), "robust" (RealMLP's median/IQR scaling with smooth clipping) or "standard". Everything is vectorised pandas/sklearn: a
million rows by thirty columns encodes in seconds.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.model_selection import KFold
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, QuantileTransformer, StandardScaler, TargetEncoder
from sklearn.utils.validation import check_is_fitted, validate_data

from core.errors import UsageError
from features.encoders import InnerFolds

KINDS = ("numeric", "categorical", "boolean", "text")
PROBLEMS = {"binary": "binary", "multiclass": "multiclass", "regression": "continuous"}  # -> TargetEncoder's target_type
NUMERIC = ("quantile+standard", "quantile", "robust", "standard")
SEPARATORS = ("/", "_", "-", " ", ":")
SPLIT_SHARE = 0.95      # share of a text column's non-missing fit values that must split alike
NUMBER_SHARE = 0.95     # share of a part's non-missing values that must parse as numbers to be numeric
HIGH_CARDINALITY = 20   # distinct fit values above which a categorical also gets frequency + target encoding
MIN_FREQUENCY = 5       # fit rows a category needs for its own one-hot column; rarer ones share 'infrequent'
MAX_CATEGORIES = 64     # one-hot columns per categorical at most, the infrequent bucket included
WIDE_MIN_SHARE = 0.01   # a high-cardinality column's level needs this share of the fit rows for its own one-hot
                        # column: frequency + target encoding carry the rest, and 64 rare levels each of a few
                        # columns made most of a million-row matrix (and its encoding time) out of noise
MISSING = "__missing__"
TRUE = {"true", "t", "yes", "y", "1"}
FALSE = {"false", "f", "no", "n", "0"}


def as_text(s: pd.Series) -> pd.Series:
    """Values as strings, missing kept missing. Whole numbers print without '.0', so a column read as
    int in train.csv and as float in test.csv (where it has a gap) gives the same categories."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        f = s.astype(float)
        text = f.astype(str).astype(object)
        whole = (f % 1 == 0) & (f.abs() < 2 ** 53)
        text[whole] = f[whole].astype(np.int64).astype(str)
        return text.astype(str).where(f.notna())
    return s.astype(str).where(s.notna())


def split_rule(text: pd.Series) -> tuple[str, int] | None:
    """(separator, parts) when >= SPLIT_SHARE of the non-missing values split on one separator into
    the same number (2-4) of parts; the separator with the largest such share wins. None otherwise."""
    values = text.dropna()
    best = None
    for sep in SEPARATORS if len(values) else ():
        share = (values.str.count(re.escape(sep)) + 1).value_counts(normalize=True)
        parts, top = int(share.index[0]), float(share.iloc[0])
        if 2 <= parts <= 4 and top >= SPLIT_SHARE and (best is None or top > best[2]):
            best = (sep, parts, top)
    return best[:2] if best else None


def split_parts(text: pd.Series, sep: str, parts: int) -> pd.DataFrame:
    """The `parts` pieces of each value (columns 0..parts-1); a value with another count, or an empty
    piece, is missing, so a malformed row at transform time becomes a missing value, never an error."""
    out = text.str.split(sep, n=parts - 1, expand=True, regex=False).reindex(columns=range(parts))
    out = out.astype(object).where(out.notna() & (out != ""))
    out.loc[(text.str.count(re.escape(sep)) != parts - 1).fillna(True).to_numpy()] = np.nan
    return out


def as_bool(text: pd.Series, true_values: frozenset) -> pd.Series:
    """1.0 for the values in `true_values`, 0.0 for any other, NaN for missing."""
    low = text.str.strip().str.lower()
    return low.isin(true_values).astype(float).where(low.notna())


class FrequencyEncoder(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """log(1 + fit rows sharing the value), per column; a value unseen at fit counts 0.
    How common a value is (a cabin's or a surname's group size) often predicts what its label cannot."""

    def fit(self, X: pd.DataFrame, y=None):
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.counts_ = [X[c].value_counts() for c in X.columns]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self)
        cols = [X[c].map(n).fillna(0).to_numpy(float) for c, n in zip(X.columns, self.counts_)]
        return np.log1p(np.column_stack(cols)) if cols else np.zeros((len(X), 0))


class RobustSmoothClip(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """RealMLP's numeric scaling (Holzmüller et al., 2024): (x - median) / IQR, then x / sqrt(1 + (x/3)^2)
    so a long tail ends near ±3 instead of at 50. Where the IQR is 0 (a column mostly zeros, like money
    spent) the 5-95% range scales it, then the full range, then 1."""

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=float)
        q = np.quantile(X, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0], axis=0) if len(X) else np.zeros((7, X.shape[1]))
        scale = q[4] - q[2]
        for wider in (q[5] - q[1], q[6] - q[0], np.ones_like(scale)):
            scale = np.where(scale > 0, scale, wider)
        self.center_, self.scale_ = q[3], scale
        return self

    def transform(self, X):
        check_is_fitted(self)
        x = (validate_data(self, X, dtype=float, reset=False) - self.center_) / self.scale_
        return x / np.sqrt(1 + (x / 3) ** 2)


def one_hot(min_frequency: int | float, levels: dict[str, pd.Index]) -> OneHotEncoder:
    return OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=min_frequency, max_categories=MAX_CATEGORIES,
                         sparse_output=False, dtype=np.float32, feature_name_combiner=LevelNames(levels))


def to_float32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def f32(*steps):
    """`steps` with their output cast to float32: the column transformer stacks its parts at the widest
    dtype, and a million-row float64 stack costs twice the memory and most of the encoding time."""
    return make_pipeline(*steps, FunctionTransformer(to_float32, feature_names_out="one-to-one"))


def numeric_scaler(numeric: str, rows: int, seed: int):
    """Median imputation, then the `numeric` scaling, for `rows` fit rows. "quantile+standard" gives each
    column twice: its rank shape (normal quantiles) and its magnitude (standardised), which bench/encoding.py
    found at or near the best on all three tables where each single scaling lost badly on one (robust's
    clipping on Spaceship Titanic's money columns, standard's outliers on House Prices)."""
    def quantile():
        return QuantileTransformer(n_quantiles=max(1, min(1000, rows)), output_distribution="normal", random_state=seed)
    scaler = {"quantile": quantile, "robust": RobustSmoothClip, "standard": StandardScaler,
              "quantile+standard": lambda: FeatureUnion([("quantile", quantile()), ("standard", StandardScaler())])}
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), scaler[numeric]())


class LevelNames:
    """OneHotEncoder's feature_name_combiner: the one-hot columns are named for the category, not its code."""

    def __init__(self, levels: dict[str, pd.Index]):
        self.levels = levels

    def __call__(self, feature: str, code) -> str:
        known = isinstance(code, (int, np.integer)) and 0 <= code < len(self.levels[feature])
        return f"{feature}_{self.levels[feature][code] if known else code}"


class GenericEncoder(TransformerMixin, BaseEstimator):
    """See the module docstring. `fit_transform(X, y)` on a fold's training rows (target encoding
    cross-fits there, so a row's own label never encodes it), then `transform(X)` on any rows."""

    def __init__(self, columns: dict[str, str], problem: str, seed: int = 0, numeric: str = "quantile+standard"):
        self.columns, self.problem, self.seed, self.numeric = columns, problem, seed, numeric

    def fit(self, X: pd.DataFrame, y=None):
        frame = self._learn(X)
        self.encoder_.fit(frame, y)
        return self

    def fit_transform(self, X: pd.DataFrame, y=None, **fit_params) -> np.ndarray:
        frame = self._learn(X)
        return np.asarray(self.encoder_.fit_transform(frame, y), dtype=np.float32)

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "encoder_")
        return np.asarray(self.encoder_.transform(self._prepare(X)), dtype=np.float32)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "encoder_")
        return self.encoder_.get_feature_names_out()

    def _check(self, X: pd.DataFrame, names) -> None:
        absent = [c for c in names if c not in X.columns]
        if absent:
            raise UsageError(f"column(s) {', '.join(map(str, absent))} missing from the table "
                             f"(the encoder {'was fit on' if hasattr(self, 'encoder_') else 'expects'} them)")

    def _learn(self, X: pd.DataFrame) -> pd.DataFrame:
        """Decide everything data-dependent from the fit rows; build (unfitted) the column transformer."""
        if self.problem not in PROBLEMS:
            raise UsageError(f"unknown problem {self.problem!r}; use one of {', '.join(PROBLEMS)}")
        if self.numeric not in NUMERIC:
            raise UsageError(f"unknown numeric scaling {self.numeric!r}; use one of {', '.join(NUMERIC)}")
        bad = {c: k for c, k in self.columns.items() if k not in KINDS}
        if bad:
            raise UsageError(f"unknown column kind(s) {bad}; use one of {', '.join(KINDS)}")
        self._check(X, self.columns)
        self.kinds_, self.splits_, self.true_values_, self.dropped_ = {}, {}, {}, []
        for col, kind in self.columns.items():
            if X[col].nunique(dropna=False) <= 1:
                self.dropped_.append(col)
            elif kind == "boolean":
                text = as_text(X[col]).str.strip().str.lower()
                seen = set(text.dropna().unique())
                if seen <= TRUE | FALSE:
                    self.kinds_[col], self.true_values_[col] = "boolean", frozenset(TRUE)
                elif len(seen) == 2:           # two other words: the later in sort order is 1
                    self.kinds_[col], self.true_values_[col] = "boolean", frozenset({max(seen)})
                else:                          # not two-valued after all: its levels are categories
                    self.kinds_[col] = "categorical"
            elif kind == "text":
                self.kinds_[col] = "categorical"
                self.splits_[col] = split_rule(as_text(X[col]))
            else:
                self.kinds_[col] = kind
        self.splits_ = {c: r for c, r in self.splits_.items() if r}
        frame = self._prepare(X, learning=True)
        self._build(frame)
        return frame

    def _prepare(self, X: pd.DataFrame, learning: bool = False) -> pd.DataFrame:
        """The raw columns as the encoders take them: numbers as floats, categories as strings with
        missing as its own level, booleans as 0/1/NaN, split text as its part columns."""
        self._check(X, self.kinds_)
        out = {}
        for col, kind in self.kinds_.items():
            if kind == "numeric":
                out[col] = pd.to_numeric(X[col], errors="coerce").astype(float)
            elif kind == "boolean":
                out[col] = as_bool(as_text(X[col]), self.true_values_[col])
            else:
                text = as_text(X[col])
                out[col] = text.fillna(MISSING)
            if col in self.splits_:
                pieces = split_parts(text, *self.splits_[col])
                for i in pieces.columns:
                    out[f"{col}[{i}]"] = pieces[i]
        frame = pd.DataFrame(out, index=X.index)
        if learning:                           # each part is numeric when its values mostly parse
            self.parts_ = {}
            for col in (c for c in frame.columns if c not in self.kinds_):
                values = frame[col].dropna()
                if values.nunique() <= 1:
                    continue
                number = pd.to_numeric(values, errors="coerce").notna().mean() >= NUMBER_SHARE
                self.parts_[col] = "numeric" if number else "categorical"
        for col, kind in self.parts_.items():
            frame[col] = (pd.to_numeric(frame[col], errors="coerce").astype(float) if kind == "numeric"
                          else frame[col].fillna(MISSING))
        frame = frame[list(self.kinds_) + list(self.parts_)]
        cat = [c for c, k in {**self.kinds_, **self.parts_}.items() if k == "categorical"]
        if learning:
            self.levels_ = {c: pd.Index(frame[c].unique()).sort_values() for c in cat}
        # integer codes (unseen: -1): sklearn's encoders count object strings in Python, codes in numpy
        codes = {c: pd.Categorical(frame[c], categories=self.levels_[c]).codes.astype(np.int64) for c in cat}
        return frame.assign(**codes)

    def _build(self, frame: pd.DataFrame) -> None:
        kinds = {**self.kinds_, **self.parts_}
        num = [c for c, k in kinds.items() if k == "numeric"]
        cat = [c for c, k in kinds.items() if k == "categorical"]
        flags = [c for c, k in kinds.items() if k == "boolean"]
        wide = [c for c in cat if c in self.splits_ or frame[c].nunique() > HIGH_CARDINALITY]
        parts = [("num", f32(numeric_scaler(self.numeric, len(frame), self.seed)), num),
                 ("num_missing", f32(MissingIndicator(features="missing-only", error_on_new=False)), num),
                 ("bool", f32(SimpleImputer(strategy="mean", add_indicator=True, keep_empty_features=True)), flags),
                 ("cat", one_hot(MIN_FREQUENCY, self.levels_), [c for c in cat if c not in wide]),
                 ("cat_wide", one_hot(WIDE_MIN_SHARE, self.levels_), wide),
                 ("freq", f32(FrequencyEncoder(), StandardScaler()), wide)]
        if wide:
            target_type = PROBLEMS[self.problem]
            cv = (KFold(5, shuffle=True, random_state=self.seed) if target_type == "continuous"
                  else InnerFolds(5, shuffle=True, random_state=self.seed))
            parts.append(("target", f32(TargetEncoder(target_type=target_type, cv=cv), StandardScaler()),
                          wide))
        self.encoder_ = ColumnTransformer([p for p in parts if p[2]], remainder="drop", sparse_threshold=0.0,
                                          verbose_feature_names_out=True)


def generic_encoder(columns: dict[str, str], problem: str, seed: int = 0,
                    numeric: str = "quantile+standard") -> GenericEncoder:
    """The encoder for `columns` (feature column -> "numeric" | "categorical" | "boolean" | "text") and
    `problem` ("binary" | "multiclass" | "regression"); `seed` drives the target encoder's inner folds
    and the quantile subsample; `numeric` is "quantile+standard" (default) | "quantile" | "robust" | "standard"."""
    return GenericEncoder(dict(columns), problem, seed, numeric)
