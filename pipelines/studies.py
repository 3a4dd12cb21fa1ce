"""Where a study's trials run and how they are kept: the storage, the heartbeat, failing the trials
of dead workers, and the loop that runs trials in this process. What is searched is pipelines/tune.py's.

A worker killed mid-trial (kill -9, the out-of-memory killer, a lost machine) leaves its trial
RUNNING in the storage. Each trial beats a heartbeat; every process running trials checks the
study every heartbeat interval (and before each trial) and fails the trials whose heartbeat is
older than the grace period, then queues the defaults trial again if it was one of them.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

import optuna

from core.errors import UsageError, first_line

# A running trial's heartbeat: Optuna's thread in the trial's process writes the time (the database's
# clock, so machines' clocks never disagree) every HEARTBEAT_S seconds; a RUNNING trial whose last beat
# is older than GRACE_S is taken for dead and failed by the next check of any live `tune` process.
# The beat needs the GIL (handed over every 5 ms even while the trainer runs) and one short write;
# on a loaded machine (every core training, --jobs, a SQLite file several writers lock in turn)
# that thread waits milliseconds to seconds, not a minute, so six beats missed in a row means a dead
# process, not a busy one. A killed worker's trial is failed 50-70 s after the kill (its last beat
# up to one interval before it, the check once an interval), against minutes of training a trial.
# Were a live trial failed all the same (the machine stalled a minute), its worker logs it and goes
# on with its next trial (`run_trials`).
HEARTBEAT_S = 10      # seconds between beats: one write per running trial
GRACE_S = 60          # seconds without a beat before a RUNNING trial is failed
# the drivers SQLAlchemy names a module after, and the package that installs the module
_DRIVER_PACKAGES = {"psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]", "pymysql": "PyMySQL",
                    "MySQLdb": "mysqlclient"}

log = logging.getLogger(__name__)


def storage_url(url: str) -> str:
    """--storage as SQLAlchemy should open it: `postgresql://` and Heroku's `postgres://` (which
    SQLAlchemy rejects) get the psycopg2 driver, the one the project installs (SQLAlchemy 2.1 would
    pick psycopg 3); a driver the URL names (`postgresql+psycopg://`) is kept."""
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError as e:
        raise UsageError(f"cannot open storage {url!r}: {first_line(e)}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres" or (backend == "postgresql" and not driver):
        return parsed.set(drivername=f"postgresql+{driver or 'psycopg2'}").render_as_string(hide_password=False)
    return url


def open_storage(url: str | None, folder: Path, defaults: dict | None = None, beat: tuple[int, int] | None = None):
    """The study's storage, with the heartbeat (`beat`: interval and grace in seconds, by default
    this module's); the `defaults` trial (`enqueue_defaults`) is queued again when a stale check fails it."""
    if url is None:
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / 'study.db'}"
    url = storage_url(url)
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url
    shown = make_url(url).render_as_string(hide_password=True)       # messages never print a password
    engine = {"pool_pre_ping": True}
    if url.startswith("sqlite"):     # trials side by side write to one file: wait for its lock (default 5 s)
        engine["connect_args"] = {"timeout": 60}
    heartbeat, grace = beat or (HEARTBEAT_S, GRACE_S)
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat, grace_period=grace,
                                              engine_kwargs=engine, heartbeat_stale_trial_callback=on_stale(defaults, grace))
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # workers started together on a fresh database race to create Optuna's tables;
            # the loser sees a duplicate-key error, and a moment later the tables exist
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
        except ImportError as e:    # Optuna's "Failed to import DB access module" says neither which nor how
            module = getattr(e.__cause__, "name", None) or "its driver"
            package = _DRIVER_PACKAGES.get(module, module)
            raise UsageError(f"cannot open storage {shown!r}: Python module {module!r} is not installed "
                             f"(pip install {package})") from None
        except Exception as e:      # bad scheme, unreachable server
            raise UsageError(f"cannot open storage {shown!r}: {first_line(e)}") from None


