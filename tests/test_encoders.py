"""Encoders keep the sklearn contract: fit on the training fold only, pure transform."""
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from features.counts import CountTransform
from features.encoders import tabular_encoder
from features.titanic import CATEGORICAL, GROUPS, NUMERIC, TitanicFeatures
from pipelines import TASKS
from tests.conftest import tiny_titanic


def frame():
    return pd.DataFrame({"a": [1.0, 2.0, 3.0, np.nan, 5.0, 6.0],
                         "c": ["x", "x", "y", "y", "z", "x"]})


def test_numeric_statistics_come_from_the_fit_rows_only():
    train, other = frame().iloc[:3], pd.DataFrame({"a": [100.0, 200.0], "c": ["x", "y"]})
    enc = tabular_encoder(["a"], ["c"]).fit(train)
    scaler = enc.named_transformers_["num"][-1]
    assert scaler.mean_[0] == pytest.approx(2.0)
    before = scaler.mean_.copy()
    enc.transform(other)                          # transform is pure: fitted state unchanged
    assert np.array_equal(scaler.mean_, before)


def test_nan_at_transform_is_imputed_with_fit_median():
    enc = tabular_encoder(["a"]).fit(frame().iloc[:3])          # no NaN seen at fit
    out = enc.transform(pd.DataFrame({"a": [np.nan, 2.0]}))
    assert np.isfinite(out).all()
    assert out[0, 0] == pytest.approx(out[1, 0])                  # NaN -> median (2.0)


def test_all_nan_column_keeps_its_place():
    enc = tabular_encoder(["a", "b"]).fit(pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, np.nan]}))
    assert enc.transform(pd.DataFrame({"a": [1.0], "b": [3.0]})).shape == (1, 2)


def test_unseen_category_goes_to_the_infrequent_bucket():
    df = pd.DataFrame({"c": ["x"] * 5 + ["y"] * 5 + ["rare"]})
    enc = tabular_encoder([], ["c"], min_frequency=2).fit(df)
    names = list(enc.get_feature_names_out())
    out = enc.transform(pd.DataFrame({"c": ["never-seen", "x", None]}))
    bucket = names.index("cat__c_infrequent_sklearn")
    assert out[0, bucket] == 1 and out[0].sum() == 1               # unseen -> bucket
    assert out[1, names.index("cat__c_x")] == 1
    assert out[2].sum() == 1                                      # NaN -> its own (missing) category or bucket


def test_ordinal_unseen_is_minus_one():
    enc = tabular_encoder([], ["c"], kind="ordinal", min_frequency=1).fit(frame())
    assert enc.transform(pd.DataFrame({"c": ["never-seen"]}))[0, 0] == -1


def test_titanic_features_learn_from_fit_rows_only():
    train, test = tiny_titanic(40), tiny_titanic(10, seed=5)
    test["Ticket"] = "UNSEEN"
    test.loc[0, "Name"] = "Smith, Capt. Edward"
    feats = TitanicFeatures().fit(train)
    ages = dict(feats.age_by_title_)
    out = feats.transform(test)
    assert list(out.columns) == NUMERIC + CATEGORICAL + GROUPS
    assert (out["TicketGroup"] == 1).all()                          # unseen ticket -> group of one
    assert out["Age"].notna().all() and out["Fare"].notna().all()
    assert feats.age_by_title_ == ages                              # transform does not refit


def test_count_transforms():
    x = np.array([[0.0, 3.0], [1.0, 0.0]])
    for kind, want in [("log1p", np.log1p(x)), ("anscombe", 2 * np.sqrt(x + 3 / 8)), ("none", x)]:
        out = CountTransform(kind).fit(x).transform(x)
        assert np.allclose(out[:, :2], want)
        assert np.allclose(out[:, 2], np.log1p(x.sum(1))) and np.array_equal(out[:, 3], [1, 1])
    with pytest.raises(ValueError, match="unknown count transform"):
        CountTransform("sqrt").fit(x)


@pytest.mark.parametrize("name", [n for n in TASKS.names() if TASKS.create(n).kind == "tabular"])
def test_every_task_feature_pipeline_is_an_unfitted_sklearn_estimator(name):
    task = TASKS.create(name)
    pipe = task.features(task.config())
    clone(pipe)                                   # sklearn contract: params only in __init__
    assert not hasattr(pipe, "n_features_in_")


