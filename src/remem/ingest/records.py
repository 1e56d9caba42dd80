"""What a parser makes of a file: chunks (a chat message, a part of a document), each with
a key that says where it sits in the file, so a changed file can be matched to the last."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from remem import clock
from remem.errors import InvalidDateError


class UnreadableFileError(Exception):
    """A file that cannot be ingested, and why (reported in `IngestResult.skipped`)."""


@dataclass(frozen=True)
class Chunk:
    """One episode-to-be. `key` is unique in its file; `session` names the conversation or
    document it belongs to; `links` are the names of the notes it links to (wikilinks)."""

    key: str
    text: str
    session: str
    occurred_at: datetime | None
    name: str | None = None
    role: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    links: tuple[str, ...] = ()


@dataclass(frozen=True)
class Parsed:
    """A file read: its format and chunks. `title` is the name other notes link to it by
    (markdown); `senders` the people of a chat whose export does not say which of them is
    the person (WhatsApp, Telegram without account details), so `me` must say it."""

    format: str
    chunks: list[Chunk]
    title: str | None = None
    senders: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """A file to read: its bytes, its name relative to the ingest root (provenance), when
    it was last modified (documents without a date of their own are dated by it), and
    what identifies it across ingests (its ledger and sessions): the absolute path of a
    file on this machine, so a file ingested alone and then with its folder is one file;
    an upload's name."""

    data: bytes
    path: str
    modified: datetime
    identity: str = ""

    def __post_init__(self) -> None:
        if not self.identity:
            object.__setattr__(self, "identity", self.path)


def moment(value: Any) -> datetime | None:
    """A time from an export: seconds since the epoch or ISO 8601 text; None when it is
    missing or not one remem can store."""
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return clock.parse_time(datetime.fromtimestamp(float(value), UTC))
        if isinstance(value, str) and value.strip():
            return clock.parse_time(value.strip().replace("Z", "+00:00"))
    except (InvalidDateError, ValueError, OverflowError, OSError):
        return None
    return None


def text_of(value: Any) -> str:
    """`value` if it is a string, else ""."""
    return value if isinstance(value, str) else ""
