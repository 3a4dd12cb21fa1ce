"""Command line: the entry. The commands live in commands/ (parse, build the config, call a pipeline
function); this file runs them, turning bad input of any kind into one line and exit code 2.

    python cli.py tasks
    python cli.py train otto --folds 5 --data-dir DIR
    python cli.py predict otto --run latest --data-dir DIR
    python cli.py runs otto
    python cli.py submit titanic --run latest -m "mlp, 5 folds"
"""
from __future__ import annotations

import errno
import re
import sys

import typer

from commands import app
from commands.logs import set_logging, warnings_to_logging
from core.errors import UsageError, did_you_mean
from pipelines import TASK_NAMES

_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR}


def _click_message(e) -> str:
    """Click's error on one line, without pydantic's 'Value error, ' (Typer validates parameters with
    pydantic), and a did-you-mean for a mistyped choice ('otot' for otto), as Click gives for options."""
    message = " ".join(e.format_message().split()).replace("Value error, ", "")  # choices: tab-indented lines
    typo = re.search(r"'([^']*)' is not one of (.*)", message)
    if typo:
        message = message.rstrip(".") + did_you_mean(typo[1], re.findall(r"'([^']*)'", typo[2]))
    if type(e).__name__ == "MissingParameter" and getattr(e.param, "name", None) == "task":
        message += f" Choose from: {', '.join(sorted(TASK_NAMES))}"     # a name, not a choice: Click lists none
    return message


def main(argv: list[str] | None = None) -> int:
    """Run the app; bad input of any kind ends in one line on stderr and exit code 2."""
    set_logging()           # until a command's --verbose / --quiet says otherwise
    try:
        with warnings_to_logging():
            code = app(args=argv, standalone_mode=False)    # Typer returns 130 itself on Ctrl-C
    except UsageError as e:
        typer.echo(f"error: {e}", err=True)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except OSError as e:
        if e.errno not in _DISK_ERRORS:
            raise
        typer.echo(f"error: cannot write {e.filename or 'output'}: {e.strerror}", err=True)
        return 2
    except Exception as e:
        if not hasattr(e, "format_message"):     # Click's usage errors (Typer vendors Click)
            raise
        message = _click_message(e)
        if message:              # empty: no command given, and the help has been printed instead
            typer.echo(f"error: {message}", err=True)
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
