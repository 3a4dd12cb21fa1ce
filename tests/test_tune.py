"""Optuna tuning: search spaces, a tiny study, resume, crash recovery, params round trip, bad input."""
from __future__ import annotations

import json
import re

import optuna
import pytest
from typer.testing import CliRunner

from cli import app, main
from core.errors import UsageError
from pipelines import TASKS
from pipelines.tune import best_params_path, search_space, study_dir, tune
from tasks import titanic as titanic_task


def _spaces(name: str) -> list:
    """The models a task keeps a search space for (None: one space, its default model's)."""
    spaces = TASKS.create(name).search_space
    return list(spaces) if isinstance(spaces, dict) else [None]


@pytest.mark.parametrize("name,model", [(n, m) for n in TASKS.names() for m in _spaces(n)])
def test_search_space_samples_valid_configs(name, model, monkeypatch):
    monkeypatch.undo()                                  # the real search spaces
    task = TASKS.create(name)
    space = search_space(task, {"model": model} if model else {})[0]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    configs = set()
    for _ in range(20):
        trial = study.ask()
        params = space(trial)
        assert params and set(params) == set(trial.params)     # every suggestion reaches the config
        cfg = task.config(**({"model": model} if model else {}), **params)    # validated as the CLI's are
        for key, value in params.items():              # taken as sampled, not replaced by a default
            assert getattr(cfg, key) == value, (key, getattr(cfg, key), value)
        configs.add(json.dumps(cfg.to_dict(), sort_keys=True))     # `trees` is a dict: no tuple of items
        study.tell(trial, 0.0)
    assert len(configs) > 1                            # the space varies the config it builds


@pytest.mark.parametrize("name,model", [(n, m) for n in TASKS.names() for m in _spaces(n)])
def test_the_defaults_trial_lies_inside_the_search_space(name, model, monkeypatch):
    """Trial 0 is the model's defaults: each value the space samples must be one it can sample, or
    Optuna keeps it with only a warning, and the sampler learns from a point outside its space."""
    import warnings
    monkeypatch.undo()
    task = TASKS.create(name)
    space, defaults, _ = search_space(task, {"model": model} if model else {})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(defaults, skip_if_exists=False)
    trial = study.ask()
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # "Fixed parameter ... out of range" would raise
        params = space(trial)
    assert {k: params[k] for k in params if k in defaults} == {k: defaults[k] for k in params if k in defaults}


def test_a_task_with_a_space_per_model_tunes_the_one_for_the_model_chosen():
    """Otto: TabM's space by default, with TabM's defaults as trial 0; the MLP's with --set
    model=mlp, with the MLP's; a net it keeps no space for is one line naming those it has."""
    from tasks import otto as otto_task
    otto = TASKS.create("otto")
    space, defaults, label = search_space(otto, {})
    assert (space, label, defaults["width"], defaults["stopping"]) == (otto_task.tabm_space, "task:tabm", 384, "fixed")
    space, defaults, label = search_space(otto, {"model": "mlp"})
    assert (space, label, defaults["width"], defaults["stopping"]) == (otto_task.mlp_space, "task:mlp", 1024, "refit")
    with pytest.raises(UsageError, match=r"^tune otto: no search space for model 'otto_course'; otto tunes tabm, mlp"):
        search_space(otto, {"model": "otto_course"})


def tiny_space(trial) -> dict:
    return {"lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True), "width": trial.suggest_int("width", 4, 16),
            "epochs": trial.suggest_int("epochs", 2, 4)}


@pytest.fixture(autouse=True)
def _small_search(monkeypatch):
    """Titanic's real search space trains up to 100 epochs x 3 bags; the mechanics need far less."""
    monkeypatch.setattr("tasks.titanic.search_space", tiny_space)
    # the mechanics on one learner: Titanic's default pair would train LightGBM beside every MLP trial;
    # and one fit per fold (the default stopping=refit fits twice: its own test tunes with it)
    monkeypatch.setitem(titanic_task.DEFAULTS, "model", "mlp")
    monkeypatch.setitem(titanic_task.DEFAULTS, "stopping", "inner")


