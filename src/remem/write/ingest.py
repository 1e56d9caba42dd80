"""From what a caller passes to `add` to episodes and notes (no LLM: one note per episode)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from remem import clock, ids
from remem.errors import EmptyContentError, InvalidContentError, InvalidInputError
from remem.types import Episode, Note, Scope

Content = str | Sequence[Mapping[str, Any]]


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
        return [Message(_require_text(content, "content"))]
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
    text = _require_text(message["content"], f"{where} content")
    metadata = message.get("metadata")
    return Message(text, role, name, None if metadata is None else check_metadata(metadata))


def _require_text(value: Any, where: str) -> str:
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


def make_episodes(
    messages: Sequence[Message],
    scope: Scope,
    occurred_at: datetime,
    metadata: dict[str, Any],
) -> list[Episode]:
    """One episode per message, sharing scope, time and metadata."""
    recorded_at = clock.now()
    return [
        Episode(
            id=ids.new_id(ids.EPISODE),
            scope=scope,
            text=message.text,
            role=message.role,
            name=message.name,
            metadata={**metadata, **(message.metadata or {})},
            occurred_at=occurred_at,
            recorded_at=recorded_at,
        )
        for message in messages
    ]


def notes_from_episodes(episodes: Sequence[Episode]) -> list[Note]:
    """Without an LLM every episode is its own note, so search works at once."""
    return [
        Note(
            id=ids.new_id(ids.NOTE),
            scope=episode.scope,
            text=episode.text,
            metadata=dict(episode.metadata),
            occurred_at=episode.occurred_at,
            created_at=episode.recorded_at,
            updated_at=episode.recorded_at,
            version=1,
            episode_ids=(episode.id,),
            valid_from=episode.occurred_at,
        )
        for episode in episodes
    ]


def index_text(note: Note, episodes: Mapping[str, Episode]) -> str:
    """What full-text search sees of a note: its text, after the speaker's name when it has
    one, and its context."""
    names = {
        episodes[episode_id].name
        for episode_id in note.episode_ids
        if episode_id in episodes and episodes[episode_id].name
    }
    text = f"{names.pop()}: {note.text}" if len(names) == 1 else note.text
    return f"{text}\n{note.context}" if note.context else text


def embedding_text(note: Note) -> str:
    """What the embedder sees of a note: its text and its context, without the speaker."""
    return f"{note.text}\n{note.context}" if note.context else note.text
