import numpy as np
import pytest

from core.errors import UsageError
from pipelines.folds import make_folds


@pytest.mark.parametrize("k", [2, 5])
def test_folds_disjoint_cover_and_stratified(k):
    y = np.array([0] * 70 + [1] * 20 + [2] * 10)
    folds = make_folds(y, k, seed=3)
    assert len(folds) == k
    seen = np.concatenate([va for _, va in folds])
    assert sorted(seen) == list(range(len(y)))          # every row validated exactly once
    for tr, va in folds:
        assert not set(tr) & set(va)
        assert len(tr) + len(va) == len(y)
        # class shares in each validation fold within one row of the global share
        for c, n in zip(*np.unique(y, return_counts=True)):
            assert abs((y[va] == c).sum() - n / k) <= 1


def test_folds_are_seeded():
    y = np.array([0, 1] * 50)
    a, b, c = make_folds(y, 5, 0), make_folds(y, 5, 0), make_folds(y, 5, 1)
    assert all(np.array_equal(x[1], z[1]) for x, z in zip(a, b))
    assert not all(np.array_equal(x[1], z[1]) for x, z in zip(a, c))


def test_holdout_when_one_fold():
    y = np.array([0, 1] * 50)
    [(tr, va)] = make_folds(y, 1, 0, holdout=0.2)
    assert len(va) == 20 and not set(tr) & set(va)


@pytest.mark.parametrize("k, msg", [(0, "at least 1"), (4, "rarest class")])
def test_bad_fold_counts(k, msg):
    with pytest.raises(UsageError, match=msg):
        make_folds(np.array([0] * 10 + [1] * 3), k, 0)


@pytest.mark.parametrize("y, holdout, msg", [
    (np.array([0] * 20 + [1] * 20 + [2]), 0.1, "a class has a single row"),
    (np.array([0, 1] * 20), 0.99, "leaves fewer training rows than classes"),
    (np.array([0, 1] * 20), 0.01, "cannot hold one row of each class"),
])
def test_a_holdout_that_cannot_be_stratified_is_a_usage_error(y, holdout, msg):
    with pytest.raises(UsageError, match=msg):
        make_folds(y, folds=1, seed=0, holdout=holdout)


@pytest.mark.parametrize("cores, jobs, kind, device, folds, plan", [
    (2, 0, "tabular", "cpu", 5, [([0, 1, 2, 3, 4], 2, 1)]),   # fold 4 alone at the end, still on one thread
    (2, 0, "tabular", "cpu", 4, [([0, 1, 2, 3], 2, 1)]),
    (4, 0, "tabular", "cpu", 10, [(list(range(10)), 4, 1)]),
    (8, 2, "tabular", "cpu", 5, [([0, 1, 2, 3, 4], 2, 4)]),
    (2, 5, "tabular", "cpu", 5, [([0, 1, 2, 3, 4], 5, 1)]),             # asked for: more jobs than cores
    (2, 0, "image", "cpu", 5, [([0, 1, 2, 3, 4], 1, 2)]),
    (2, 0, "tabular", "cuda", 5, [([0, 1, 2, 3, 4], 1, 2)]),
    (2, 2, "image", "cpu", 3, [([0, 1, 2], 2, 1)]),
    (2, 0, "tabular", "cpu", 1, [([0], 1, 2)]),
    (2, 1, "tabular", "cpu", 5, [([0, 1, 2, 3, 4], 1, 2)]),
])
def test_fold_plan(cores, jobs, kind, device, folds, plan, monkeypatch):
    """Which folds train side by side, on how many threads: fixed by cores and folds, never by timing."""
    from types import SimpleNamespace
    import torch
    from core.config import TrainConfig
    from pipelines.cv import fold_plan
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores)
    inp = SimpleNamespace(device=torch.device(device), task=SimpleNamespace(parallel_folds=kind == "tabular"))
    assert fold_plan(TrainConfig(task="x", jobs=jobs), inp, list(range(folds))) == plan
