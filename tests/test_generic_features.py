"""features/generic.py keeps the sklearn contract on tables it has never seen: learns from the fit rows
only, never fails on new categories or malformed text, and cross-fits its target encoding."""
import pickle
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from core.errors import UsageError
from features.generic import RobustSmoothClip, as_text, generic_encoder, split_rule
from tests.conftest import ROOT

COLUMNS = {"age": "numeric", "spend": "numeric", "planet": "categorical", "vip": "boolean",
           "cabin": "text", "ticket": "text", "same": "numeric"}


def table(n: int = 60, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": np.where(rng.random(n) < 0.1, np.nan, rng.integers(1, 80, n).astype(float)),
        "spend": np.where(rng.random(n) < 0.6, 0.0, rng.lognormal(6, 2, n)),    # mostly 0, long tail
        "planet": rng.choice(["Earth", "Mars", "Europa", None], n),
        "vip": pd.Series(rng.choice([True, False, None], n), dtype=object),
        "cabin": [f"{d}/{k}/{s}" for d, k, s in zip(rng.choice(list("ABC"), n), rng.integers(0, 9, n),
                                                      rng.choice(["P", "S"], n))],
        "ticket": [f"T{i}" for i in rng.integers(0, 30, n)],                       # no separator: not split
        "same": 1.0,
    })
    y = pd.Series(rng.random(n) < 0.5, name="y")
    return df, y


def test_output_is_dense_float32_without_nan_and_names_match():
    X, y = table()
    enc = generic_encoder(COLUMNS, "binary")
    out = enc.fit_transform(X, y)
    names = list(enc.get_feature_names_out())
    assert out.dtype == np.float32 and out.shape == (len(X), len(names)) and np.isfinite(out).all()
    assert enc.transform(X.iloc[:7]).shape == (7, len(names))
    assert "num_missing__missingindicator_age" in names            # age has gaps in the fit rows
    assert not any("missingindicator_spend" in n for n in names)     # spend has none
    assert "bool__missingindicator_vip" in names
    assert not any("same" in n for n in names)                       # constant: dropped
    assert {"target__ticket", "freq__ticket", "target__cabin"} <= set(names)


def test_text_splits_into_parts_learned_in_fit():
    X, y = table()
    enc = generic_encoder(COLUMNS, "binary").fit(X, y)
    assert enc.splits_ == {"cabin": ("/", 3)}
    assert enc.parts_ == {"cabin[0]": "categorical", "cabin[1]": "numeric", "cabin[2]": "categorical"}
    names = list(enc.get_feature_names_out())
    assert {"cat__cabin[0]_A", "num__quantile__cabin[1]", "num__standard__cabin[1]", "cat__cabin[2]_S"} <= set(names)
    odd = X.iloc[:3].assign(cabin=["B/x/P", "weird", None])       # non-numeric number, no separator, missing
    out = enc.transform(odd)
    assert np.isfinite(out).all()
    row = dict(zip(names, enc.transform(X.iloc[:1].assign(cabin="C/4/S"))[0]))
    assert row["cat__cabin[0]_C"] == 1 and row["cat__cabin[2]_S"] == 1


def test_split_rule_needs_most_values_to_split_alike():
    assert split_rule(pd.Series(["B/0/P", "F/1/S", None] * 20)) == ("/", 3)
    assert split_rule(pd.Series(["Maham Ofracculy", "Juanna Vines"] * 20)) == (" ", 2)
    assert split_rule(pd.Series(["A/5 21171", "347082", "PC 17599", "113803"] * 5)) is None
    assert split_rule(pd.Series(["a b c d e", "f g h i j"] * 5)) is None     # 5 parts: too many
    assert split_rule(pd.Series([np.nan, np.nan])) is None


def test_transform_never_changes_the_fitted_state():
    X, y = table()
    enc = generic_encoder(COLUMNS, "binary").fit(X.iloc[:40], y.iloc[:40])
    before = pickle.dumps(enc)
    other, _ = table(30, seed=9)
    other["planet"] = "Pluto"                                       # unseen category
    other["ticket"] = "never-seen"
    out = enc.transform(other)
    assert np.isfinite(out).all() and pickle.dumps(enc) == before


def test_statistics_come_from_the_fit_rows_only():
    X, y = table()
    enc = generic_encoder({"ticket": "text", "spend": "numeric"}, "binary").fit(X.iloc[:40], y.iloc[:40])
    counts = enc.encoder_.named_transformers_["freq"][0].counts_[0]
    assert counts.sum() == 40 and sorted(counts) == sorted(X["ticket"].iloc[:40].value_counts())
    refit = clone(enc).fit(X, y)
    assert refit.encoder_.named_transformers_["freq"][0].counts_[0].sum() == 60


def test_target_encoding_cross_fits_in_fit_transform():
    X, y = table(200)
    enc = generic_encoder({"ticket": "text"}, "binary")
    crossed = enc.fit_transform(X, y)
    plain = enc.transform(X)
    te = list(enc.get_feature_names_out()).index("target__ticket")
    assert not np.allclose(crossed[:, te], plain[:, te])           # own label never encodes its row in fit_transform
    assert np.allclose(generic_encoder({"ticket": "text"}, "binary").fit_transform(X, y), crossed)   # seeded


