"""A learner whose fit ignores its seed (logreg, ridge, knn) trains one bag per fold whatever
`bags` says: more would fit the same rows to the same model again."""
from __future__ import annotations

import json
import logging

import pytest

from pipelines import TASKS
from pipelines.cv import one_bag_if_unseeded
from pipelines.learners import LEARNERS
from pipelines.train import train


def test_which_learners_are_seeded():
    assert not any(LEARNERS.get(m).seeded for m in ("logreg", "ridge", "knn"))
    assert LEARNERS.get("mlp").seeded and LEARNERS.get("lightgbm").seeded
    # a combination is seeded when any member is: its net's bags differ
    assert LEARNERS.get("mlp+logreg").seeded and not LEARNERS.get("logreg+knn").seeded


@pytest.mark.slow     # 3 s of training: the quick suite ran 86-93 s of its 90
def test_bags_fall_to_one_for_an_unseeded_learner_and_the_run_records_it(titanic_dir, runs_dir, tmp_path, caplog):
    task = TASKS.create("titanic")
    assert one_bag_if_unseeded(task.config(model="mlp", bags=3)).bags == 3
    with caplog.at_level(logging.DEBUG, logger="pipelines.cv"):
        res = train(task.config(model="logreg", bags=3, folds=3, stopping="inner"), data_dir=titanic_dir,
                    runs_root=runs_dir, out=tmp_path / "s.csv")
    assert "bags=3 would fit the same model 3 times" in caplog.text
    assert json.loads((res.run_dir / "config.json").read_text())["config"]["bags"] == 1
    for k in range(3):
        assert sorted(p.name for p in (res.run_dir / f"fold{k}").glob("model*")) == ["model0.joblib"]
