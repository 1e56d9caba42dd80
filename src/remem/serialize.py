"""Records as plain JSON data and back: times as UTC ISO text, tuples as lists."""

from __future__ import annotations

import math
import types
from dataclasses import MISSING, fields, is_dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from remem import clock
from remem.errors import InvalidInputError

T = TypeVar("T")


def to_data(record: Any) -> dict[str, Any]:
    """A record's fields as JSON-ready data."""
    return {item.name: _plain(getattr(record, item.name)) for item in fields(record)}


def from_data(cls: type[T], data: Any, where: str = "") -> T:
    """Rebuild a record of type `cls` from `to_data` output, checking that each field holds
    what its type says; missing fields take defaults, unknown ones are ignored. Raises
    InvalidInputError naming the field (`where` prefixes nested field names)."""
    if not isinstance(data, dict):
        what = f"field {where.rstrip('.')!r}" if where else "a record"
        raise InvalidInputError(f"{what} must be a JSON object, got {type(data).__name__}")
    values: dict[str, Any] = {}
    for item in fields(cls):  # type: ignore[arg-type]
        name = where + item.name
        if item.name in data:
            values[item.name] = _value(_hints(cls)[item.name], data[item.name], name)
        elif item.default is MISSING and item.default_factory is MISSING:
            raise InvalidInputError(f"field {name!r} is missing")
    return cls(**values)


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """The field types of a record class, resolved once (they are written as strings)."""
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _value(hint: Any, value: Any, name: str) -> Any:
    """`value` as the type `hint` names (str, int, float, datetime, dict, tuple[str, ...],
    a Literal, a dataclass, or an optional one of these)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(hint):
            return None
        (inner,) = (arg for arg in get_args(hint) if arg is not type(None))
        return _value(inner, value, name)
    if origin is Literal:
        if value not in get_args(hint) or not isinstance(value, str):
            raise _wrong(name, " or ".join(repr(arg) for arg in get_args(hint)), value)
        return value
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
            raise _wrong(name, "a list of strings", value)
        return tuple(value)
    if is_dataclass(hint):
        return from_data(hint, value, f"{name}.")  # type: ignore[arg-type]
    return _scalar(origin or hint, value, name)


def _scalar(kind: Any, value: Any, name: str) -> Any:
    if kind is datetime:
        if not isinstance(value, str):
            raise _wrong(name, "an ISO 8601 time", value)
        return clock.parse_time(value, field=f"field {name!r}")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(name, "a number", value)
        number = float(value) if abs(value) < 2**1000 else math.inf  # huge ints overflow
        if not math.isfinite(number):
            raise InvalidInputError(f"field {name!r} must be a finite number")
        return number
    if kind is bool:
        if not isinstance(value, bool):
            raise _wrong(name, "true or false", value)
        return value
    expected = {str: "a string", int: "an integer", dict: "a JSON object"}[kind]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _wrong(name, expected, value)
    return value


def _wrong(name: str, expected: str, value: Any) -> InvalidInputError:
    shown = repr(value) if len(repr(value)) <= 40 else type(value).__name__
    return InvalidInputError(f"field {name!r} must be {expected}, got {shown}")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.to_text(value)
    if is_dataclass(value) and not isinstance(value, type):
        return to_data(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value
