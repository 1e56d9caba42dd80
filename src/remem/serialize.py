"""Records as plain JSON data and back: times as UTC ISO text, tuples as lists."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any, TypeVar

from remem import clock
from remem.types import Scope

T = TypeVar("T")


def to_data(record: Any) -> dict[str, Any]:
    """A record's fields as JSON-ready data."""
    return {item.name: _plain(getattr(record, item.name)) for item in fields(record)}


def from_data(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a record of type `cls` from `to_data` output; missing fields take defaults."""
    values: dict[str, Any] = {}
    for item in fields(cls):  # type: ignore[arg-type]
        if item.name not in data:
            continue
        value = data[item.name]
        if item.name == "scope":
            value = Scope(**value)
        elif isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, str) and "datetime" in str(item.type):
            value = clock.from_text(value)
        values[item.name] = value
    return cls(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.to_text(value)
    if is_dataclass(value) and not isinstance(value, type):
        return to_data(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value
