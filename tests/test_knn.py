"""The k-nearest-neighbours learner (`--model knn`): every problem, probabilities with no zeros,
the run folder predicts what train wrote, and a fold too large for brute force is one line."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import UsageError
from pipelines.learners import LEARNERS, KNNLearner
from pipelines.metrics import kaggle_logloss
from pipelines.predict import predict
from pipelines.train import train
from tiny_tasks import labels_submission, problem_frames, registered, table_task, write_competition




@pytest.mark.slow
@pytest.mark.parametrize("problem,metric,classes", [("binary", "logloss", (0, 1)),
                                                    ("multiclass", "logloss", (0, 1, 2)),
                                                    ("regression", "rmse", ())])
def test_knn_trains_every_problem_and_predicts_from_its_folder(problem, metric, classes, tmp_path, runs_dir):
    frame, test = problem_frames(problem)
    folder = write_competition(tmp_path / "c", frame, test)
    kw = {"submission": labels_submission} if classes else {}
    with registered(table_task("nn", problem=problem, metric=metric, classes=classes, **kw)) as task:
        res = train(task.config(model="knn", stopping="refit"), data_dir=folder, runs_root=runs_dir,
                    out=tmp_path / "a.csv")
        again = predict(res.run_dir.name, "nn", runs_root=runs_dir, out=tmp_path / "b.csv")
    assert again.read_bytes() == (tmp_path / "a.csv").read_bytes()
    oof = pd.read_csv(res.run_dir / "oof.csv")
    y = oof["target"].to_numpy()
    if problem == "regression":
        # better than predicting the mean (50 neighbours of 100 rows smooth a lot, but they carry signal)
        assert np.sqrt(np.mean((oof["prediction"] - y) ** 2)) < 0.8 * y.std()
        return
    p = oof["proba"].to_numpy() if problem == "binary" else oof[[str(c) for c in classes]].to_numpy()
    assert (p > 0).all() and (p < 1).all()          # one pseudo-neighbour: never a 0 or a 1
    prior = np.bincount(y) / len(y)
    base = kaggle_logloss(y, np.tile(prior, (len(y), 1)) if p.ndim == 2 else np.full(len(y), prior[1]))
    assert kaggle_logloss(y, p) < base
    if p.ndim == 2:
        assert np.allclose(p.sum(1), 1)


def test_the_shrunk_shares_are_the_neighbours_counts_plus_one_uniform_neighbour():
    learner = KNNLearner(table_task("nn", problem="multiclass", metric="logloss", classes=(0, 1, 2)), None, None)
    x = np.array([[0.0], [0.1], [0.2], [5.0], [5.1]])
    learner.n_neighbors = 3
    learner.model_ = learner.estimator().fit(x, np.array([0, 0, 1, 2, 2]))
    p = learner.predict_proba(np.array([[0.05]]))
    assert np.allclose(p, [[(2 + 1 / 3) / 4, (1 + 1 / 3) / 4, (1 / 3) / 4]])


def test_a_fold_too_large_for_brute_force_is_one_line(tmp_path, runs_dir, monkeypatch):
    monkeypatch.setattr(KNNLearner, "max_rows", 50)
    frame, test = problem_frames("regression")
    folder = write_competition(tmp_path / "c", frame, test)
    with registered(table_task("nn")) as task, pytest.raises(UsageError) as e:
        train(task.config(model="knn"), data_dir=folder, runs_root=runs_dir, out=tmp_path / "a.csv")
    assert str(e.value) == ("knn: 100 training rows a fold; its brute-force neighbour search takes at most 50 "
                            "(choose another --model)")
    assert not (tmp_path / "a.csv").exists() and "knn" in LEARNERS.names()
    left = [p for p in (runs_dir / "nn").glob("*") if p.is_dir() and not p.name.startswith(".")]
    assert not left                       # the run folder is discarded
