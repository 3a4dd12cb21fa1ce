"""Where log lines go: our loggers at INFO by default, libraries and Python warnings only with --verbose.

Every command sets it from its own --verbose / --quiet; `cli.main` sets the default before parsing.
"""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager

from core.errors import UsageError

OUR_LOGGERS = ("cli", "commands", "core", "data", "features", "models", "pipelines", "submissions", "tasks")


class Stderr(logging.StreamHandler):
    """Writes to sys.stderr as it is at each record: rich's live display (and pytest) swap it."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def set_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Our loggers: INFO (summary lines) by default, DEBUG with --verbose, errors only with
    --quiet. Libraries, and Python warnings (routed here by `main`), speak only with --verbose."""
    if verbose and quiet:
        raise UsageError("--verbose and --quiet exclude each other")
    ours = logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO
    libraries = logging.WARNING if verbose else logging.ERROR
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, Stderr)]:
        root.removeHandler(handler)
    handler = Stderr()
    handler.setFormatter(logging.Formatter("%(message)s"))
    # optuna and others set their own logger levels, so the handler filters too
    handler.addFilter(lambda r: r.levelno >= (ours if r.name.split(".")[0] in OUR_LOGGERS else libraries))
    root.addHandler(handler)
    root.setLevel(libraries)
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(ours)
    # torch's loggers have their own stderr handler (torch._logging), so the filter above never
    # sees them: e.g. inductor's 'No CUDA runtime is found' on a CPU-only machine with compile=true
    logging.getLogger("torch").setLevel(libraries)


@contextmanager
def warnings_to_logging():
    """warnings.warn -> the 'py.warnings' logger, a library logger: shown with --verbose only."""
    logging.captureWarnings(False)      # re-arm: pytest or catch_warnings may have swapped showwarning since
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
