"""Name -> factory registries (timm style) shared by tasks and models.

A registry holds factories, never trained objects; looking up an unknown name
fails with the list of known ones so a typo on the CLI is a one-line error.
"""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

from core.errors import UsageError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """`resolve`: for names made of registered ones (a learner `mlp+lightgbm`), name -> (factory,
    tags) or None; what it returns is kept on first use, so `tags[name]` then reads as usual."""

    def __init__(self, kind: str, resolve: Callable[[str], tuple[Callable[..., T], dict] | None] | None = None):
        self.kind = kind
        self.resolve = resolve
        self._factories: dict[str, Callable[..., T]] = {}
        self._resolved: dict[str, Callable[..., T]] = {}
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

    def put(self, name: str, factory: Callable[..., T], **tags) -> None:
        """Register `factory` as `name`, replacing one of that name: for what is defined at run
        time rather than import time (a competition built from its files)."""
        self._factories[name] = factory
        self.tags[name] = tags

    def remove(self, name: str) -> None:
        """Forget `name` (a competition registered at run time, or a test's task)."""
        self._factories.pop(name, None)
        self.tags.pop(name, None)

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._factories and name not in self._resolved and self.resolve is not None:
            made = self.resolve(name)
            if made is not None:      # kept apart: `names()` and the list of known names stay the registered ones
                self._resolved[name], self.tags[name] = made
        try:
            return self._factories[name] if name in self._factories else self._resolved[name]
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
