"""One registry per catalogue.

A registry maps a public name (the string used in experiment files) to an
entry, usually a class.  The GUI builds its pickers from registries, the
schema validates names against them and the tests are parametrized over them,
so registering an entry is all it takes to make it visible everywhere.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from engine.errors import ExperimentError, nearest

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered name -> entry mapping with helpful lookup errors."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@OPTIMIZERS.register("adam")`` on a class."""

        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def add(self, name: str, entry: T) -> T:
        return self.register(name)(entry)

    def remove(self, name: str) -> T:
        """Take an entry out again: a test that registers a throwaway entry
        cleans up with this, so later tests see the catalogue as shipped."""
        try:
            return self._entries.pop(name)
        except KeyError:
            raise ValueError(f"{self.kind} '{name}' is not registered") from None

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ExperimentError(
                f"unknown {self.kind} {name!r}{nearest(name, self._entries)}; "
                f"allowed: {', '.join(self._entries)}"
            ) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self):
        return self._entries.items()

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
