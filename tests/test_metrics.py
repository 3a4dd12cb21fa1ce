import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from pipelines.metrics import accuracy, kaggle_logloss, roc_auc


@pytest.fixture
def multiclass():
    rng = np.random.default_rng(0)
    p = rng.random((200, 9))
    return rng.integers(0, 9, 200), p / p.sum(1, keepdims=True)


def test_logloss_matches_sklearn(multiclass):
    y, p = multiclass
    assert kaggle_logloss(y, p) == pytest.approx(log_loss(y, p, labels=range(9)), rel=1e-9)


def test_logloss_clips_and_renormalises_like_kaggle():
    y = np.array([0, 1])
    p = np.array([[0.0, 2.0], [0.0, 2.0]])          # unnormalised, with a hard zero on the truth
    expected = -(np.log(1e-15 / (1 + 1e-15)) + np.log(1 / (1 + 1e-15))) / 2
    assert kaggle_logloss(y, p) == pytest.approx(expected)
    assert np.isfinite(kaggle_logloss(y, p))


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 2, 300), rng.random(300)
    assert accuracy(y, p) == accuracy_score(y, p >= 0.5)
    assert roc_auc(y, p) == roc_auc_score(y, p)
    assert kaggle_logloss(y, p) == pytest.approx(log_loss(y, p))
