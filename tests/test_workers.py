"""core.workers: jobs side by side in worker processes, their reports, failures and interruption."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core import workers
from core.errors import UsageError
from tests.conftest import alive


def counting(n: int, *, on_epoch) -> tuple[int, int]:
    """A job: reports epochs 1..n, returns its pid and torch's thread count."""
    import torch
    for epoch in range(1, n + 1):
        on_epoch(n, epoch)
    return os.getpid(), torch.get_num_threads()


def failing(message: str, *, on_epoch):
    on_epoch("about to fail")
    raise UsageError(message)


def warning(*, on_epoch):
    import logging
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("always")      # a reused worker shows a warning once per location
        warnings.warn("a library warning in a worker")
    logging.getLogger("pipelines.train").info("a line of ours in a worker")
    return 1


def surroundings(*, on_epoch) -> tuple[str, int]:
    import logging
    return os.getcwd(), logging.getLogger("torch").getEffectiveLevel()


def dying(*, on_epoch):
    import signal
    os.kill(os.getpid(), signal.SIGKILL)


def slow(pid_file: str, *, on_epoch):
    Path(pid_file).write_text(str(os.getpid()))
    for epoch in range(1, 600):
        on_epoch(epoch)
        time.sleep(0.1)
    return "never"


@pytest.mark.slow
def test_every_report_arrives_before_its_job_result_and_results_carry_their_index():
    seen, order = [], []
    results = {}
    for i, (pid, threads) in workers.run_jobs(counting, [(3,), (5,), (2,)], jobs=2, threads=1,
                                              on_epoch=lambda *event: seen.append(event)):
        n = (3, 5, 2)[i]
        assert [e for e in seen if e[0] == n] == [(n, epoch) for epoch in range(1, n + 1)]   # all, in order
        results[i] = (pid, threads)
        order.append(i)
    assert sorted(order) == [0, 1, 2]
    assert {threads for _, threads in results.values()} == {1}
    assert os.getpid() not in {pid for pid, _ in results.values()}


@pytest.mark.slow
def test_a_job_error_reaches_the_caller_with_its_type_and_the_workers_are_replaced():
    with pytest.raises(UsageError, match="bad fold"):
        list(workers.run_jobs(failing, [("bad fold",)], jobs=2, threads=1))
    assert [r for _, r in workers.run_jobs(counting, [(1,)], jobs=2, threads=1)]     # a fresh pool works


@pytest.mark.slow          # 2 s of workers starting: with the full suite (the quick one stays under 90 s)
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads worker state from /proc")
def test_an_error_in_the_parent_stops_the_running_jobs_at_once(tmp_path):
    """What Ctrl-C, SIGTERM or a failing hook (tune's pruner, a full disk) does in the parent:
    the jobs must not go on writing into a run that is being marked interrupted or discarded."""
    def stop(epoch):
        if epoch >= 3 and (tmp_path / "a").exists() and (tmp_path / "b").exists():    # both running
            raise KeyboardInterrupt
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        list(workers.run_jobs(slow, [(str(tmp_path / "a"),), (str(tmp_path / "b"),)], jobs=2, threads=1,
                              on_epoch=stop))
    assert time.perf_counter() - start < 30        # not the 60 s the jobs would take
    pids = [int((tmp_path / name).read_text()) for name in "ab"]
    assert not [pid for pid in pids if alive(pid)]


@pytest.mark.slow
def test_a_report_left_by_an_earlier_killed_call_is_not_delivered():
    workers._executor(2)
    workers._channel.put(("an earlier call", "epoch", ("stale", 1)))
    seen = []
    list(workers.run_jobs(counting, [(2,)], jobs=2, threads=1, on_epoch=lambda *event: seen.append(event)))
    assert seen == [(2, 1), (2, 2)]


@pytest.mark.slow
def test_a_jobs_warnings_and_log_lines_reach_the_parents_loggers(caplog):
    """So the CLI's --quiet / --verbose filter them, instead of a worker printing to the terminal."""
    import logging
    # the level of our logger here decides (a CLI test before may have left it at --quiet's)
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="pipelines.train"):
        list(workers.run_jobs(warning, [()], jobs=2, threads=1))
    got = {(r.name, r.getMessage()) for r in caplog.records}
    assert ("pipelines.train", "a line of ours in a worker") in got
    assert any(name == "py.warnings" and "a library warning in a worker" in msg for name, msg in got), got


@pytest.mark.slow          # 2 s of worker processes: with the full suite (the quick one stays under 90 s)
def test_a_job_runs_in_the_parents_folder_and_torch_log_level_even_in_a_reused_worker(tmp_path, monkeypatch):
    """Relative paths (--runs-dir rr, weights_path) and --quiet (torch prints through its own handler)."""
    import logging
    for folder, level in ((tmp_path, logging.ERROR), (tmp_path / "b", logging.WARNING)):
        folder.mkdir(exist_ok=True)
        monkeypatch.chdir(folder)
        monkeypatch.setattr(logging.getLogger("torch"), "level", level)
        [(_, (cwd, torch_level))] = list(workers.run_jobs(surroundings, [()], jobs=2, threads=1))
        assert (Path(cwd), torch_level) == (folder, level)


@pytest.mark.slow
def test_a_killed_worker_is_one_line_naming_the_signal_and_the_pool_is_replaced():
    with pytest.raises(workers.WorkerDied) as e:
        list(workers.run_jobs(dying, [()], jobs=2, threads=1))
    assert str(e.value).count("\n") == 0 and "SIGKILL" in str(e.value) and "out-of-memory" in str(e.value)
    assert [r for _, r in workers.run_jobs(counting, [(1,)], jobs=2, threads=1)]
