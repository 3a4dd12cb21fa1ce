"""Jobs run side by side in worker processes, reporting progress while they run (`train --jobs`).

A small MLP uses two CPU cores badly: two 1-thread folds side by side get through more folds a
minute than one 2-thread fold, and a 1-thread fold does not stall when another process takes a
core (BENCHMARKS.md, "Folds side by side" and "Fold plans under a competing process").

The workers are joblib's loky executor, reused between calls in one process: a notebook, the test
suite or a benchmark pays the start-up (a fresh interpreter importing torch, pandas and
scikit-learn: ~4 s of CPU a worker) once. A job is a
module-level function called as `fn(*args, on_epoch=report)`; what it passes to `report` reaches
the caller's `on_epoch` in the parent while the jobs run (progress bars, status heartbeat). Log
records and Python warnings of a job go to the parent's loggers too, so --quiet and --verbose
filter them there as they filter the parent's own.

Failure and interruption: any exception in a job, or in the parent (Ctrl-C, SIGTERM, an error
raised by `on_epoch`), kills every worker before it propagates, so no job goes on writing into a
run that is being marked failed or discarded. Workers ignore Ctrl-C (the parent handles it for
all) and die with their parent when it dies without cleaning up (kill -9): at once on Linux
(PR_SET_PDEATHSIG), within a second elsewhere. The jobs write only whole files (temp file +
rename), so a killed worker leaves what a killed single-process run leaves: its last finished
epoch's checkpoint.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, wait
from typing import Any, Callable, Iterator, Sequence

IDLE_S = 60            # idle workers exit after this long; the next call starts new ones

_channel = None        # parent: the queue the current workers report through
_reports = None        # worker: the same queue
_token = None          # worker: the call its job belongs to


class _ToParent(logging.handlers.QueueHandler):
    """A worker's log records, made picklable (message formatted, args dropped), to the parent."""

    def enqueue(self, record: logging.LogRecord) -> None:
        _reports.put((_token, "log", record))


def _init_worker(channel, parent: int) -> None:
    global _reports
    _reports = channel
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    root = logging.getLogger()
    root.handlers[:] = [_ToParent(None)]
    root.setLevel(logging.DEBUG)         # the parent's handlers decide what is shown
    logging.captureWarnings(True)
    from core.runtime import keep_freed_memory
    keep_freed_memory()                  # as the parent's resolve_device did: once per process
    try:        # Linux: the kernel kills this worker the moment its parent dies (strictly: the parent
        import ctypes      # thread that started it; from a thread that ends, the next call starts new ones)
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def orphaned() -> None:    # elsewhere: notice within a second
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)
    threading.Thread(target=orphaned, daemon=True).start()


def _run(token: str, threads: int, cwd: str, torch_log_level: int, fn: Callable, args: tuple) -> Any:
    """One job, in a worker, as if it ran in the parent: its folder (relative paths), its torch
    log level (torch's loggers print through their own handler, not through ours)."""
    global _token
    import torch
    torch.set_num_threads(threads)
    os.chdir(cwd)
    logging.getLogger("torch").setLevel(torch_log_level)
    _token = token
    # a SimpleQueue writes to the pipe before put() returns: every report is there before the result
    return fn(*args, on_epoch=lambda *event: _reports.put((token, "epoch", event)))


def _executor(jobs: int):
    global _channel
    from joblib.externals.loky import get_reusable_executor
    from joblib.externals.loky.backend import get_context
    if _channel is None:
        _channel = get_context("loky").SimpleQueue()
    return get_reusable_executor(max_workers=jobs, timeout=IDLE_S, initializer=_init_worker,
                                 initargs=(_channel, os.getpid()))


class WorkerDied(RuntimeError):
    """A worker process ended without a result: killed (the OOM killer, kill -9) or crashed."""


def _kill(executor) -> None:
    """Stop every worker now; the channel may hold a half-written report, so it goes too."""
    global _channel
    executor.shutdown(wait=True, kill_workers=True)
    _channel = None


def run_jobs(fn: Callable, arg_list: Sequence[tuple], jobs: int, threads: int,
             on_epoch: Callable[..., None] | None = None) -> Iterator[tuple[int, Any]]:
    """Yield `(i, fn(*arg_list[i], on_epoch=...))` as each job finishes, at most `jobs` at once
    (started in list order), each on `threads` torch threads; reports reach `on_epoch` here."""
    from joblib.externals.loky.process_executor import BrokenProcessPool
    executor = _executor(jobs)
    token = uuid.uuid4().hex      # reports of an earlier, killed call are dropped
    here = (os.getcwd(), logging.getLogger("torch").getEffectiveLevel())
    futures = {}

    def drain() -> None:
        while not _channel.empty():
            sent_by, kind, payload = _channel.get()
            if sent_by != token:
                continue
            if kind == "log":
                logger = logging.getLogger(payload.name)
                if logger.isEnabledFor(payload.levelno):     # as if logged here: this process's levels apply
                    logger.handle(payload)
            elif on_epoch is not None:
                on_epoch(*payload)
    try:        # submitting inside: a Ctrl-C between two submits must stop the first job too
        for i, args in enumerate(arg_list):
            futures[executor.submit(_run, token, threads, *here, fn, args)] = i
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            drain()
            for future in sorted(done, key=futures.get):
                try:
                    result = future.result()
                except BrokenProcessPool as e:    # loky's TerminatedWorkerError is one
                    raise WorkerDied(_why(e)) from None
                yield futures[future], result
    except BaseException:
        _kill(executor)
        raise


def _why(error: Exception) -> str:
    """loky's message names the signal, e.g. '{SIGKILL(-9)}', then pages of advice; keep the signal."""
    import re
    signals = re.findall(r"SIG[A-Z]+", str(error))
    cause = f"ended by {signals[0]}" if signals else "ended without a result"
    hint = ", often the out-of-memory killer: fewer --jobs use less memory" if "SIGKILL" in signals else ""
    return f"a worker process {cause}{hint}"
