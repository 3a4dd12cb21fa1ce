"""Temperature scaling: the transform, the fit, cross-fitting without leakage, and the pipeline stage."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines import TASKS
from pipelines.calibrate import BOUNDS, apply_temperature, cross_fit, fit_temperature
from pipelines.metrics import kaggle_logloss
from pipelines.cv import cross_validate
from pipelines.inputs import prepare


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _overconfident(n=4000, k=5, t=1.6, seed=0):
    """Labels drawn from softmax(z); the 'model' reports softmax(z * t): overconfident by t."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, k))
    y = np.array([rng.choice(k, p=p) for p in _softmax(z)])
    return _softmax(z * t), y


def test_apply_temperature_keeps_decisions_and_normalises():
    p, y = _overconfident(200)
    for t in (0.5, 1.3, 3.0):
        q = apply_temperature(p, t)
        assert np.allclose(q.sum(1), 1) and (q.argmax(1) == p.argmax(1)).all()
    assert apply_temperature(p, 1.0) is p                       # T = 1 leaves the numbers alone
    binary = np.array([0.1, 0.4, 0.5, 0.7, 0.99])
    soft = apply_temperature(binary, 2.0)
    assert soft.shape == binary.shape and ((soft >= 0.5) == (binary >= 0.5)).all()
    assert np.allclose(soft, 1 / (1 + ((1 - binary) / binary) ** 0.5))   # sigmoid(logit / 2)


def test_fit_temperature_recovers_the_overconfidence():
    p, y = _overconfident(t=1.6)
    t = fit_temperature(p, y)
    assert 1.45 < t < 1.75
    assert kaggle_logloss(y, apply_temperature(p, t)) < kaggle_logloss(y, p) - 0.01
    assert BOUNDS[0] <= fit_temperature(np.full((4, 2), 0.5), np.array([0, 1, 0, 1])) <= BOUNDS[1]


def test_cross_fit_never_uses_a_folds_own_labels():
    p, y = _overconfident(3000)
    idx = np.arange(len(y))
    folds = [(np.setdiff1d(idx, va), va) for va in np.array_split(idx, 3)]
    cal, temps, t_all = cross_fit(p, y, folds)
    y2 = y.copy()
    va0 = folds[0][1]
    y2[va0] = (y2[va0] + 1) % p.shape[1]                      # scramble fold 0's labels
    cal2, temps2, _ = cross_fit(p, y2, folds)
    assert temps2[0] == temps[0] and np.array_equal(cal2[va0], cal[va0])
    assert temps2[1] != temps[1]                               # fold 1's T did see them
    assert kaggle_logloss(y, cal) < kaggle_logloss(y, p) and len(temps) == 3 and BOUNDS[0] < t_all < BOUNDS[1]


@pytest.fixture
def dia_inputs():
    cfg = TASKS.create("diabetes").config(folds=3, epochs=3, bags=1, device="cpu", seed=1)
    return cfg, prepare(cfg)


@pytest.mark.slow     # several seconds; CI's whole suite runs it
def test_pipeline_stage_moves_logloss_only(dia_inputs, tmp_path):
    cfg, inp = dia_inputs
    plain = cross_validate(inp, cfg)
    cal_cfg = cfg.__class__(**{**cfg.to_dict(), "calibrate": True})
    cal = cross_validate(inp, cal_cfg, run_dir=tmp_path)
    assert plain["calibration"] is None
    c = cal["calibration"]
    assert BOUNDS[0] < c["temperature"] < BOUNDS[1] and len(c["fold_temperatures"]) == 3
    assert c["cv_uncalibrated"] == pytest.approx(plain["cv"])
    assert cal["cv"]["accuracy"] == plain["cv"]["accuracy"]
    # within a fold one T keeps the ranking; the pooled OOF AUC may move a little (a T per fold)
    assert [f["roc_auc"] for f in cal["folds"]] == pytest.approx([f["roc_auc"] for f in plain["folds"]])
    assert (tmp_path / "calibration.json").is_file()
    assert all("temperature" in row for row in cal["folds"])