def _tiny(task_runs, titanic_dir, trials, **kw):
    return tune("titanic", trials, folds=2, data_dir=titanic_dir, runs_root=task_runs, seed=0, device="cpu",
                fixed={"bags": 1}, **kw)


def _study(runs_dir) -> optuna.Study:
    """The default study `_tiny` writes under runs_dir, as it stands now."""
    url = f"sqlite:///{study_dir(runs_dir, 'titanic', 'titanic-tune') / 'study.db'}"
    return optuna.load_study(study_name="titanic-tune", storage=url)


@pytest.mark.slow
def test_study_completes_resumes_and_replays(titanic_dir, runs_dir):
    first = _tiny(runs_dir, titanic_dir, 3)
    assert first.n_complete + first.n_pruned == 3 and first.n_complete >= 1
    assert len(_study(runs_dir).trials) == 3
    second = _tiny(runs_dir, titanic_dir, 2)                      # the same command continues the study
    assert len(_study(runs_dir).trials) == 5
    best = json.loads(best_params_path(runs_dir, "titanic").read_text())
    assert best == second.best_params and {"lr", "width"} <= set(best)
    assert any(p.name == "history.png" for p in second.plots)

    # best params round-trip into train
    result = CliRunner().invoke(app, ["train", "titanic", "--params", "best", "--folds", "2", "--epochs", "1",
                                      "--quiet", "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir),
                                      "--out", str(runs_dir / "sub.csv")])
    assert result.exit_code == 0, result.output
    [run] = [p for p in (runs_dir / "titanic").iterdir() if p.name != "studies"]
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert cfg["lr"] == best["lr"] and cfg["width"] == best["width"] and cfg["epochs"] == 1


@pytest.mark.slow
def test_same_seed_proposes_same_params(titanic_dir, tmp_path):
    a = _tiny(tmp_path / "a", titanic_dir, 2)
    b = _tiny(tmp_path / "b", titanic_dir, 2)
    assert [r["lr"] for r in a.top] == [r["lr"] for r in b.top]


