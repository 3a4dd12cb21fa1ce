"""Name -> factory registries (timm style) shared by tasks and models.

A registry holds factories, never trained objects; looking up an unknown name
fails with the list of known ones so a typo on the CLI is a one-line error.
"""
from __future__ import annotations

from difflib import get_close_matches
from typing import Callable, Generic, Iterable, TypeVar

T = TypeVar("T")


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


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self.tags: dict[str, dict] = {}          # name -> metadata, e.g. {"kind": "image"}

    def register(self, fn: Callable[..., T] | None = None, *, name: str | None = None, **tags):
        def deco(f: Callable[..., T]) -> Callable[..., T]:
            key = name or f.__name__
            if key in self._factories:
                raise ValueError(f"{self.kind} {key!r} registered twice")
            self._factories[key] = f
            self.tags[key] = tags
            return f
        return deco(fn) if fn is not None else deco

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._factories[name]
        except KeyError:
            raise UsageError(f"unknown {self.kind} {name!r}{did_you_mean(name, self._factories)}; "
                             f"known: {', '.join(sorted(self._factories))}") from None

    def create(self, name: str, **kwargs) -> T:
        return self.get(name)(**kwargs)

    def names(self, **tags) -> list[str]:
        """Registered names, optionally only those whose tags match, e.g. names(kind="image")."""
        return sorted(n for n in self._factories if all(self.tags[n].get(k) == v for k, v in tags.items()))

    def __contains__(self, name: str) -> bool:
        return name in self._factories
