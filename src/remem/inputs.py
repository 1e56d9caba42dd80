"""Checks of what callers pass in, below both the read and the write path.

Every public entry point (Python, CLI, REST, MCP) reaches these, so a mistake gets the
same clear `RememError` whichever way it came in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from remem.errors import EmptyContentError, InvalidContentError, InvalidInputError
from remem.types import Scope

Content = str | Sequence[Mapping[str, Any]]
MAX_LIMIT = 1000
MIN_BUDGET, MAX_BUDGET = 50, 100_000
CURSOR_DIGITS = 18  # a cursor is a row number; longer ones overflow a 64-bit integer
TENANT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class Message:
    """One validated chat message."""

    text: str
    role: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None


def parse_content(content: Content) -> list[Message]:
    """A string, or OpenAI-style messages `{"role", "content", "name"?}`, as messages.

    A message may also carry its own `metadata` dict, merged over the call's metadata.
    """
    if isinstance(content, str):
        return [Message(require_text(content, "content"))]
    if not isinstance(content, Sequence) or isinstance(content, bytes | bytearray):
        raise InvalidContentError(
            f"content must be a string or a list of messages, got {type(content).__name__}"
        )
    if not content:
        raise EmptyContentError("content is an empty list of messages")
    return [_parse_message(message, index) for index, message in enumerate(content)]


def _parse_message(message: Any, index: int) -> Message:
    where = f"message {index}"
    if not isinstance(message, Mapping):
        raise InvalidContentError(
            f"{where} must be a dict with 'role' and 'content', got {type(message).__name__}"
        )
    if "content" not in message:
        raise InvalidContentError(f"{where} has no 'content'")
    role, name = message.get("role"), message.get("name")
    for field, value in (("role", role), ("name", name)):
        if value is not None and not isinstance(value, str):
            raise InvalidContentError(f"{where}: '{field}' must be a string")
    text = require_text(message["content"], f"{where} content")
    metadata = message.get("metadata")
    return Message(text, role, name, None if metadata is None else check_metadata(metadata))


def require_text(value: Any, where: str) -> str:
    """`value` if it is a non-empty string that can be stored."""
    if not isinstance(value, str):
        raise InvalidContentError(f"{where} must be text, got {type(value).__name__}")
    if not value.strip():
        raise EmptyContentError(f"{where} is empty")
    if "\x00" in value:
        raise InvalidContentError(f"{where} contains a NUL character")
    return check_utf8(value, where)


def check_utf8(value: str, where: str) -> str:
    """`value`, if it can be stored as UTF-8 (a lone surrogate such as '\\ud800' cannot)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidInputError(f"{where} is not valid Unicode: {error.reason}") from None
    return value


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of the metadata, which must be a JSON-serialisable dict."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        text = json.dumps(dict(metadata), allow_nan=False, ensure_ascii=False)
        return dict(json.loads(check_utf8(text, "metadata")))
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"metadata must be JSON-serialisable: {error}") from None


def make_scope(user_id: Any, agent_id: Any, session_id: Any, tenant: str = "") -> Scope:
    """A scope from caller input: strings only; empty strings count as unset."""
    return Scope(
        _scope_value("user_id", user_id),
        _scope_value("agent_id", agent_id),
        _scope_value("session_id", session_id),
        tenant,
    )


def _scope_value(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string, got {type(value).__name__}")
    return check_utf8(value, name).strip() or None if value is not None else None


def check_tenant(tenant: Any) -> str:
    """A tenant name: 1-64 letters, digits, '.', '_' or '-'."""
    if not isinstance(tenant, str) or not TENANT_NAME.fullmatch(tenant):
        raise InvalidInputError(
            f"tenant must be 1-64 letters, digits, '.', '_' or '-', got {tenant!r}"
        )
    return tenant


def check_limit(limit: Any) -> int:
    """How many results a caller asked for: 1 to MAX_LIMIT."""
    return check_count("limit", limit, 1, MAX_LIMIT)


def check_count(name: str, value: Any, low: int, high: int) -> int:
    """An integer (not a bool) from `low` to `high`."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def check_query(query: Any, operation: str) -> str:
    """A non-empty query string that can be stored."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError(f"{operation} needs a non-empty query string")
    return check_utf8(query, "query")


def check_filters(filters: Any) -> Mapping[str, Any] | None:
    """Metadata filters: None, or a dict of key -> value."""
    if filters is not None and not isinstance(filters, Mapping):
        raise InvalidInputError("filters must be a dict of metadata key -> value")
    return filters


def check_cursor(cursor: Any) -> str | None:
    """A paging cursor this memory handed out (a row number), or None."""
    if cursor is not None and not (
        isinstance(cursor, str) and cursor.isdigit() and len(cursor) <= CURSOR_DIGITS
    ):
        raise InvalidInputError(f"cursor {cursor!r} is not one this memory handed out")
    return cursor