def test_multiclass_and_regression_target_encoding():
    X, _ = table(150)
    classes = pd.Series(np.random.default_rng(1).choice(["a", "b", "c"], len(X)))
    enc = generic_encoder({"ticket": "text"}, "multiclass")
    out = enc.fit_transform(X, classes)
    assert [n for n in enc.get_feature_names_out() if n.startswith("target__")] == \
        ["target__ticket_a", "target__ticket_b", "target__ticket_c"]
    assert np.isfinite(out).all()
    price = pd.Series(np.random.default_rng(2).lognormal(12, 0.4, len(X)))
    reg = generic_encoder({"ticket": "text", "age": "numeric"}, "regression")
    out = reg.fit_transform(X, price)
    te = list(reg.get_feature_names_out()).index("target__ticket")
    assert abs(out[:, te].mean()) < 1e-4 and abs(out[:, te].std() - 1) < 1e-3   # scaled, not in price units


@pytest.mark.parametrize("numeric", ["quantile+standard", "quantile", "robust", "standard"])
def test_every_numeric_scaling_tames_a_mostly_zero_long_tail(numeric):
    X, y = table(200)
    enc = generic_encoder({"spend": "numeric"}, "binary", numeric=numeric)
    spend = enc.fit_transform(X, y)[:, 0]                           # quantile+standard: the quantile one
    assert np.isfinite(spend).all() and len(np.unique(spend)) > 50
    if numeric != "standard":
        assert np.abs(spend).max() < 6                             # tail squeezed, not left at 50 sd


def test_robust_scaling_falls_back_when_the_iqr_is_zero():
    x = np.r_[np.zeros(90), np.arange(1, 11) * 100.0][:, None]
    out = RobustSmoothClip().fit(x).transform(x)
    assert np.isfinite(out).all() and out[:90].max() == 0 and 0 < out[-1, 0] < 3


def test_booleans_as_words_and_missing_indicator():
    X = pd.DataFrame({"b": ["Y", "N", None, "y", "N", "Y"], "c": ["in", "out", "in", "in", "out", "out"]})
    enc = generic_encoder({"b": "boolean", "c": "boolean"}, "binary").fit(X)
    out = enc.transform(pd.DataFrame({"b": ["Y", "N", None], "c": ["out", "in", "maybe"]}))
    names = list(enc.get_feature_names_out())
    assert names == ["bool__b", "bool__c", "bool__missingindicator_b"]
    assert out[:, 0].tolist()[:2] == [1, 0] and out[2, 2] == 1 and out[:2, 2].tolist() == [0, 0]
    assert out[:, 1].tolist() == [1, 0, 0]                          # 'out' sorts after 'in': 1


def test_whole_numbers_read_as_int_or_float_are_one_category():
    assert as_text(pd.Series([60, 20])).tolist() == as_text(pd.Series([60.0, 20.0])).tolist() == ["60", "20"]
    X = pd.DataFrame({"cls": [60, 20, 60, 20, 60, 20] * 3})
    enc = generic_encoder({"cls": "categorical"}, "binary").fit(X)
    out = enc.transform(pd.DataFrame({"cls": [60.0, np.nan]}))
    assert out[0].tolist() == enc.transform(pd.DataFrame({"cls": [60]}))[0].tolist()


def test_absent_columns_and_bad_options_are_named():
    X, y = table()
    enc = generic_encoder(COLUMNS, "binary").fit(X, y)
    with pytest.raises(ValueError, match="planet, cabin"):
        enc.transform(X.drop(columns=["cabin", "planet"]))
    with pytest.raises(UsageError, match="numeric scaling 'log'"):
        generic_encoder(COLUMNS, "binary", numeric="log").fit(X, y)
    with pytest.raises(UsageError, match="problem 'ranking'"):
        generic_encoder(COLUMNS, "ranking").fit(X, y)
    with pytest.raises(UsageError, match="date"):
        generic_encoder({"age": "date"}, "binary").fit(X, y)


def test_encoding_bench_bad_option_is_one_line_and_exit_2(capsys):
    from bench import encoding
    with pytest.raises(SystemExit) as stop:
        encoding.main_exit(lambda: encoding.main(["--numeric", "log"]))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: argument --numeric")


def test_encoding_bench_infers_kinds_as_a_spec_would():
    sys.path.insert(0, str(ROOT / "bench"))
    from bench.encoding import infer_columns
    X = pd.DataFrame({"n": [1.0, 2.0, 3.0], "b": [True, None, False], "c": ["a", "b", "a"],
                      "t": [f"x{i}" for i in range(3)]})
    X = pd.concat([X] * 8, ignore_index=True)
    X.loc[:, "t"] = [f"x{i}" for i in range(len(X))]
    assert infer_columns(X) == {"n": "numeric", "b": "boolean", "c": "categorical", "t": "text"}


@pytest.mark.slow
@pytest.mark.integration
def test_encoding_bench_on_titanic(capsys):
    from bench import encoding
    if not (encoding.DATA / "titanic").is_dir():
        pytest.skip("../shared/datasets/titanic absent")
    encoding.main(["--datasets", "titanic", "--numeric", "quantile", "--learners", "linear"])
    row = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| titanic")]
    assert len(row) == 1 and 0.75 < float(row[0].split("|")[5].split()[0]) < 0.9
