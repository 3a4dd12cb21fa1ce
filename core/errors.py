"""The one error type for bad user input, and the helpers that keep its message to one line.

Every layer raises `UsageError` (a bad name, option or file); the CLI turns it into one line on
stderr and exit code 2. It lives apart from the registries so raising it imports nothing else.
"""
from __future__ import annotations

from difflib import get_close_matches
from typing import Iterable


class UsageError(ValueError):
    """Bad user input (unknown name, bad option, bad file). The CLI turns it into exit code 2."""


def first_line(e: BaseException) -> str:
    """An exception as one line (its first), for one-line errors; the type name if it says nothing."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """" (did you mean 'mlp'?)" when a known name is close to `word` (Click does so for options), else ''."""
    close = get_close_matches(str(word), list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
