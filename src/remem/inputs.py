"""Checks of what callers pass in, below both the read and the write path.

Every public entry point (Python, CLI, REST, MCP) reaches these, so a mistake gets the
same clear `RememError` whichever way it came in.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from remem import clock, ids
from remem.errors import (
    EmptyContentError,
    InvalidContentError,
    InvalidDateError,
    InvalidInputError,
)
from remem.types import ORGANISE_JOB, Episode, Event, Job, Link, Note, Scope

Content = str | Sequence[Mapping[str, Any]]
MAX_LIMIT = 1000
MIN_BUDGET, MAX_BUDGET = 50, 100_000
TENANT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_ID_LENGTH = 200  # ids remem makes are 29 characters; this leaves room for foreign ones
# an id a file brings in: nothing that means more in a URL's path ("nt_/../../x" opened
# another memory from a link in the web UI)
FILE_ID = re.compile(r"[A-Za-z0-9_.:-]+")
MAX_SCOPE_ID_LENGTH = 256  # a user, agent or session id (the REST API's limit too)
# Metadata is read back with every note: deeper or larger values made every read of the
# owner's memories fail, so they are refused when written.
MAX_METADATA_DEPTH = 16
MAX_METADATA_BYTES = 64 * 1024
JSON_SCALARS = (str, int, float, bool, type(None))


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
        if value is not None:
            check_storable(value, f"{where}: '{field}'")
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


def check_storable(value: str, where: str) -> str:
    """`value`, if both stores can keep it: no NUL (PostgreSQL text cannot hold one), and
    valid UTF-8."""
    if "\x00" in value:
        raise InvalidInputError(f"{where} contains a NUL character")
    return check_utf8(value, where)


def check_id(value: Any, what: str = "id") -> str:
    """An id a caller names (of a note, an episode...): a short, storable, non-empty string."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{what} must be a non-empty string, got {_shown(value)}")
    check_length(value, what, MAX_ID_LENGTH)
    return check_storable(value, what)