@pytest.mark.slow
def test_crashed_running_trial_does_not_block_resume(titanic_dir, runs_dir, monkeypatch):
    _tiny(runs_dir, titanic_dir, 1)
    storage_url = f"sqlite:///{study_dir(runs_dir, 'titanic', 'titanic-tune') / 'study.db'}"
    storage = optuna.storages.RDBStorage(storage_url, heartbeat_interval=1, grace_period=1)
    study = _study(runs_dir)
    stale = study.ask()                                  # a worker that died mid-trial: RUNNING forever
    storage.record_heartbeat(stale._trial_id)
    monkeypatch.setattr("pipelines.studies.HEARTBEAT_S", 1)
    monkeypatch.setattr("pipelines.studies.GRACE_S", 1)
    import time
    time.sleep(2.5)
    result = _tiny(runs_dir, titanic_dir, 1)
    states = [t.state for t in optuna.load_study(study_name="titanic-tune", storage=storage_url).trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 1 and optuna.trial.TrialState.RUNNING not in states
    assert result.n_failed == 1


@pytest.mark.parametrize("args, msg", [
    (["tune", "titanic", "--storage", "nosuchdb://x"], "cannot open storage"),
    (["tune", "titanic", "--trials", "0"], "--trials must be at least 1"),
    (["tune", "titanic", "--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["tune", "titanic", "--jobs", "2", "--storage", "sqlite://"], "needs a storage its worker processes can share"),
    (["train", "titanic", "--params", "best"], "no tuned params"),
    (["train", "titanic", "--params", "best:nosuchstudy"], "study 'nosuchstudy'"),
    # these set the study's folds and device: as --set they reached the trials but not the folds
    (["tune", "titanic", "--set", "seed=5"], "use tune's own --seed option"),
    (["tune", "titanic", "--set", "folds=2"], "use tune's own --folds option"),
    (["tune", "titanic", "--set", "device=cuda"], "use tune's own --device option"),
    # one fit with fixed settings: every trial would be the same
    (["tune", "titanic", "--model", "logreg"], r"--model logreg: nothing to tune"),
    (["tune", "titanic", "--model", "logreg+knn"], r"--model logreg\+knn: nothing to tune"),
])
def test_tune_bad_input(args, msg, runs_dir, capsys):
    code = main(args + ["--runs-dir", str(runs_dir), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and re.search(msg, err), err
    assert not (runs_dir / "titanic" / "studies").exists()


class _PruneAtHalf(optuna.pruners.BasePruner):
    """Prunes every trial after the first the moment fold 0 reaches half of its schedule."""
    def __init__(self, *args, **kwargs):
        pass

    def prune(self, study, trial) -> bool:
        return trial.number > 0 and trial.last_step == 2


def test_fold0_reports_at_fractions_of_its_own_schedule_and_pruning_records_progress(
        titanic_dir, runs_dir, monkeypatch):
    from pipelines.tune import FOLD_STEP, QUARTERS
    from pipelines.tune_summary import pruned_saving
    monkeypatch.setattr("pipelines.tune.optuna.pruners.MedianPruner", _PruneAtHalf)
    # patience past every schedule: an early stop would end fold 0 before its last quarter
    result = tune("titanic", 3, folds=2, data_dir=titanic_dir, runs_root=runs_dir, seed=0, device="cpu",
                  fixed={"bags": 1, "patience": 1000})
    trials = optuna.load_study(study_name="titanic-tune",
                               storage=f"sqlite:///{result.study_dir / 'study.db'}").trials
    first, *pruned = trials
    # the complete trial reported each quarter of fold 0 (whatever its epoch count) and each fold's CV
    assert sorted(first.intermediate_values) == [1, 2, 3, 4, FOLD_STEP, FOLD_STEP + 1]
    assert result.n_pruned == 2 and all(t.state == optuna.trial.TrialState.PRUNED for t in pruned)
    for t in pruned:
        epochs = t.params["epochs"]
        assert sorted(t.intermediate_values) == [1, 2]                  # stopped at half of fold 0
        half = next(e for e in range(1, epochs + 1) if QUARTERS * e // epochs >= 2)
        assert t.user_attrs["done"] == pytest.approx(half / epochs / 2)  # of 2 folds x 1 bag
    # saved time: what the trial would still have needed at its own pace
    secs = sum((t.datetime_complete - t.datetime_start).total_seconds() * (1 / t.user_attrs["done"] - 1)
               for t in pruned)
    assert result.seconds_saved == pytest.approx(secs)
    legacy = optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, intermediate_values={3: 0.5})
    assert pruned_saving(legacy, 10.0) == 0.0
    assert pruned_saving(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, user_attrs={"done": 0.25},
                                                   intermediate_values={2: 0.5}), 10.0) == pytest.approx(30.0)


def test_a_trial_gets_its_models_own_defaults_unless_it_samples_the_key(titanic_dir, runs_dir, monkeypatch):
    """Trials start from the task's and the chosen model's defaults, as `train --model` does, not
    from the default model's full config."""
    from models import MODELS
    monkeypatch.setitem(MODELS.tags, "logistic", {"kind": "tabular", "defaults": {"lr": 0.0123, "epochs": 3}})
    monkeypatch.setattr("tasks.titanic.search_space", lambda trial: {
        "model": trial.suggest_categorical("model", ["mlp", "logistic"]),     # trial 0 is the default: mlp
        "epochs": trial.suggest_int("epochs", 2, 2)})
    seen = []

    def fake_cv(inputs, cfg, **kw):
        seen.append(cfg)
        return {"cv": {"accuracy": 0.5}}
    monkeypatch.setattr("pipelines.tune.cross_validate", fake_cv)
    _tiny(runs_dir, titanic_dir, 4)
    titanic = TASKS.create("titanic")
    assert {(c.model, c.lr) for c in seen} == {("mlp", titanic.defaults["lr"]), ("logistic", 0.0123)}
    assert all(c.bags == 1 for c in seen)
    assert all(c.epochs == 2 for c in seen if c.model == "logistic")      # sampled beats the model's 3


def test_the_summary_shows_the_values_a_trial_held_not_the_ones_it_sampled(titanic_dir, runs_dir):
    """--set epochs=2 overrides the sampled epochs in every trial; the table and best_params say 2."""
    result = tune("titanic", 2, folds=2, data_dir=titanic_dir, runs_root=runs_dir, seed=0, device="cpu",
                  fixed={"bags": 1, "epochs": 2})
    assert result.top and all(row["epochs"] == 2 and row["bags"] == 1 for row in result.top)
    assert result.best_params["epochs"] == 2


def _trials(result):
    return optuna.load_study(study_name=result.study_dir.name, storage=f"sqlite:///{result.study_dir / 'study.db'}").trials


@pytest.mark.slow
def test_a_continued_study_does_not_replay_the_draws_of_the_first_run(titanic_dir, runs_dir):
    _tiny(runs_dir, titanic_dir, 3)
    trials = _trials(_tiny(runs_dir, titanic_dir, 3))          # same command, same --seed: "rerun to continue"
    drawn = [t.params["lr"] for t in trials[1:]]                 # trial 0 is the defaults
    assert len(trials) == 6 and len(set(drawn)) == len(drawn)


def test_the_defaults_trial_is_enqueued_again_when_it_never_finished(titanic_dir, runs_dir, monkeypatch):
    import pipelines.tune as tune_module
    real = tune_module.cross_validate

    def interrupted_once(*args, **kwargs):
        monkeypatch.setattr(tune_module, "cross_validate", real)
        raise KeyboardInterrupt
    monkeypatch.setattr(tune_module, "cross_validate", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        _tiny(runs_dir, titanic_dir, 2)
    trials = _trials(_tiny(runs_dir, titanic_dir, 1))
    defaults = dict(TASKS.create("titanic").defaults)
    assert trials[0].state == optuna.trial.TrialState.FAIL
    assert trials[1].state == optuna.trial.TrialState.COMPLETE and trials[1].system_attrs["fixed_params"] == defaults


def test_best_params_hold_the_whole_config_the_best_trial_trained_with(titanic_dir, runs_dir):
    result = _tiny(runs_dir, titanic_dir, 2)
    best = json.loads(best_params_path(runs_dir, "titanic").read_text())
    assert best == result.best_params
    assert {"lr", "width", "dropout", "shrink", "model", "batch_size"} <= set(best)  # not only the sampled keys
    assert not {"task", "seed", "folds", "device"} & set(best)                      # the study's, not the trial's
    assert best["bags"] == 1                                                         # what --set held


def test_a_study_of_another_task_is_refused(titanic_dir, runs_dir, tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    _tiny(runs_dir, titanic_dir, 1, study="s", storage=storage)
    with pytest.raises(UsageError, match="study 's' tunes titanic, not diabetes"):
        tune("diabetes", 1, folds=2, runs_root=runs_dir, device="cpu", study="s", storage=storage)


def test_data_too_small_for_a_trial_is_one_line_and_leaves_no_study(titanic_dir, runs_dir, capsys):
    import pandas as pd
    df = pd.read_csv(titanic_dir / "train.csv").head(24)
    df.assign(Survived=(df.index < 2).astype(int)).to_csv(titanic_dir / "train.csv", index=False)
    code = main(["tune", "titanic", "--trials", "1", "--folds", "2", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(runs_dir), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "a class has 1 row in a training fold" in err, err
    assert not (runs_dir / "titanic" / "studies").exists()
    shared = f"sqlite:///{runs_dir / 'shared.db'}"       # a shared storage keeps no trace either
    assert main(["tune", "titanic", "--trials", "1", "--folds", "2", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(runs_dir), "--quiet", "--storage", shared]) == 2
    assert optuna.get_all_study_names(shared) == []


@pytest.mark.slow
def test_a_defaults_trial_left_running_by_a_killed_worker_is_tried_again(titanic_dir, runs_dir, monkeypatch):
    import time
    folder = study_dir(runs_dir, "titanic", "k")
    folder.mkdir(parents=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'study.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="k", storage=storage)      # a worker started the study ...
    study.set_user_attr("task", "titanic")
    defaults = dict(TASKS.create("titanic").defaults)
    study.enqueue_trial(defaults)
    stale = study.ask()                                   # ... and was killed in its defaults trial
    storage.record_heartbeat(stale._trial_id)
    monkeypatch.setattr("pipelines.studies.HEARTBEAT_S", 1)
    monkeypatch.setattr("pipelines.studies.GRACE_S", 1)
    time.sleep(2.5)
    trials = _trials(_tiny(runs_dir, titanic_dir, 1, study="k"))
    assert trials[0].state == optuna.trial.TrialState.FAIL
    assert trials[1].state == optuna.trial.TrialState.COMPLETE and trials[1].system_attrs["fixed_params"] == defaults


def test_a_pruned_trial_is_logged_without_a_value(titanic_dir, runs_dir, monkeypatch, caplog):
    import logging
    monkeypatch.setattr("pipelines.tune.optuna.pruners.MedianPruner", _PruneAtHalf)
    caplog.set_level(logging.INFO)
    assert main(["tune", "titanic", "--trials", "2", "--folds", "2", "--set", "bags=1", "--set", "patience=1000",
                 "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir), "--device", "cpu"]) == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("trial ")]
    assert lines[0].startswith("trial 0: complete  value ") and lines[1] == "trial 1: pruned", lines


@pytest.mark.slow
def test_trials_side_by_side_share_the_study(titanic_dir, runs_dir):
    """`jobs=2`: two worker processes run the trials on the study's SQLite file, at the same time,
    with the search space this process has (the test's, which a worker only gets from here);
    each finished trial reaches on_trial in this process, and trial 0 is still the defaults."""
    seen = []
    result = _tiny(runs_dir, titanic_dir, 5, jobs=2, on_trial=lambda st, t: seen.append((t.number, t.state)))
    trials = _trials(result)
    assert len(trials) == 5 and sorted(n for n, _ in seen) == [0, 1, 2, 3, 4]
    assert all(state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for _, state in seen)
    assert result.n_complete + result.n_pruned == 5
    assert trials[0].system_attrs["fixed_params"] == TASKS.create("titanic").default_params
    assert all(set(t.params) == {"lr", "width", "epochs"} for t in trials[1:])      # tiny_space, not titanic's
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))    # two ran at once
    assert json.loads(best_params_path(runs_dir, "titanic").read_text()) == result.best_params


@pytest.mark.slow     # seconds: the quick suite stays under 90 s on 2 cores
def test_a_trial_failing_on_bad_data_in_a_worker_is_one_line_and_leaves_no_study(titanic_dir, runs_dir, capsys):
    import pandas as pd
    df = pd.read_csv(titanic_dir / "train.csv").head(24)
    df.assign(Survived=(df.index < 2).astype(int)).to_csv(titanic_dir / "train.csv", index=False)
    code = main(["tune", "titanic", "--trials", "2", "--jobs", "2", "--folds", "2", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(runs_dir), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "a class has 1 row in a training fold" in err, err
    assert not (runs_dir / "titanic" / "studies").exists()


def long_space(trial) -> dict:
    """Sampled trials run far longer than the defaults trial, which keeps its enqueued 60 epochs: 2000
    epochs (about 20 s of tiny Titanic) that early stopping cannot cut short. With Titanic's patience
    of 15 a sampled trial once stopped before the defaults trial had, and the interrupt found nothing
    left running."""
    return {"lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True), "epochs": trial.suggest_int("epochs", 2000, 2001),
            "patience": 10_000}


@pytest.mark.slow
def test_an_interrupted_side_by_side_tune_leaves_no_trial_running(titanic_dir, runs_dir, monkeypatch):
    """Ctrl-C (here: raised where the parent hears of the defaults trial) kills the workers; the
    trial another worker had under way is failed at once, as Optuna fails one interrupted in its
    own process, rather than RUNNING until the heartbeat's grace period ends."""
    monkeypatch.setattr("tasks.titanic.search_space", long_space)

    def interrupt(st, trial):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _tiny(runs_dir, titanic_dir, 2, jobs=2, on_trial=interrupt)
    states = [t.state for t in _study(runs_dir).trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL], states


def killed_space(trial) -> dict:
    """What the out-of-memory killer does to a trial's worker."""
    import os
    import signal
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.slow
def test_a_killed_tune_worker_is_one_line_exit_1_and_fails_its_trial(titanic_dir, runs_dir, monkeypatch, capsys):
    monkeypatch.setattr("tasks.titanic.search_space", killed_space)
    code = main(["tune", "titanic", "--trials", "2", "--jobs", "2", "--folds", "2", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(runs_dir), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "SIGKILL" in err and "the same command continues it" in err, err
    states = {t.state for t in _study(runs_dir).trials}
    assert optuna.trial.TrialState.RUNNING not in states


def killed_after_an_unmarked_ask(trial) -> dict:
    """Leaves what a worker killed between Optuna's ask() and the command's mark leaves: a RUNNING
    trial without the mark (its own ask, in the window), then dies."""
    trial.study.ask()
    killed_space(trial)


@pytest.mark.slow
def test_a_trial_its_killed_worker_asked_for_but_never_marked_is_failed_too(titanic_dir, runs_dir, monkeypatch, capsys):
    """The window between ask() and the mark, taken in 1 of 12 runs of the test above."""
    monkeypatch.setattr("tasks.titanic.search_space", killed_after_an_unmarked_ask)
    code = main(["tune", "titanic", "--trials", "2", "--jobs", "2", "--folds", "2", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(runs_dir), "--quiet"])
    assert code == 1, capsys.readouterr().err
    trials = _study(runs_dir).trials
    assert any("tune_command" not in t.user_attrs for t in trials)          # the unmarked one was made
    assert optuna.trial.TrialState.RUNNING not in {t.state for t in trials}


@pytest.mark.slow
def test_queued_trials_all_go_to_the_first_worker_and_the_others_start_after(titanic_dir, runs_dir):
    """A study with more queued trials than one worker's share (the defaults plus a user's): the
    first worker takes all of them, the second starts once they are taken; each runs once.
    (The second worker used to wait for an empty queue, which the first never left: a hang.)"""
    _tiny(runs_dir, titanic_dir, 1)                                   # trial 0: the defaults
    study = _study(runs_dir)
    for lr in (0.002, 0.004, 0.006):
        study.enqueue_trial({"lr": lr, "width": 8, "epochs": 2})
    _tiny(runs_dir, titanic_dir, 4, jobs=2, timeout=900)   # a bound for the old hang, not a speed test
    trials = _study(runs_dir).trials
    assert {t.state for t in trials} <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert len(trials) == 5 and [t.params["lr"] for t in trials[1:4]] == [0.002, 0.004, 0.006]


def test_a_storage_that_does_not_open_is_one_line_without_the_password_and_leaves_no_study(runs_dir, capsys):
    """The connection is refused (nothing listens on port 1): the storage's message, not "study 'X':
    ..." (UsageError is a ValueError, and that branch used to catch it first)."""
    pytest.importorskip("psycopg2")
    code = main(["tune", "titanic", "--storage", "postgres://u:secret@127.0.0.1:1/db", "--runs-dir", str(runs_dir),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: cannot open storage 'postgresql+psycopg2://u:***@127.0.0.1:1/db': "), err
    assert "secret" not in err
    assert not (runs_dir / "titanic" / "studies").exists()


def test_a_missing_driver_names_the_package_to_install(runs_dir, capsys):
    import importlib.util
    if importlib.util.find_spec("psycopg") is not None:
        pytest.skip("psycopg (3) is installed here")
    code = main(["tune", "titanic", "--storage", "postgresql+psycopg://u@127.0.0.1:1/db", "--runs-dir", str(runs_dir),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "module 'psycopg' is not installed (pip install psycopg[binary])" in err, err


def test_the_default_storage_failing_to_open_removes_the_new_study_folder(titanic_dir, runs_dir, monkeypatch, capsys):
    """The default SQLite file's folder is made before the database opens: a new one goes again."""
    import sqlalchemy.exc

    def disk_full(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("CREATE TABLE studies", {}, Exception("database or disk is full"))
    monkeypatch.setattr("pipelines.tune.optuna.storages.RDBStorage", disk_full)
    code = main(["tune", "titanic", "--trials", "1", "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: cannot open storage 'sqlite:///"), err
    assert "database or disk is full" in err
    assert not (runs_dir / "titanic" / "studies").exists()


def _fail_running_trial(runs_dir) -> None:
    """What a stale check in another process does to this one's trial: ends it as failed."""
    study = _study(runs_dir)
    [running] = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    study.tell(running.number, state=optuna.trial.TrialState.FAIL)


@pytest.mark.parametrize("then", ["reports", "returns"])
def test_a_trial_failed_under_its_live_worker_is_logged_and_the_worker_goes_on(
        then, titanic_dir, runs_dir, monkeypatch, caplog):
    """Its heartbeat late past the grace period (a stalled machine), another process fails the trial
    while it trains; the next report, or the value at the end, meets a finished trial. Optuna's
    optimize raised there ("Cannot tell a FAIL trial", exit 2); the worker warns and runs its next."""
    import logging
    calls = []

    def fake_cv(inputs, cfg, on_fold=None, **kw):
        calls.append(cfg)
        if len(calls) == 1:
            _fail_running_trial(runs_dir)
            if then == "reports":
                on_fold(0, {"accuracy": 0.5})
        return {"cv": {"accuracy": 0.5 + len(calls) / 100}}
    monkeypatch.setattr("pipelines.tune.cross_validate", fake_cv)
    caplog.set_level(logging.WARNING, logger="pipelines.studies")
    seen = []
    result = _tiny(runs_dir, titanic_dir, 3, on_trial=lambda st, t: seen.append((t.number, t.state)))
    states = optuna.trial.TrialState
    assert seen == [(0, states.FAIL), (1, states.COMPLETE), (2, states.COMPLETE)]
    assert result.n_failed == 1 and result.n_complete == 2
    [warning] = [r.getMessage() for r in caplog.records if r.name == "pipelines.studies"]
    assert warning.startswith("trial 0 was ended (fail) by another process while this one ran it"), warning


@pytest.mark.slow
def test_a_refit_trial_prunes_on_its_first_fit_only(titanic_dir, tmp_path, monkeypatch):
    """stopping=refit: fold 0's intermediate values come from the fit that chooses the epochs; the
    second fit's epochs (a count already chosen) report nothing, so no step is reported twice."""
    monkeypatch.setitem(titanic_task.DEFAULTS, "stopping", "refit")
    reported = []
    real = optuna.trial.Trial.report

    def spy(self, value, step):
        reported.append((self.number, step))
        return real(self, value, step)
    monkeypatch.setattr(optuna.trial.Trial, "report", spy)
    runs_dir = tmp_path / "runs"
    assert main(["tune", "titanic", "--trials", "2", "--folds", "2", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(runs_dir), "--quiet"]) == 0
    for number in (0, 1):
        steps = [s for n, s in reported if n == number]
        assert steps == sorted(set(steps)) and len(steps) >= 3, steps      # the quarters, then each fold


@pytest.mark.slow
def test_a_study_keeps_to_the_space_of_the_model_it_began_with(tmp_path, runs_dir):
    """A task with a space per model: a study begun on one model's space refuses another's in one
    line (TPE cannot mix two sets of params), naming both."""
    import dataclasses

    from tiny_tasks import regression_frame, registered, table_task, write_competition
    data = write_competition(tmp_path / "reg", regression_frame(90), regression_frame(8, seed=1))
    space = lambda trial: {"lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True)}     # noqa: E731
    task = dataclasses.replace(table_task("tspace"), search_space={"mlp": space, "tabm": space})
    with registered(task):
        tune("tspace", trials=1, folds=2, data_dir=data, runs_root=runs_dir, fixed={"epochs": 2})
        with pytest.raises(UsageError, match=r"searches the task's search space for mlp, not the task's search "
                                             r"space for tabm; pick another --study name"):
            tune("tspace", trials=1, folds=2, data_dir=data, runs_root=runs_dir, fixed={"epochs": 2, "model": "tabm"})
