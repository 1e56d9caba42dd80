"""A server's answers as `Memory` returns them: JSON back into remem's records, and error
bodies (`{"error": {"type", "message"}}`, see `remem.server.errors`) back into the
`RememError` subclass the server raised."""

from __future__ import annotations

import ast
import builtins
import re
import types
from dataclasses import MISSING, fields, is_dataclass
from datetime import datetime
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from remem import clock, errors
from remem.errors import (
    ConfigError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RememError,
    StoreError,
)

NOT_FOUND = re.compile(r"no (?P<kind>.+?) with id (?P<id>.+)", re.DOTALL)
CONFLICT = re.compile(r"memory (?P<id>.+) is at version (?P<current>\d+), not (?P<expected>\d+)")
# what the server's own (non-remem) error types mean for a caller
HTTP_KINDS: dict[str, type[RememError]] = {
    "InvalidRequest": InvalidInputError,
    "BadRequest": InvalidInputError,
    "BodyTooLarge": InvalidInputError,
    "PreconditionFailed": ConflictError,
    "Unauthorized": ConfigError,  # the client's key is missing or wrong
    "Forbidden": ConfigError,
    "MisdirectedRequest": ConfigError,
}


class UnreadableAnswer(ValueError):
    """The server answered something that is not what the method returns."""


def decode(hint: Any, data: Any, where: str = "answer") -> Any:
    """`data` (parsed JSON) as the type `hint` names: remem's dataclasses (fields a newer
    server adds are ignored), tuples, lists, datetimes, numbers, text, optionals."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any or hint is dict or origin is dict:
        return _checked(data, dict, where) if hint is not Any else data
    if origin in (Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        (inner,) = (arg for arg in args if arg is not type(None))
        return decode(inner, data, where)
    if origin is Literal:
        if data not in args:
            raise UnreadableAnswer(f"{where} is {data!r}, not one of {args}")
        return data
    if origin in (list, builtins.list, tuple):
        items = _checked(data, list, where)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(items) != len(args):
                raise UnreadableAnswer(f"{where} has {len(items)} items, not {len(args)}")
            return tuple(
                decode(a, v, f"{where}[{i}]")
                for i, (a, v) in enumerate(zip(args, items, strict=True))
            )
        decoded = [decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(items)]
        return tuple(decoded) if origin is tuple else decoded
    if is_dataclass(hint):
        return _record(hint, _checked(data, dict, where), where)
    return _scalar(hint, data, where)


def _record(cls: Any, data: dict[str, Any], where: str) -> Any:
    hints = get_type_hints(cls)
    values = {}
    for item in fields(cls):
        if item.name in data:
            values[item.name] = decode(hints[item.name], data[item.name], f"{where}.{item.name}")
        elif item.default is MISSING and item.default_factory is MISSING:
            raise UnreadableAnswer(f"{where} has no field {item.name!r}")
    return cls(**values)


def _scalar(kind: Any, data: Any, where: str) -> Any:
    if kind is datetime:
        try:
            return clock.parse_time(_checked(data, str, where))
        except InvalidInputError as error:
            raise UnreadableAnswer(f"{where}: {error}") from None
    if kind is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise UnreadableAnswer(f"{where} is {type(data).__name__}, not a number")
        return float(data)
    if kind in (str, int, bool):
        if isinstance(data, bool) != (kind is bool):
            raise UnreadableAnswer(f"{where} is {type(data).__name__}, not {kind.__name__}")
        return _checked(data, kind, where)
    raise UnreadableAnswer(f"{where}: cannot read a {kind!r}")  # a type remem does not return


def _checked(data: Any, kind: type[Any], where: str) -> Any:
    if not isinstance(data, kind):
        raise UnreadableAnswer(f"{where} is {type(data).__name__}, not {kind.__name__}")
    return data


def error_from(status: int, body: Any, text: str) -> RememError:
    """The `RememError` an error answer stands for: the class the server raised (by name),
    else what its status means."""
    detail = body.get("error") if isinstance(body, dict) else None
    kind = detail.get("type") if isinstance(detail, dict) else None
    message = detail.get("message") if isinstance(detail, dict) else None
    if not isinstance(message, str):
        message = f"HTTP {status}: {text[:300]}"
    named = (
        getattr(errors, kind, None) if isinstance(kind, str) and kind in errors.__all__ else None
    )
    if named is None:
        named = HTTP_KINDS.get(str(kind)) or _by_status(status)
    return rebuilt(named, message)


def _by_status(status: int) -> type[RememError]:
    if status == 404:
        return NotFoundError
    if status in (409, 412):
        return ConflictError
    if status in (400, 413, 422):
        return InvalidInputError
    if status in (401, 403, 421):
        return ConfigError
    return StoreError if status >= 500 else RememError


def rebuilt(kind: type[RememError], message: str) -> RememError:
    """An error of `kind` saying `message`, with the fields its class has (read back from
    the message, which the class itself wrote)."""
    error = kind.__new__(kind)
    Exception.__init__(error, message)
    if isinstance(error, NotFoundError):
        found = NOT_FOUND.fullmatch(message)
        error.kind = found["kind"] if found else "memory"
        error.item_id = _literal(found["id"]) if found else ""
    elif isinstance(error, ConflictError):
        found = CONFLICT.match(message)
        error.item_id = _literal(found["id"]) if found else ""
        error.expected = int(found["expected"]) if found else 0
        error.current = int(found["current"]) if found else 0
    elif isinstance(error, errors.LLMError):
        error.usage = None
    return error


def _literal(text: str) -> str:
    """An id as `repr` wrote it into a message."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, str) else text
