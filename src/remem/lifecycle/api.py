"""The lifecycle of `Memory`'s notes: update (text, metadata, expiry), pins, archive, the
sweep of expired notes, and counting the reads of notes (a mixin, so `Memory` keeps one
public API while its module stays about storing and finding memories)."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from remem import clock
from remem.embedders import Embedder
from remem.errors import (
    ConflictError,
    InvalidContentError,
    InvalidInputError,
    NotFoundError,
    RememError,
)
from remem.inputs import (
    MAX_COUNT,
    check_count,
    check_expiry,
    check_id,
    check_metadata,
    parse_content,
)
from remem.lifecycle import changes as lifecycle
from remem.lifecycle import retention
from remem.lifecycle.access import AccessLog
from remem.stores.base import Changes, Store
from remem.types import Context, Episode, Hit, Note, Scope
from remem.write import operations
from remem.write.merges import resolved
from remem.write.versions import event

R = TypeVar("R", Episode, Note)
# expired notes purged per round of the sweep (each purge is its own write)
SWEEP_BATCH = 500
NEVER = "never"  # `update(expires_at="never")`: the note no longer expires
log = logging.getLogger("remem.sweep")


class LifecycleMethods:
    """Update, pin, archive and expiry of notes, and their access counts."""

    store: Store
    embedder: Embedder
    actor: str
    tenant: str
    access_log: AccessLog

    def _write(self, change: Callable[[], Changes]) -> Changes:
        raise NotImplementedError

    def _scope(self, user_id: Any, agent_id: Any, session_id: Any) -> Scope:
        raise NotImplementedError

    def _record(self, found: Mapping[str, R], item_id: str, kind: str, *, live: bool) -> R:
        raise NotImplementedError

    def purge(self, item_id: str) -> None:
        raise NotImplementedError

    def _dropping_profiles(self, purged: Changes, scope: Scope) -> Changes:
        raise NotImplementedError

    def update(
        self,
        memory_id: str,
        *,
        text: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        expires_at: datetime | str | None = None,
    ) -> Note:
        """Change a note's text, replace its metadata and/or set when it expires ("never":
        it no longer does); the old version stays in history. A new text supersedes the
        thoughts resting on the note (they rested on what it said).

        Concurrent updates never lose each other (each is applied to the version current
        when it commits) and never bring back a deleted note. With `expected_version`, the
        update applies only to that version, else raises ConflictError."""
        memory_id = check_id(memory_id, "memory_id")
        if text is None and metadata is None and expires_at is None:
            raise InvalidInputError("update needs text, metadata or expires_at")
        if text is not None and not isinstance(text, str):
            raise InvalidContentError(f"text must be a string, got {type(text).__name__}")
        new_text = None if text is None else parse_content(text)[0].text
        new_metadata = None if metadata is None else check_metadata(metadata)
        if expected_version is not None:
            check_count("expected_version", expected_version, 1, MAX_COUNT)
        expiry = None if expires_at in (None, NEVER) else check_expiry(expires_at)

        def change() -> Changes:
            note = self._live(memory_id)
            if expected_version is not None and note.version != expected_version:
                raise ConflictError(note.id, expected_version, note.version)
            if new_text is None and new_metadata is None:
                return lifecycle.expire(note, expiry, self.actor) or Changes()
            changes = operations.update(
                note, new_text, new_metadata, self.store, self.embedder, actor=self.actor
            )
            if expires_at is not None and expiry != note.expires_at:
                changes.notes[0] = _expiring(changes, expiry, self.actor)
            return changes

        return self._written(change, memory_id)

    def pin(self, memory_id: str) -> Note:
        """Pin a note: it never decays and is always eligible for context (a relevance
        floor does not drop it). Recorded in its history ("pin")."""
        return self._lifecycle(memory_id, lambda note: lifecycle.pin(note, True, self.actor))

    def unpin(self, memory_id: str) -> Note:
        """Undo `pin`. Recorded in its history ("unpin")."""
        return self._lifecycle(memory_id, lambda note: lifecycle.pin(note, False, self.actor))

    def archive(self, memory_id: str) -> Note:
        """Take a note out of search, context, lists and the profile, keeping it (`get` still
        reads it; `list(archived=True)` lists it), and supersede the thoughts resting on it.
        Recorded in its history ("archive")."""
        return self._lifecycle(
            memory_id, lambda note: lifecycle.archive(note, True, self.actor, self.store)
        )

    def unarchive(self, memory_id: str) -> Note:
        """Undo `archive`. Recorded in its history ("unarchive")."""
        return self._lifecycle(
            memory_id, lambda note: lifecycle.archive(note, False, self.actor, self.store)
        )

    def set_default_expiry(
        self,
        after: timedelta | float | None,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> None:
        """Make the notes added to this scope from now on expire `after` (a timedelta or
        seconds) once added, unless an add gives its own `expires_at`; None clears the
        scope's default. The most specific default covering an add's scope wins (see
        `remem.lifecycle.retention`)."""
        scope = self._scope(user_id, agent_id, session_id).require("set_default_expiry")
        changes = retention.set_default(scope, retention.check_after(after))
        self._write(lambda: changes)

    def sweep_expired(self) -> int:
        """Purge every note of this tenant whose `expires_at` has passed, as `purge` does
        (with the episodes only it came from); return how many notes were purged. A note
        purged meanwhile (by another sweep, or with what it rested on) or whose expiry was
        lifted meanwhile is skipped; one that cannot be purged is logged and skipped."""
        purged, skipped = 0, set()
        while notes := [
            n
            for n in self.store.expired_notes(self.tenant, clock.now(), SWEEP_BATCH)
            if n.id not in skipped
        ]:
            for note in notes:
                try:
                    gone = self._purge_expired(note.id)
                except NotFoundError:
                    gone = False
                except RememError as error:  # the next notes are not held up by this one
                    log.warning("could not purge expired memory %s: %s", note.id, error)
                    gone = False
                purged += gone
                if not gone:
                    skipped.add(note.id)
        return purged

    # -- access counts ---------------------------------------------------------------------

    def _seen(self, hits: builtins.list[Hit]) -> builtins.list[Hit]:
        """Count a read of each note a search returns (written later, off this path)."""
        self.access_log.record((hit.id, hit.scope) for hit in hits if hit.kind == "note")
        return hits

    def _seen_context(self, context: Context) -> Context:
        """Count a read of each memory a context quotes."""
        self.access_log.record((item.id, None) for item in context.items if item.kind == "memory")
        return context

    def _seen_note(self, note: Note) -> Note:
        self.access_log.record([(note.id, note.scope)])
        return note

    # -- helpers ---------------------------------------------------------------------------

    def _live(self, memory_id: str) -> Note:
        """One live note of this tenant (a lookup for a write: not counted as a read); the id
        of a note merged into another resolves to that one (see `write/merges`)."""
        note = self._record(self.store.get_notes([memory_id]), memory_id, "memory", live=True)
        return self._record({memory_id: resolved(note, self.store)}, memory_id, "memory", live=True)

    def _purge_expired(self, memory_id: str) -> bool:
        """Purge this note if it is still expired when the purge commits (an update may have
        lifted its expiry meanwhile); the note itself, not what it resolves to: a merged
        note's expiry is its own. Whether it was purged."""

        def change() -> Changes:
            found = self.store.get_notes([memory_id])
            note = self._record(found, memory_id, "memory", live=False)
            if note.expires_at is None or note.expires_at > clock.now():
                return Changes()
            purged = operations.purge_note(note, self.store, actor=self.actor)
            return self._dropping_profiles(purged, note.scope)

        return bool(self._write(change).purge)

    def _lifecycle(self, memory_id: str, change: Callable[[Note], Changes | None]) -> Note:
        memory_id = check_id(memory_id, "memory_id")
        return self._written(lambda: change(self._live(memory_id)) or Changes(), memory_id)

    def _written(self, change: Callable[[], Changes], memory_id: str) -> Note:
        """The note after a write (as it was, when the write had nothing to change)."""
        written = self._write(change)
        return written.notes[0] if written.notes else self._live(memory_id)


def _expiring(changes: Changes, expiry: datetime | None, actor: str) -> Note:
    """The updated note of `changes` with a new expiry, and its event added."""
    updated = changes.notes[0]
    before = {"expires_at": _text(updated.expires_at), "version": updated.version - 1}
    after = {"expires_at": _text(expiry), "version": updated.version}
    action = "expire_at" if expiry is not None else "expire_never"
    changes.events.append(event(action, updated.id, updated.scope, actor, before, after))
    return replace(updated, expires_at=expiry)


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else clock.to_text(moment)
