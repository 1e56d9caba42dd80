"""What the pages filter by: a scope (user, agent, session) from the query string, a
date to start a listing at, a metadata filter, and the metadata a form sends."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict
from urllib.parse import urlencode

from fastapi import Request

from remem.errors import InvalidInputError
from remem.types import Note


class ScopeArguments(TypedDict):
    """A scope as keyword arguments of `Memory`'s methods."""

    user_id: str | None
    agent_id: str | None
    session_id: str | None


@dataclass(frozen=True)
class ScopeFilter:
    """The user / agent / session filter of a page, from its query string."""

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None

    def __post_init__(self) -> None:
        _check_id("user", self.user_id)
        _check_id("agent", self.agent_id)
        _check_id("session", self.session_id)

    @classmethod
    def of(cls, request: Request) -> ScopeFilter:
        values = [
            request.query_params.get(name, "").strip() for name in ("user", "agent", "session")
        ]
        return cls(*(value or None for value in values))

    @classmethod
    def from_form(cls, user: str, agent: str = "", session: str = "") -> ScopeFilter:
        return cls(user.strip() or None, agent.strip() or None, session.strip() or None)

    def arguments(self) -> ScopeArguments:
        return {"user_id": self.user_id, "agent_id": self.agent_id, "session_id": self.session_id}

    def query(self, **more: str | None) -> str:
        """The query string of this filter and `more` (empty values left out)."""
        pairs = {"user": self.user_id, "agent": self.agent_id, "session": self.session_id, **more}
        return urlencode({name: value for name, value in pairs.items() if value})

    @property
    def empty(self) -> bool:
        return not (self.user_id or self.agent_id or self.session_id)


MAX_SCOPE_ID = 256  # as the REST API allows


def _check_id(name: str, value: str | None) -> None:
    """A scope id a page may pass on: at most MAX_SCOPE_ID characters, no NUL."""
    if value is not None and (len(value) > MAX_SCOPE_ID or "\x00" in value):
        raise InvalidInputError(
            f"the {name} id must be at most {MAX_SCOPE_ID} characters, without NUL"
        )


FIRST_DAY = datetime(1, 1, 1, tzinfo=UTC)


def page_start(request: Request) -> str | None:
    """Where a newest-first listing starts: the `cursor` handed out, or with `before` (a
    date) the newest memory that happened before that day. A cursor is a position (time
    in microseconds since 0001-01-01, row), so one can be made for any day."""
    if cursor := request.query_params.get("cursor"):
        return cursor
    before = request.query_params.get("before", "").strip()
    if not before:
        return None
    try:
        day = date.fromisoformat(before)
    except ValueError:
        message = f"before must be a date such as 2026-03-01, not {before!r}"
        raise InvalidInputError(message) from None
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - FIRST_DAY
    return f"{start // timedelta(microseconds=1):018d}.0"


def known_scopes(notes: tuple[Note, ...] | list[Note]) -> dict[str, list[str]]:
    """The users, agents and sessions seen on a page: suggestions for the filter."""
    found: dict[str, set[str]] = {"users": set(), "agents": set(), "sessions": set()}
    for note in notes:
        for field, value in zip(
            found, (note.scope.user_id, note.scope.agent_id, note.scope.session_id), strict=True
        ):
            if value:
                found[field].add(value)
    return {field: sorted(values)[:50] for field, values in found.items()}


def metadata_filter(text: str) -> dict[str, Any] | None:
    """`key=value` as a metadata filter; the value as JSON when it parses (`n=3` is the
    number 3, `x="3"` the text), else as text."""
    key, equals, value = text.partition("=")
    if not text.strip():
        return None
    if not equals or not key.strip():
        raise InvalidInputError(f"a metadata filter is key=value, not {text!r}")
    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value.strip()
    except RecursionError:  # nested past what the decoder can follow: no metadata is
        raise InvalidInputError("a metadata filter value is nested too deeply") from None
    return {key.strip(): parsed}


NEEDS_SCOPE = "Choose a user, agent or session (search and context are scoped)."


def scope_or_default(
    scope: ScopeFilter, recent: tuple[Note, ...] | list[Note]
) -> ScopeArguments | None:
    """The scope to search: the chosen one, or with none chosen the one user of the newest
    memories; None when that is ambiguous."""
    arguments = scope.arguments()
    if scope.empty:
        users = known_scopes(recent)["users"]
        if len(users) != 1:
            return None
        arguments["user_id"] = users[0]
    return arguments


def parse_metadata(text: str) -> dict[str, Any] | None:
    """The metadata field as a JSON object (None when left empty)."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"metadata is not valid JSON: {error.msg} at {error.pos}") from None
    except RecursionError:
        raise InvalidInputError("metadata is nested too deeply (at most 16 levels)") from None
    if not isinstance(value, dict):
        raise InvalidInputError('metadata must be a JSON object, e.g. {"source": "diary"}')
    return value
