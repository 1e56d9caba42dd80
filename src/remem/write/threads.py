"""Implicit conversation threads: which turns of an owner belong to one conversation when
the app sends no session id.

Most apps call `add` with a user id only. The ranking steps that read a conversation's
structure (a turn with the one it replies to, neighbours sharing score, passages, a question
handing on to its answer) need to know which turns were one exchange. Without a session id,
turns said close together in time are: the same inactivity gap that ends a web session
(30 minutes) ends a thread. A turn joins the thread of the owner's sessionless turn nearest
in time within that gap (before or after it, so a turn added late still finds its place),
or starts a new one. An explicit session id always wins: its turns' thread is the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from remem import ids
from remem.types import Note, Scope

# Turns further apart than this (with nothing of the owner's in between) are different
# conversations: the inactivity timeout web analytics uses for a visit; a chat's turns
# are seconds to minutes apart, two chats on one day usually hours.
GAP = timedelta(minutes=30)


class ThreadLookup(Protocol):
    def thread_near(self, scope: Scope, moment: datetime, gap: timedelta) -> str | None:
        """The thread of the owner's live sessionless turn said nearest to `moment`, if one
        was said within `gap` of it."""


def assign_threads(notes: Sequence[Note], store: ThreadLookup) -> list[Note]:
    """`notes` with their thread: the session for a turn of a session, an inferred thread
    for a turn without one, none for other notes."""
    assigned: list[Note] = []
    for note in notes:
        if note.kind != "turn":
            assigned.append(note)
        elif note.scope.session_id is not None:
            assigned.append(replace(note, thread=note.scope.session_id))
        else:
            thread = _from_batch(assigned, note) or store.thread_near(
                note.scope, note.occurred_at, GAP
            )
            assigned.append(replace(note, thread=thread or ids.new_id(ids.THREAD)))
    return assigned


def _from_batch(earlier: Sequence[Note], note: Note) -> str | None:
    """The thread of a turn of the same add said within the gap (messages added together
    are one exchange unless their times say otherwise)."""
    for other in reversed(earlier):
        if (
            other.thread is not None
            and other.scope == note.scope
            and abs(other.occurred_at - note.occurred_at) <= GAP
        ):
            return other.thread
    return None
