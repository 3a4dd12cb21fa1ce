"""What the bench scripts share: bad input ends as `cli.py` ends it, one line on stderr and exit
code 2 (an unknown task, contender or config key, a missing data folder), checked before the
first run starts so a long benchmark never fails an hour in on a typo. Also where results go:
`save` merges a script's rows into bench/results/<kind>.json, each stamped with the command,
machine and date it ran on, for `bench/report.py` to turn into BENCHMARKS.md's tables.

    if __name__ == "__main__":
        main_exit(main)
"""
from __future__ import annotations

import json
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.config import parse_overrides  # noqa: E402
from core.errors import UsageError  # noqa: E402
from pipelines import TASKS  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def main_exit(main: Callable[[], int]) -> None:
    """Run a script's `main`; a `UsageError` becomes `error: ...` on stderr and exit code 2."""
    try:
        code = main()
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    sys.exit(code)


def check_tasks(names: Iterable[str]) -> list[str]:
    names = list(names)
    for name in names:
        TASKS.get(name)                 # raises UsageError naming every registered task
    return names


def check_overrides(tasks: Iterable[str], items: list[str]) -> dict:
    """`--set KEY=VALUE` items parsed and checked against each task's config, as `train` checks them."""
    overrides = parse_overrides(items)
    for name in tasks:
        TASKS.create(name).config(**overrides)
    return overrides


def parse_data(items: list[str]) -> dict[str, Path]:
    """`--data TASK=DIR` items; a folder named for a task must exist (an unnamed task keeps its default)."""
    out = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not folder:
            raise UsageError(f"--data wants TASK=DIR, got {item!r}")
        check_tasks([name])
        if not Path(folder).is_dir():
            raise UsageError(f"--data {name}={folder}: not a folder")
        out[name] = Path(folder)
    return out


def run_cli(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run `cli.py` in a subprocess. Its exit code 2 (bad input) becomes a `UsageError` carrying the
    command's own one-line message; any other failure is a bug and keeps the whole stderr."""
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode == 2:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        message = lines[-1] if lines else f"exit code 2 from {' '.join(cmd)}"
        raise UsageError(message.removeprefix("error: "))
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit code {proc.returncode}):\n{proc.stderr}")
    return proc


def machine_label() -> str:
    """The CPU a result ran on, as the report prints it: wall times compare only on the same kind."""
    from bench.machine import cpu_info
    cpu = cpu_info()
    return f"{cpu['cpu']} ({platform.machine()}, {' '.join(cpu['vector']) or 'no AVX'}, {cpu['torch_threads']} threads)"


def command_line(script: str, argv: list[str] | None = None) -> str:
    """The command that ran `script` (a path from the repo root) with `argv` (default: this
    process's arguments), as one would type it from the repo root."""
    return shlex.join(["python", script, *(sys.argv[1:] if argv is None else argv)])


def save(kind: str, rows: list[dict], keys: tuple[str, ...], folder: Path = RESULTS,
         command: str | None = None) -> Path:
    """Merge rows into bench/results/<kind>.json; a rerun replaces rows with the same keys where
    they stand (so a report keeps its order), and new keys go at the end. Each new row is stamped
    with the machine and date it ran on, and with `command` when given."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = {"machine": machine_label(), "date": str(date.today()), **({"command": command} if command else {})}
    rows = [{**r, **stamp} for r in rows]
    path = folder / f"{kind}.json"
    old = json.loads(path.read_text()) if path.is_file() else []
    fresh = {tuple(r.get(k) for k in keys): r for r in rows}
    merged = [fresh.pop(tuple(r.get(k) for k in keys), r) for r in old] + list(fresh.values())
    path.write_text(json.dumps(merged, indent=1) + "\n")
    return path


def load(kind: str, folder: Path = RESULTS) -> list[dict]:
    """The rows of bench/results/<kind>.json, or [] when no script has written it."""
    path = folder / f"{kind}.json"
    return json.loads(path.read_text()) if path.is_file() else []
