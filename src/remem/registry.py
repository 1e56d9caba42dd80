"""One registry per kind of backend (stores, embedders, language models).

Built-in backends register the same way a third-party package does: a factory added with
`register(name, factory)`, or an entry point in the kind's group (`remem.stores`,
`remem.embedders`, `remem.llms`), loaded the first time a name is looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from remem.errors import ConfigError

F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[F]):
    """Names the factories of one kind of backend."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._factories: dict[str, F] = {}
        self._plugins_loaded = False

    def register(self, name: str, factory: F) -> None:
        """Make `name` a valid choice of this kind (replacing any factory of that name)."""
        self._factories[name] = factory

    def get(self, name: str) -> F:
        """The factory registered as `name`; a ConfigError listing the choices if none is."""
        self._load_plugins()
        factory = self._factories.get(name)
        if factory is None:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}"
            )
        return factory

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._factories)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for entry in entry_points(group=self.group):
            self.register(entry.name, entry.load())
