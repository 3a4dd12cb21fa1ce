"""The options several commands share, as `Annotated` aliases: one help text each, wherever it appears."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipelines import TASK_NAMES

Device = Enum("Device", {n: n for n in ("auto", "cpu", "cuda")}, type=str)

# a task is a name, resolved by pipelines.task_name / resolve_task (a did-you-mean for a typo), not a choice
KNOWN_TASKS = f"one of {', '.join(sorted(TASK_NAMES))} (see `tasks`)"
TaskArg = Annotated[str, typer.Argument(help=f"Competition: {KNOWN_TASKS}.", show_default=False)]
DataDir = Annotated[Optional[Path], typer.Option(help="Folder with the competition's files (plain, .gz or Kaggle .zip).")]
RunsDir = Annotated[Optional[Path], typer.Option(help="Root of run directories (default: runs/).")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug lines (every epoch) and library warnings.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; errors only.")]
InputFile = Annotated[Optional[Path], typer.Option("--input", help="Score this file instead of the task's test file.")]
OutCsv = Annotated[Optional[Path], typer.Option(help="Output CSV path.")]
DeviceOpt = Annotated[Device, typer.Option()]