def test_target_encoding_cross_fits_training_rows():
    """A row's own label must not reach its own feature: on a column unique per row,
    cross-fitted training encodings carry no information about that row's label."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    df = pd.DataFrame({"a": rng.normal(size=400), "g": [f"id{i}" for i in range(400)]})
    enc = tabular_encoder(["a"], target=["g"], seed=0)
    te = enc.fit_transform(df, y)[:, -1]
    assert abs(np.corrcoef(te, y)[0, 1]) < 0.2      # a leaky fit().transform() would give ~1
    shared = pd.DataFrame({"a": [0.0, 0.0], "g": ["grp", "grp"]})
    enc2 = tabular_encoder(["a"], target=["g"], seed=0).fit(pd.concat([df, shared.assign(g="grp")]),
                                                                np.r_[y, 1, 1])
    assert enc2.transform(shared).shape == (2, 2)


def test_target_encoding_on_a_small_fold_uses_as_many_inner_folds_as_the_rarest_class_allows():
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import TargetEncoder
    from features.encoders import InnerFolds
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(17, int), np.ones(3, int)]          # 3 of the rarer class: sklearn's 5 inner folds refuse it
    g = pd.DataFrame({"g": rng.choice(["a", "b", "c"], 20)})
    ours = TargetEncoder(target_type="binary", cv=InnerFolds(5, shuffle=True, random_state=0)).fit_transform(g, y)
    three = TargetEncoder(target_type="binary", cv=StratifiedKFold(3, shuffle=True, random_state=0)).fit_transform(g, y)
    assert np.array_equal(ours, three)
    with pytest.raises(ValueError, match="a class has 1 row in a training fold"):
        TargetEncoder(target_type="binary", cv=InnerFolds(5, shuffle=True, random_state=0)).fit_transform(g, np.r_[y[:19] * 0, 1])


def test_image_channel_stats_fit_on_given_rows_only():
    from features.images import BatchTransform, ChannelStats
    import torch
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 3, 8, 8)).astype(np.uint8)
    stats = ChannelStats().fit(x[:10])
    assert np.allclose(stats.mean_, x[:10].mean(axis=(0, 2, 3)) / 255, atol=1e-6)
    fn = BatchTransform(stats, torch.device("cpu"), flip=True, translate=2)
    out = fn(torch.as_tensor(x[:10]), False)
    assert out.shape == (10, 3, 8, 8) and abs(out.mean().item()) < 1e-5          # eval: normalise only


def test_random_translate_shows_a_window_of_the_reflected_image():
    import torch
    from features.images import random_translate
    torch.manual_seed(0)
    x = torch.arange(2 * 36, dtype=torch.float32).reshape(2, 1, 6, 6)
    padded = torch.nn.functional.pad(x, (2,) * 4, mode="reflect")
    windows = lambda i: [padded[i, :, r:r + 6, c:c + 6] for r in range(5) for c in range(5)]   # noqa: E731
    seen = set()
    for _ in range(20):
        out = random_translate(x, 2)
        assert out.shape == x.shape
        for i in range(2):
            hits = [k for k, w in enumerate(windows(i)) if torch.equal(out[i], w)]
            assert len(hits) == 1
            seen.add(hits[0])
    assert len(seen) > 5                                          # the shifts vary
    assert torch.equal(random_translate(torch.ones(4, 1, 6, 6), 2), torch.ones(4, 1, 6, 6))   # no fill colour


def test_shift_images_moves_content_and_reflects_the_border():
    import torch
    from features.images import shift_images
    x = torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4)
    down = shift_images(x, 1)
    assert torch.equal(down[0, 0, 1:, 1:], x[0, 0, :3, :3])
    assert torch.equal(down[0, 0, 0], x[0, 0, 1, [1, 0, 1, 2]]) and torch.equal(down[0, 0, :, 0], x[0, 0, [1, 0, 1, 2], 1])
    up = shift_images(x, -1)
    assert torch.equal(up[0, 0, :3, :3], x[0, 0, 1:, 1:])
    assert torch.equal(up[0, 0, 3], x[0, 0, 2, [1, 2, 3, 2]])
    assert torch.equal(shift_images(x, 0), x)


def test_preflip_mirrors_a_seeded_half_and_the_transform_alternates_by_epoch():
    """airbench's alternating flip: each training image starts on a seeded random side and
    switches sides every epoch; evaluation never mirrors."""
    import torch
    from features.images import BatchTransform, ChannelStats, preflip
    x = torch.as_tensor(np.random.default_rng(0).integers(0, 256, (400, 3, 5, 5)).astype(np.uint8))
    pre = preflip(x, seed=3)
    assert torch.equal(pre, preflip(x, seed=3)) and not torch.equal(pre, preflip(x, seed=4))
    mirrored = (pre == x.flip(3)).flatten(1).all(1)
    assert ((pre == x).flatten(1).all(1) | mirrored).all()        # every image whole, on one side or the other
    assert 150 < mirrored.sum() < 250
    stats = ChannelStats().fit(x.numpy())
    fn = BatchTransform(stats, torch.device("cpu"), flip=True, translate=0)
    plain = fn(pre, False)
    sides = []
    for epoch in (1, 2, 3, 4):
        fn.on_epoch_start(epoch)
        out = fn(pre, True)
        sides.append("as preflipped" if torch.equal(out, plain) else "mirrored" if torch.equal(out, plain.flip(3)) else "?")
        assert torch.equal(fn(pre, False), plain)
    assert sides == ["as preflipped", "mirrored", "as preflipped", "mirrored"]
    still = BatchTransform(stats, torch.device("cpu"), flip=False, translate=0)   # MNIST: never mirrored
    still.on_epoch_start(2)
    assert torch.equal(still(pre, True), plain)
