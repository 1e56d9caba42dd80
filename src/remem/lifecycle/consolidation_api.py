"""`Memory.consolidate` (a mixin, as `remem.thoughts_api` is): near-duplicate notes of one
owner merged into one (see `lifecycle/consolidate`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from remem import clock
from remem.errors import InvalidInputError, RememError
from remem.lifecycle import consolidate as merging
from remem.llms.base import LLM
from remem.stores.base import Changes, Store
from remem.types import Consolidation, Merge, Scope

# what `consolidate(model=...)` accepts
MODEL_USE = ("auto", "never")
LAST_PASS = "consolidated_since"  # meta key (per tenant) of where the last pass began
log = logging.getLogger("remem.consolidate")


class ConsolidationMethods:
    """Consolidation, over the parts `Memory` holds."""

    store: Store
    llm: LLM | None
    actor: str

    def _scope(self, user_id: Any, agent_id: Any, session_id: Any) -> Scope:
        raise NotImplementedError

    def _write(self, change: Callable[[], Changes]) -> Changes:
        raise NotImplementedError

    def consolidate(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        since: datetime | str | None = None,
        dry_run: bool = False,
        model: str = "auto",
    ) -> Consolidation:
        """Merge near-duplicate notes (the same thing said again, a fact extracted twice)
        of each owner in the scope (every owner of this tenant when none is given) into
        one: the oldest (a pinned one first) survives; the others keep their sources, are
        linked `merged_into` it and their ids resolve to it; history keeps every version.
        Without a model only plainly identical statements said on the same day merge;
        with one configured (`model="auto"`) it decides each merge, `model="never"` keeps
        to the model-free rules. `since` compares only the notes added or changed since
        then with the rest; `dry_run` reports without merging."""
        if model not in MODEL_USE:
            raise InvalidInputError(f"model must be one of {', '.join(MODEL_USE)}, got {model!r}")
        scope = self._scope(user_id, agent_id, session_id)
        moment = None if since is None else clock.parse_time(since, field="since")
        notes = merging.notes_of(self.store, scope, moment)
        llm = self.llm if model == "auto" else None
        floor = merging.ASK_VECTOR if llm else merging.SAME_VECTOR
        pairs = merging.candidate_pairs(notes, self.store, floor)
        if llm is not None:
            confirmed, decided_by = merging.ask_model(pairs, llm), f"model:{llm.model_id}"
        else:
            confirmed, decided_by = [p for p in pairs if merging.plainly_same(p)], "similarity"
        merges: list[Merge] = []
        for survivor, merged in merging.groups(confirmed, same_words=llm is None):
            plan = Merge(
                survivor.id,
                tuple(note.id for note, _ in merged),
                min(cosine for _, cosine in merged),
                decided_by,
            )
            compared = {note.id: note.version for note in [survivor, *(n for n, _ in merged)]}
            if dry_run or self._merge(plan, [cosine for _, cosine in merged], compared):
                merges.append(plan)
        return Consolidation(len(notes), len(pairs), tuple(merges), bool(dry_run))

    def _merge(self, plan: Merge, cosines: Sequence[float], compared: Mapping[str, int]) -> bool:
        """Merge one group as planned, while every note is at the version compared; False
        when one changed since (updated, deleted, archived, merged): the next pass looks
        again."""

        def change() -> Changes:
            found = self.store.get_notes(list(compared))
            if not merging.still_mergeable(found, compared):
                return Changes()
            merged = [(found[i], c) for i, c in zip(plan.merged_ids, cosines, strict=True)]
            survivor = found[plan.survivor_id]
            return merging.merge_changes(survivor, merged, self.store, self.actor, plan.decided_by)

        return bool(self._write(change).notes)


def consolidate_all(memory: Any) -> int:
    """One background pass over every tenant the memory serves (its own and its API keys'),
    each comparing only its notes added or changed since its last pass with the rest
    (without a model unless one is configured); how many notes were merged. Where a
    tenant's last pass began is kept in the store, so restarts and several processes share
    it; a tenant whose pass fails (its model is down) is retried on the next pass."""
    tenants = {memory.tenant, *(key.tenant for key in memory.store.list_keys())}
    merged = 0
    for tenant in sorted(tenants):
        view = memory.as_tenant(tenant) if tenant != memory.tenant else memory
        key = f"{LAST_PASS}:{tenant}"
        began, last = clock.now(), view.store.get_meta(key)
        try:
            merged += view.consolidate(since=last).merged
        except RememError:
            log.exception("consolidating tenant %r failed; the next pass retries", tenant)
            continue
        view._write(lambda: Changes(meta={key: clock.to_text(began)}))  # noqa: B023
    return merged
