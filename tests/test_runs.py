"""Run folders as commands read them (pipelines.runs.load) and task names (pipelines.task_name),
on hand-made folders: no training."""
from __future__ import annotations

import json
import re

import pytest

from core.config import TrainConfig
from core.errors import UsageError
from pipelines import TASK_NAMES, resolve_task, runs, task_name


def _run(root, task, name, state, **config):
    """A run folder as train leaves it, minus the models: config.json, status.json (metrics.json when complete)."""
    path = root / task / name
    path.mkdir(parents=True)
    cfg = TrainConfig(task=task, **config).to_dict()
    (path / "config.json").write_text(json.dumps({"config": cfg, "data_dir": None}))
    (path / "status.json").write_text(json.dumps({"state": state}))
    if state == "complete":
        (path / "metrics.json").write_text(json.dumps({"metric": "accuracy", "cv": {"accuracy": 0.8}}))
    return path


@pytest.fixture
def root(tmp_path):
    _run(tmp_path, "titanic", "20240101-000000-mlp-s0", "complete", epochs=3)
    _run(tmp_path, "titanic", "20240102-000000-mlp-s0", "interrupted")
    _run(tmp_path, "titanic", "20240103-000000-mlp-s0", "failed")
    _run(tmp_path, "otto", "20240104-000000-mlp-s0", "complete")
    return tmp_path


def test_load_reads_the_run_config_state_and_metrics(root):
    run = runs.load("titanic", "latest", runs_root=root)      # the newest complete one
    assert run.name == "20240101-000000-mlp-s0" and run.state == "complete" and run.task == "titanic"
    assert run.config == TrainConfig(task="titanic", epochs=3) and run.metrics["cv"] == {"accuracy": 0.8}
    assert runs.load("titanic", "latest", require="unfinished", runs_root=root).name == "20240103-000000-mlp-s0"
    unfinished = runs.load("titanic", "20240102-000000-mlp-s0", require=None, runs_root=root)
    assert unfinished.state == "interrupted" and unfinished.metrics is None
    by_path = runs.load("otto", str(root / "otto" / "20240104-000000-mlp-s0"), runs_root=root)
    assert by_path.path == root / "otto" / "20240104-000000-mlp-s0"


@pytest.mark.parametrize("task, run, require, message", [
    ("otto", "{root}/titanic/20240101-000000-mlp-s0", "complete", "run 20240101-000000-mlp-s0 is a titanic run, not otto"),
    ("otto", "{root}/titanic/20240102-000000-mlp-s0", "unfinished", "run 20240102-000000-mlp-s0 is a titanic run, not otto"),
    ("titanic", "20240102-000000-mlp-s0", "complete",
     "run 20240102-000000-mlp-s0 is interrupted, not complete; finish it with `train titanic --resume 20240102-000000-mlp-s0`"),
    ("titanic", "20240101-000000-mlp-s0", "unfinished", "run 20240101-000000-mlp-s0 is already complete; nothing to resume"),
    ("titanic", "nope", "complete", "run 'nope' not found under "),
    ("otto", "latest", "unfinished", "no interrupted or failed otto run under "),
])
def test_load_refuses_a_run_of_another_task_or_state_in_one_line(root, task, run, require, message):
    with pytest.raises(UsageError) as e:
        runs.load(task, run.format(root=root), require=require, runs_root=root)
    assert str(e.value).startswith(message) and "\n" not in str(e.value), e.value


def test_load_without_a_task_searches_every_task(root):
    assert runs.load(None, "latest", require=None, runs_root=root).name == "20240104-000000-mlp-s0"
    assert runs.load(None, "20240102-000000-mlp-s0", require=None, runs_root=root).task == "titanic"
    with pytest.raises(UsageError, match="run 'nope' not found under"):
        runs.load(None, "nope", require=None, runs_root=root)


def test_load_of_a_damaged_or_newer_config_is_one_line(root):
    run = root / "titanic" / "20240101-000000-mlp-s0"
    saved = json.loads((run / "config.json").read_text())
    saved["config"]["warp_factor"] = 9               # written by a newer version of the code
    (run / "config.json").write_text(json.dumps(saved))
    loaded = runs.load("titanic", run.name, runs_root=root)     # read without its config: report still works
    with pytest.raises(UsageError, match=r"config key\(s\) warp_factor unknown to this version"):
        loaded.config
    (run / "config.json").write_text("[]")
    with pytest.raises(UsageError, match=r"config.json: no 'config' in it"):
        runs.load("titanic", run.name, runs_root=root)


def test_a_run_from_before_jobs_reads_as_one_fold_at_a_time(root):
    run = root / "titanic" / "20240101-000000-mlp-s0"
    saved = json.loads((run / "config.json").read_text())
    del saved["config"]["jobs"]
    (run / "config.json").write_text(json.dumps(saved))
    assert runs.load("titanic", run.name, runs_root=root).config.jobs == 1


@pytest.mark.parametrize("name", TASK_NAMES)
def test_a_registered_task_name_resolves(name):
    assert task_name(name) == name and resolve_task(name).name == name


@pytest.mark.parametrize("name, guess", [("otot", "otto"), ("titanik", "titanic"), ("zzz", None)])
def test_an_unknown_task_name_is_one_line_with_a_guess_and_the_known_names(name, guess):
    known = re.escape(", ".join(sorted(TASK_NAMES)))
    hint = rf" \(did you mean '{guess}'\?\)" if guess else ""
    for resolve in (task_name, resolve_task):
        with pytest.raises(UsageError, match=rf"^unknown task '{name}'{hint}; known: {known} \(a new competition: "
                                             r"pass --data-dir DIR holding its train, test and sample submission\)$"):
            resolve(name)