def on_stale(defaults: dict | None, grace: int) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """Called for each trial a stale check of this process failed."""
    def failed(st: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        log.warning("trial %d failed: no heartbeat from its worker for %d s (killed?)", trial.number, grace)
        if defaults is not None:
            enqueue_defaults(st, defaults)     # when the failed trial was the defaults
    return failed


def optimize(st: optuna.Study, objective: Callable, trials: int, timeout: float | None, folder: Path,
              tensorboard: bool, on_trial=None) -> None:
    """`trials` trials of the study, one after another, in this process, which meanwhile fails the
    study's stale trials every heartbeat interval."""
    callbacks = [on_trial] if on_trial else []
    tb = None
    if tensorboard:      # this process's trials, one event file per process under <study>/tensorboard/
        from pipelines.tblog import StudyLog
        tb = StudyLog(folder)
        callbacks.insert(0, tb.on_trial)
    stop = threading.Event()
    watch = threading.Thread(target=watch_stale, args=(st, stop), daemon=True, name="tune-stale-trials")
    watch.start()
    try:
        run_trials(st, objective, trials, timeout, callbacks)
    finally:
        stop.set()
        watch.join()
        if tb is not None:
            tb.close()


def watch_stale(st: optuna.Study, stop: threading.Event) -> None:
    """Every heartbeat interval until `stop`: fail the trials of dead workers. Optuna checks only
    when a trial starts, so a worker in a long trial (or none left to start one) left a killed
    worker's trial RUNNING, and its defaults trial unqueued, for as long as that took."""
    while not stop.wait(st._storage.get_heartbeat_interval()):
        try:
            fail_stale(st)
        except Exception as e:       # the database away a moment: the next round tries again
            log.debug("stale trial check failed: %s", first_line(e))


_stale_lock = threading.Lock()


def fail_stale(st: optuna.Study) -> None:
    """Optuna's stale check, one at a time in this process: SQLite cannot lock a row, so the watch
    and a trial's start failing one trial together would both queue the defaults again."""
    with _stale_lock:
        optuna.storages.fail_stale_trials(st)


def run_trials(st: optuna.Study, objective: Callable, trials: int, timeout: float | None,
                callbacks: list[Callable]) -> None:
    """What `Study.optimize(objective, trials, timeout, callbacks, catch=())` does (fail stale
    trials, ask, run the objective under Optuna's heartbeat, tell, call back), except for a trial
    finished under its live worker: by a stale check, this worker's beats having missed the grace
    period, or by another worker that took the same queued trial (SQLite cannot lock a row). Optuna
    raises on writing to it, and `optimize` then stops; here the worker logs it and goes on."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.storages._heartbeat import get_heartbeat_thread
    start = time.monotonic()
    for _ in range(trials):
        if timeout is not None and time.monotonic() - start >= timeout:
            return
        fail_stale(st)
        trial = st.ask()
        value, state, lost = None, None, False
        try:
            with get_heartbeat_thread(trial._trial_id, st._storage):
                try:
                    value = objective(trial)
                except optuna.TrialPruned:
                    state = optuna.trial.TrialState.PRUNED
            lost = st._storage.get_trial(trial._trial_id).state.is_finished()
            frozen = st.tell(trial, value, state=state, skip_if_finished=True)    # a NaN value: FAIL
        except UpdateFinishedTrialError:
            lost, frozen = True, st._storage.get_trial(trial._trial_id)
        except BaseException:       # an error, Ctrl-C: the trial fails, as in `optimize`
            st.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            raise
        if lost:
            log.warning("trial %d was ended (%s) by another process while this one ran it: its heartbeat "
                        "missed the grace period, or another worker took the same queued trial; going on "
                        "with the next trial", trial.number, frozen.state.name.lower())
        for callback in callbacks:
            callback(st, frozen)


def enqueue_defaults(st: optuna.Study, defaults: dict) -> None:
    """Trial 0 of a study is the defaults (the task's, or a tree learner's own: pipelines/tune.py's
    `search_space`), so tuning can only improve on them; enqueued again when that trial failed or
    was interrupted, or when the defaults have changed since. Keys the space never suggests are unused."""
    alive = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
             optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
    if not any(t.state in alive and t.system_attrs.get("fixed_params") == defaults for t in st.get_trials(deepcopy=False)):
        st.enqueue_trial(defaults)