def check_metadata(metadata: Mapping[str, Any] | None, where: str = "metadata") -> dict[str, Any]:
    """A copy of the metadata: a JSON-serialisable dict with string keys, at most
    MAX_METADATA_DEPTH levels deep and MAX_METADATA_BYTES long as JSON."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"{where} must be a dict, got {type(metadata).__name__}")
    check_json(metadata, where, MAX_METADATA_DEPTH)
    try:
        text = json.dumps(dict(metadata), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"{where} must be JSON-serialisable: {error}") from None
    size = len(text.encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise InvalidInputError(
            f"{where} is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES // 1024} KiB"
        )
    return dict(json.loads(text))


def check_json(value: Any, where: str, max_depth: int) -> None:
    """Raise unless `value` is JSON data both stores can keep: dicts with string keys,
    lists, finite numbers, storable strings; at most `max_depth` containers deep."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:  # a loop, not recursion: hostile nesting must not exhaust the stack
        item, path, depth = stack.pop()
        if isinstance(item, str):
            check_storable(item, path)
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidInputError(f"{path} is {item}: numbers must be finite")
        elif isinstance(item, JSON_SCALARS):
            continue
        elif depth >= max_depth:
            raise InvalidInputError(f"{where} is nested deeper than {max_depth} levels")
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise InvalidInputError(f"{path} has a key that is not a string: {key!r}")
                check_storable(key, f"{path} key")
                stack.append((inner, f"{path}[{key!r}]", depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((inner, f"{path}[{index}]", depth + 1) for index, inner in enumerate(item))
        else:
            raise InvalidInputError(f"{path}: a {type(item).__name__} is not JSON data")


def make_scope(user_id: Any, agent_id: Any, session_id: Any, tenant: str = "") -> Scope:
    """A scope from caller input: strings only; empty strings count as unset."""
    return Scope(
        _scope_value("user_id", user_id),
        _scope_value("agent_id", agent_id),
        _scope_value("session_id", session_id),
        tenant,
    )


def _scope_value(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string, got {type(value).__name__}")
    check_length(value, name, MAX_SCOPE_ID_LENGTH)
    return check_storable(value, name).strip() or None


def check_length(value: str, what: str, limit: int) -> None:
    """Refuse a string longer than `limit` characters, naming it."""
    if len(value) > limit:
        raise InvalidInputError(f"{what} is longer than {limit} characters")


def check_tenant(tenant: Any) -> str:
    """A tenant name: 1-64 letters, digits, '.', '_' or '-'."""
    if not isinstance(tenant, str) or not TENANT_NAME.fullmatch(tenant):
        raise InvalidInputError(
            f"tenant must be 1-64 letters, digits, '.', '_' or '-', got {tenant!r}"
        )
    return tenant


# A thought is a conclusion: a sentence or a paragraph (a longer text is something to `add`),
# resting on at most this many memories.
MAX_THOUGHT_CHARS = 10_000
MAX_EVIDENCE = 100


def check_thought(text: Any) -> str:
    """The text of a conclusion: as `add` checks a text, and at most MAX_THOUGHT_CHARS."""
    checked = require_text(text, "text")
    if len(checked) > MAX_THOUGHT_CHARS:
        raise InvalidInputError(
            f"text is {len(checked)} characters; a conclusion takes at most {MAX_THOUGHT_CHARS}"
        )
    return checked


def check_evidence_ids(value: Any) -> tuple[str, ...]:
    """The ids of the memories a conclusion rests on: a list of 1 to MAX_EVIDENCE memory
    ids (repeats dropped, the order kept)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise InvalidInputError(
            "evidence_ids must be a non-empty list of the memory ids (nt_...) the conclusion"
            f" rests on, got {_shown(value)}"
        )
    if len(value) > MAX_EVIDENCE:
        raise InvalidInputError(f"evidence_ids names {len(value)} memories; at most {MAX_EVIDENCE}")
    checked = [check_id(item, f"evidence_ids[{index}]") for index, item in enumerate(value)]
    for index, item in enumerate(checked):
        if ids.kind_of(item) == ids.EPISODE:
            raise InvalidInputError(
                f"evidence_ids[{index}]: {item!r} is an episode; name the memory (nt_...)"
                " made from it"
            )
    return tuple(dict.fromkeys(checked))


def check_limit(limit: Any) -> int:
    """How many results a caller asked for: 1 to MAX_LIMIT."""
    return check_count("limit", limit, 1, MAX_LIMIT)


def check_count(name: str, value: Any, low: int, high: int) -> int:
    """An integer (not a bool) from `low` to `high`."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def check_share(value: Any, name: str = "profile_share") -> float:
    """A share of a budget: a finite number from 0 to 1."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidInputError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


def check_expiry(value: Any) -> datetime:
    """When a note expires: a datetime or ISO 8601 string, in the future. A time already
    past is refused (an add or update that would vanish at once is a mistake to report)."""
    moment = clock.parse_time(value, field="expires_at")
    if moment <= clock.now():
        raise InvalidDateError(f"expires_at: {clock.to_text(moment)} is not in the future")
    return moment


def check_query(query: Any, operation: str) -> str:
    """A non-empty query string that can be stored."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError(f"{operation} needs a non-empty query string")
    return check_storable(query, "query")


def check_filters(filters: Any) -> Mapping[str, Any] | None:
    """Metadata filters: None, or a dict of key -> value."""
    if filters is not None and not isinstance(filters, Mapping):
        raise InvalidInputError("filters must be a dict of metadata key -> value")
    return filters


ORDERS = ("oldest", "newest", "added")  # by occurred_at (ties: insertion order), or insertion
# where a page ended: the last item's time (microseconds since 0001-01-01, fixed width) and
# row number. One shape for every order, so any cursor of that shape reads as a position.
CURSOR = re.compile(r"[0-9]{18}\.[0-9]{1,18}")


def check_order(order: Any) -> str:
    """A listing order: "oldest" (by occurred_at), "newest" or "added" (insertion)."""
    if order not in ORDERS:
        raise InvalidInputError(f"order {_shown(order)} is not one of {', '.join(ORDERS)}")
    return str(order)


def check_cursor(cursor: Any) -> str | None:
    """A paging cursor of the shape this memory hands out, or None."""
    # isascii: \d and str.isdigit() also match '²' and digits int() or SQL cannot read
    if cursor is not None and not (
        isinstance(cursor, str) and cursor.isascii() and CURSOR.fullmatch(cursor)
    ):
        raise InvalidInputError(f"cursor {_shown(cursor)} is not one this memory handed out")
    return cursor


def check_path(value: Any, operation: str) -> str | os.PathLike[str]:
    """A file path a caller names: a non-empty string or path, without NUL."""
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise InvalidInputError(f"{operation} needs a file path, got {_shown(value)}")
    if "\x00" in str(value):
        raise InvalidInputError(f"{operation}: the file path contains a NUL character")
    return value


def _shown(value: Any) -> str:
    """A value for an error message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- records of an import file ------------------------------------------------------------

MAX_COUNT = 2**31 - 1  # PostgreSQL `integer`: versions, attempts
MAX_REAL = 3.4e38  # PostgreSQL `real` (float32): importance, weight
MAX_RECORD_DEPTH = 32  # event snapshots and job payloads hold metadata inside them
Record = Episode | Note | Link | Event | Job
OWN_KIND = {Episode: ids.EPISODE, Note: ids.NOTE, Link: ids.LINK, Event: ids.EVENT, Job: ids.JOB}
RECORD_KINDS = (ids.EPISODE, ids.NOTE)


def check_raw_record(data: Mapping[str, Any]) -> None:
    """Raise unless every field of a decoded JSON record is data both stores can keep."""
    for name, value in data.items():
        check_json(value, f"field {name!r}", MAX_RECORD_DEPTH)


def check_record(record: Record, tenant: str) -> None:
    """Raise unless a typed record from a file can be stored in `tenant`: ids of the right
    kind, counts and numbers the stores hold, metadata within its limits, its own tenant."""
    _check_kind(record.id, "id", (OWN_KIND[type(record)],))
    for name, value, kinds in references(record):
        _check_kind(value, name, kinds)
    if isinstance(record, Note):
        check_count("field 'version'", record.version, 1, MAX_COUNT)
        _check_real("importance", record.importance)
        check_count("field 'access_count'", record.access_count, 0, MAX_COUNT)
        if record.thread is not None:
            check_id(record.thread, "field 'thread'")
    elif isinstance(record, Job):
        check_count("field 'attempts'", record.attempts, 0, MAX_COUNT)
    elif isinstance(record, Link):
        _check_real("weight", record.weight)
    if isinstance(record, Episode | Note):
        check_metadata(record.metadata, "field 'metadata'")
    if isinstance(record, Episode | Note | Event):
        _check_scope(record.scope, tenant)


Reference = tuple[str, str, tuple[str, ...]]  # (field, id, the kinds it may be)


def references(record: Record) -> list[Reference]:
    """The episodes and notes a record names."""
    if isinstance(record, Note):
        named: list[Reference] = [
            ("field 'episode_ids'", e, (ids.EPISODE,)) for e in record.episode_ids
        ]
        if record.superseded_by is not None:
            named.append(("field 'superseded_by'", record.superseded_by, (ids.NOTE,)))
        return named
    if isinstance(record, Link):
        return [
            ("field 'source_id'", record.source_id, (ids.NOTE,)),
            ("field 'target_id'", record.target_id, (ids.NOTE,)),
        ]
    if isinstance(record, Event):  # a profile's history is kept with the rest
        return [("field 'target_id'", record.target_id, (*RECORD_KINDS, ids.PROFILE))]
    if isinstance(record, Job):
        return [("field 'target_id'", record.target_id, RECORD_KINDS), *_job_episodes(record)]
    return []


def stored_with(record: Record) -> list[str]:
    """The records a record cannot be stored without (the stores' foreign keys)."""
    if isinstance(record, Note):
        return list(record.episode_ids)
    if isinstance(record, Link):
        return [record.source_id, record.target_id]
    return []


def _job_episodes(job: Job) -> list[Reference]:
    """The episodes an organise job's payload names: it reads them when it runs."""
    if job.kind != ORGANISE_JOB:
        return []
    named = job.payload.get("episodes")
    if not isinstance(named, list):
        raise InvalidInputError("field 'payload' of an organise job must list its 'episodes'")
    return [("field 'payload.episodes'", item, (ids.EPISODE,)) for item in named]


def _check_kind(value: str, name: str, kinds: tuple[str, ...]) -> None:
    where = name if name.startswith("field") else f"field {name!r}"
    check_id(value, where)
    if ids.kind_of(value) not in kinds:
        wanted = " or ".join(f"{kind}_" for kind in kinds)
        raise InvalidInputError(f"{where} must be an id starting {wanted}, got {_shown(value)}")
    if not FILE_ID.fullmatch(value):
        raise InvalidInputError(
            f"{where} may hold only letters, digits and '_', '-', '.', ':', got {_shown(value)}"
        )


def _check_real(name: str, value: float) -> None:
    if not -MAX_REAL <= value <= MAX_REAL:
        raise InvalidInputError(f"field {name!r} is {value}: beyond what a store keeps")


def _check_scope(scope: Scope, tenant: str) -> None:
    for name in ("user_id", "agent_id", "session_id"):
        value = getattr(scope, name)
        if value is not None and not value.strip():
            raise InvalidInputError(f"field 'scope.{name}' must be null or a non-empty string")
        if value is not None:
            check_length(value, f"field 'scope.{name}'", MAX_SCOPE_ID_LENGTH)
    if scope.tenant != tenant:
        raise InvalidInputError(
            f"field 'scope.tenant': the record belongs to tenant {scope.tenant!r}, and this"
            f" import is into tenant {tenant!r} (import it through that tenant's memory)"
        )
