"""Two `tune` worker processes share one study on a real PostgreSQL server started by the test;
the --storage URL forms the README shows open it; a killed worker's trial is failed by a live one.

Skipped, saying why, when PostgreSQL binaries or the psycopg2 driver are missing or the
server cannot start. `.ci/run` installs both.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest

from pipelines.studies import storage_url
from tests.conftest import ROOT
from tests.test_tune_stale import killed_worker_scenario



def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg2", reason="psycopg2 (PostgreSQL driver) not installed")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="pgtest-"))
    if os.geteuid() == 0:               # postgres refuses to run as root: run it as the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no 'postgres' user to start the server as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    run = lambda *cmd: subprocess.run(as_user + list(cmd), capture_output=True, text=True, timeout=120)
    init = run(initdb, "-D", str(data), "-A", "trust", "-U", "postgres")
    if init.returncode != 0:
        pytest.skip(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
    start = run(pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60", "start",
                "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1")
    if start.returncode != 0:
        pytest.skip(f"PostgreSQL did not start: {(folder / 'log').read_text()[-300:] if (folder / 'log').exists() else start.stderr}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"       # as the README writes it
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow                  # a server to start, and processes sharing it
def test_two_workers_share_one_study(postgres_url, titanic_dir, tmp_path):
    n = 4
    cmd = [sys.executable, "cli.py", "tune", "titanic", "--trials", str(n), "--storage", postgres_url,
           "--study", "shared", "--folds", "2", "--set", "bags=1", "--set", "epochs=3", "--quiet",
           "--data-dir", str(titanic_dir), "--runs-dir", str(tmp_path / "runs"), "--device", "cpu"]
    workers = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outs = [w.communicate(timeout=600) for w in workers]
    for w, (out, err) in zip(workers, outs):
        assert w.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=storage_url(postgres_url))
    trials = study.trials
    numbers = [t.number for t in trials]
    assert len(trials) == 2 * n                                   # none lost
    assert sorted(numbers) == list(range(2 * n))                  # none run twice
    finished = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert all(t.state in finished for t in trials)
    assert all("best" in out for out, _ in outs)
    # workers started together with one --seed do not propose the same start-up trials
    drawn = [tuple(sorted(t.params.items())) for t in trials if "fixed_params" not in t.system_attrs]
    assert len(set(drawn)) == len(drawn), drawn


@pytest.mark.slow                  # a server to start, and processes sharing it
@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg2"])
def test_each_url_form_opens_the_server(scheme, postgres_url, titanic_dir, tmp_path):
    """`postgresql://` (SQLAlchemy 2.1 alone picks psycopg 3, not installed), Heroku's `postgres://`
    (SQLAlchemy rejects it) and the explicit driver all reach the one server."""
    from cli import main
    url = scheme + postgres_url[postgres_url.index("://"):]
    study = f"forms-{scheme.replace('+', '-')}"
    assert main(["tune", "titanic", "--trials", "1", "--storage", url, "--study", study, "--folds", "2",
                 "--set", "bags=1", "--set", "epochs=2", "--quiet", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(tmp_path / "runs"), "--device", "cpu"]) == 0
    [trial] = optuna.load_study(study_name=study, storage=storage_url(postgres_url)).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE


@pytest.mark.slow                  # a server to start, and processes sharing it
def test_a_killed_tune_process_trial_is_failed_and_its_defaults_rerun_by_a_live_one(postgres_url, tmp_path,
                                                                                    titanic_dir):
    killed_worker_scenario(tmp_path, titanic_dir, postgres_url, storage_url(postgres_url), "killed")


# needs no server: what the URL forms the README shows open with
@pytest.mark.parametrize("given, opened", [
    ("postgresql://u@h/db", "postgresql+psycopg2://u@h/db"),          # SQLAlchemy 2.1 alone would pick psycopg 3
    ("postgres://u:p%40ss@h:5/db", "postgresql+psycopg2://u:p%40ss@h:5/db"),    # Heroku's alias, rejected by it
    ("postgres+psycopg://h/db", "postgresql+psycopg://h/db"),
    ("postgresql+psycopg://h/db", "postgresql+psycopg://h/db"),       # a driver the user chose is kept
    ("sqlite:////tmp/a b.db", "sqlite:////tmp/a b.db"),
])
def test_storage_urls_get_the_installed_postgresql_driver(given, opened):
    assert storage_url(given) == opened
