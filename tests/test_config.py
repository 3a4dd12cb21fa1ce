import json

import pytest

from core.config import TrainConfig, load_params, override
from core.registry import UsageError
from pipelines import TASKS


def test_override_applies_and_coerces_int_to_float():
    cfg = override(TrainConfig(task="t"), {"lr": 1, "folds": 3})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.folds == 3


@pytest.mark.parametrize("bad, msg", [({"nope": 1}, "unknown config key"), ({"folds": "3"}, "wants int"),
                                      ({"folds": True}, "wants int"), ({"batch_norm": 1}, "wants bool"),
                                      ({"dropout": 1.5}, "dropout"), ({"schedule": "step"}, "schedule"),
                                      ({"optimizer": "adam"}, "optimizer"), ({"momentum": 1.0}, "momentum")])
def test_override_rejects_bad_values(bad, msg):
    with pytest.raises(UsageError, match=msg):
        override(TrainConfig(task="t"), bad)


@pytest.mark.parametrize("name", TASKS.names())
def test_task_defaults_are_valid_configs(name):
    task = TASKS.create(name)
    cfg = task.config()
    assert cfg.task == name and cfg.folds >= task.min_folds


def test_params_file(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"lr": 0.01}))
    assert load_params(tmp_path / "p.json") == {"lr": 0.01}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_params(tmp_path / "bad.json")
