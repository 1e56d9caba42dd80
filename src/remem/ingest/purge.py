"""What a purge must change in the ingest ledgers: the entries of erased records go, so the
ledgers keep nothing of them (not even a chunk's hash), and a ledger left empty is blanked
and taken off its owner's list. `Memory.purge` and `purge_all` add these rows to their
transaction."""

from __future__ import annotations

import json
from collections.abc import Collection

from remem.ingest.ledger import Ledger, index_key, ledgers_listed, owner_ledgers
from remem.stores.base import Changes, Records
from remem.types import Scope

__all__ = ["ledger_changes_for_purge"]


def ledger_changes_for_purge(store: Records, owner: Scope, erased_ids: Collection[str]) -> Changes:
    """The meta rows to write (a blank value: the row is forgotten) when the records
    `erased_ids` (note or episode ids) of `owner` (tenant, user and agent; its session is
    not looked at) are purged, each expected to be as read here (an ingest that commits
    meanwhile makes the purge read them again). Call it once per owner the purge reached."""
    erased = set(erased_ids)
    changes = Changes()
    emptied: set[str] = set()
    for name in owner_ledgers(store, owner):
        ledger = Ledger.load(store, name)
        expected = ledger.expected()
        for entry in ledger.entries():
            if entry.note_id in erased or entry.episode_id in erased:
                ledger.drop(entry.note_id)
        if ledger.entries():
            rows = ledger.flush()
        else:
            emptied.add(name)
            rows = {name: "", **{f"{name}:{i}": "" for i in range(len(ledger.pages))}}
            rows.update({ledger.content: ""} if ledger.content else {})
        changes.meta.update(rows)
        changes.expect_meta.update(expected if rows else {})
    for key in {index_key(owner, name) for name in emptied}:
        stored = store.get_meta(key)
        left = [name for name in ledgers_listed(stored) if name not in emptied]
        changes.meta[key] = json.dumps(left) if left else ""
        changes.expect_meta[key] = stored
    return changes
