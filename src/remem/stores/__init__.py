"""Store backends, and the one registry that names them by the scheme of a location.

`open_store("memory.db")` (a path: no scheme) opens the embedded SQLite store;
`open_store("postgresql://...")` the PostgreSQL one. A third-party store registers a
factory taking the location, for its URL scheme, with `register_store(scheme, factory)` or
through the `remem.stores` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable

from remem.errors import ConfigError
from remem.registry import Registry
from remem.stores.base import Store

StoreFactory = Callable[[str], Store]

__all__ = ["STORES", "Store", "StoreFactory", "open_store", "register_store"]

STORES: Registry[StoreFactory] = Registry("store", "remem.stores")
PATH = "sqlite"  # what a location without a scheme is: a SQLite file


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Make locations `scheme://...` open with `factory`."""
    STORES.register(scheme, factory)


def open_store(location: str) -> Store:
    """The store a location names: a `postgresql://` URL, or a SQLite path (":memory:")."""
    scheme, separator, _ = location.partition("://")
    if not separator:
        return STORES.get(PATH)(location)
    if scheme == PATH or scheme not in STORES.names():
        raise ConfigError(
            f"unsupported database URL {location!r}: use a SQLite path or one of "
            + ", ".join(f"{name}://" for name in STORES.names() if name != PATH)
        )
    return STORES.get(scheme)(location)


def _sqlite(location: str) -> Store:
    from remem.stores.sqlite import SQLiteStore

    return SQLiteStore(location)


def _postgres(location: str) -> Store:
    try:
        from remem.stores.postgres import PostgresStore
    except ImportError as error:
        raise ConfigError(
            f"PostgreSQL needs remem's postgres extras ({error.name} is missing):"
            " pip install 'remem[postgres]'"
        ) from None
    return PostgresStore(location)


register_store(PATH, _sqlite)
register_store("postgresql", _postgres)
register_store("postgres", _postgres)
