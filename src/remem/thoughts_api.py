"""`Memory.think` (a mixin, as `remem.profile.api` is, so `Memory`'s module stays about
storing and finding memories)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from remem import clock
from remem.embedders import Embedder
from remem.inputs import check_evidence_ids, check_metadata, check_thought
from remem.stores.base import Changes, Store
from remem.types import Note, Scope
from remem.write.thoughts import ThinkRequest, think


class ThoughtMethods:
    """Conclusions (Think-in-Memory), over the parts `Memory` holds."""

    store: Store
    embedder: Embedder
    actor: str

    def _scope(self, user_id: Any, agent_id: Any, session_id: Any) -> Scope:
        raise NotImplementedError

    def _write(self, change: Callable[[], Changes]) -> Changes:
        raise NotImplementedError

    def think(
        self,
        text: str,
        *,
        evidence_ids: Sequence[str],
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        occurred_at: datetime | str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Note:
        """Remember a conclusion (a note of kind "thought", searched like a fact and marked
        inferred in `context`) resting on the memories `evidence_ids` names: live notes of
        the same owner. A conclusion that repeats a live one of the owner is merged into it
        (its new evidence linked, an event recorded). A thought is superseded when a memory
        it rests on is superseded, deleted, archived or its text changed, erased when one is
        purged, and expires with the first of them to expire. Returns the thought."""
        request = ThinkRequest(
            check_thought(text),
            check_evidence_ids(evidence_ids),
            self._scope(user_id, agent_id, session_id).require("think"),
            clock.parse_time(occurred_at),
            check_metadata(metadata),
        )
        thought: list[Note] = []

        def change() -> Changes:
            changes, note = think(request, self.store, self.embedder, actor=self.actor)
            thought[:] = [note]
            return changes

        self._write(change)
        return thought[0]
