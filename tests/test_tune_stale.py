"""A `tune` process killed with SIGKILL in the defaults trial, while another tunes the same study:
the live one fails the dead trial once its heartbeat is stale and runs the defaults again; and the
same within one process, a dead worker's trial failed while a trial of the live one trains.

The processes run with a 1 s heartbeat and a 3 s grace period (set in the child, the way a test
shortens them in-process) instead of 10 s and 60 s. `killed_worker_scenario` is shared with
tests/test_tune_postgres.py, which runs it on a real PostgreSQL server.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import optuna
import pytest

from pipelines import TASKS
from pipelines.tune import study_dir
from tests.conftest import ROOT
from tests.test_tune import _tiny, _trials

HEARTBEAT_S, GRACE_S = 1, 3
# argv: MARKER CLI-ARGS... With a MARKER path, the process writes its trial's number there as the
# trial starts, then trains for ever (to be killed); with '-', it tunes a tiny space.
CHILD = f"""
import pathlib, sys, time
import tasks.titanic, pipelines.studies
pipelines.studies.HEARTBEAT_S, pipelines.studies.GRACE_S = {HEARTBEAT_S}, {GRACE_S}
marker = sys.argv[1]

def space(trial):
    if marker != "-":
        pathlib.Path(marker).write_text(str(trial.number))
        time.sleep(3600)
    return {{"lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True), "epochs": trial.suggest_int("epochs", 2, 4)}}
tasks.titanic.search_space = space
from cli import main
sys.exit(main(sys.argv[2:]))
"""


def _until(condition, seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"no {what} within {seconds} s")
        time.sleep(0.2)


def killed_worker_scenario(tmp_path: Path, titanic_dir: Path, storage: str | None, opened: str, study: str) -> None:
    """`storage`: tune's --storage (None: the default SQLite file); `opened`: the same database as
    this process opens it. The live process tunes for 15 s from its first trial on."""
    common = ["tune", "titanic", "--folds", "2", "--set", "bags=1", "--study", study, "--device", "cpu",
              "--quiet", "--data-dir", str(titanic_dir), "--runs-dir", str(tmp_path / "runs")]
    common += ["--storage", storage] if storage else []
    marker = tmp_path / "doomed-trial"
    start = lambda *args: subprocess.Popen([sys.executable, "-c", CHILD, *args], cwd=ROOT, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
    doomed = start(str(marker), *common, "--trials", "1")
    live = None
    try:
        _until(lambda: marker.exists() and marker.read_text() or doomed.poll() is not None, 120, "trial started")
        assert doomed.poll() is None and marker.read_text() == "0", doomed.communicate()[1]   # the defaults trial
        live = start("-", *common, "--trials", "200", "--timeout", "15")
        trials = lambda: optuna.load_study(study_name=study, storage=opened).get_trials(deepcopy=False)
        _until(lambda: len(trials()) > 1 or live.poll() is not None, 120, "trial of the live process")
        killed_at = datetime.now()
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
        out, err = live.communicate(timeout=120)
    finally:
        for p in (doomed, live):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert live.returncode == 0 and "Traceback" not in err, err
    dead, *rest = optuna.load_study(study_name=study, storage=opened).trials
    states = optuna.trial.TrialState
    assert dead.state == states.FAIL and states.RUNNING not in {t.state for t in rest}
    # failed by the live process's check, a grace period after the last beat (its clock: seconds)
    assert (dead.datetime_complete - killed_at).total_seconds() < GRACE_S + 2 * HEARTBEAT_S + 3
    defaults = TASKS.create("titanic").default_params
    again = [t for t in rest if t.system_attrs.get("fixed_params") == defaults]
    assert len(again) == 1 and again[0].state in (states.COMPLETE, states.PRUNED), [t.state for t in again]
    assert again[0].datetime_start > dead.datetime_complete


@pytest.mark.slow
def test_a_killed_tune_process_trial_is_failed_and_its_defaults_rerun_by_a_live_one(tmp_path, titanic_dir):
    db = tmp_path / "runs" / "titanic" / "studies" / "shared" / "study.db"
    killed_worker_scenario(tmp_path, titanic_dir, None, f"sqlite:///{db}", "shared")


@pytest.mark.slow     # several seconds; CI's whole suite runs it
def test_a_live_process_fails_a_killed_workers_trial_mid_trial_and_runs_the_defaults_again(
        titanic_dir, runs_dir, monkeypatch, caplog):
    """A worker died in the defaults trial a moment ago (its heartbeat still fresh, so the start-up
    check leaves it); this process's first trial outlasts the grace period. The trial is failed while
    that trial trains, not only when one starts, and the defaults are this process's next trial."""
    import logging
    import time
    monkeypatch.setattr("pipelines.studies.HEARTBEAT_S", 1)
    monkeypatch.setattr("pipelines.studies.GRACE_S", 2)
    folder = study_dir(runs_dir, "titanic", "titanic-tune")
    folder.mkdir(parents=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'study.db'}", heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name="titanic-tune", storage=storage)
    study.set_user_attr("task", "titanic")
    defaults = TASKS.create("titanic").default_params
    study.enqueue_trial(defaults)
    storage.record_heartbeat(study.ask()._trial_id)        # its last beat: now

    calls = []

    def slow_cv(inputs, cfg, **kw):
        calls.append(cfg)
        if len(calls) == 1:
            time.sleep(4.5)           # the grace period and more (SQLite's clock counts whole seconds)
        return {"cv": {"accuracy": 0.5}}
    monkeypatch.setattr("pipelines.tune.cross_validate", slow_cv)
    caplog.set_level(logging.WARNING, logger="pipelines.studies")
    trials = _trials(_tiny(runs_dir, titanic_dir, 2))
    dead, first, again = trials
    assert dead.state == optuna.trial.TrialState.FAIL
    assert first.datetime_start < dead.datetime_complete < first.datetime_complete        # failed mid-trial
    assert again.system_attrs["fixed_params"] == defaults and again.state == optuna.trial.TrialState.COMPLETE
    assert any("trial 0 failed: no heartbeat from its worker for 2 s" in r.getMessage() for r in caplog.records)
