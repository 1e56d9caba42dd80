"""From checked messages to episodes and notes (no LLM: one note per episode), and what
search sees of a note."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from remem import clock, ids
from remem.inputs import Message, check_metadata
from remem.types import Episode, Note, Scope
from remem.write.importance import rate


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
            # each part was checked; together they may pass the size limit
            metadata=check_metadata({**metadata, **message.metadata})
            if message.metadata
            else metadata,
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
            importance=rate(episode.text),
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
