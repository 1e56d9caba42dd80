"""What a purge must change in the ingest ledgers: the entries of erased records go, so the
ledgers keep nothing of them (not even a chunk's hash), and a ledger left empty is blanked
and taken off its owner's list. `Memory.purge` and `purge_all` add these rows to their
transaction."""

from __future__ import annotations

import json
from collections.abc import Collection

from remem.ingest.ledger import Ledger, index_key, indexed, owner_ledgers
from remem.stores.base import Records
from remem.types import Scope

__all__ = ["ledger_changes_for_purge"]


def ledger_changes_for_purge(
    store: Records, owner: Scope, erased_ids: Collection[str]
) -> dict[str, str]:
    """The meta rows to write (a blank value: the row is forgotten) when the records
    `erased_ids` (note or episode ids) of `owner` (tenant, user and agent; its session is
    not looked at) are purged. Call it once per owner the purge reached."""
    erased = set(erased_ids)
    rows: dict[str, str] = {}
    emptied: set[str] = set()
    for name in owner_ledgers(store, owner):
        ledger = Ledger.load(store, name)
        for entry in ledger.entries():
            if entry.note_id in erased or entry.episode_id in erased:
                ledger.drop(entry.note_id)
        if ledger.entries():
            rows.update(ledger.flush())
        else:
            emptied.add(name)
            rows[name] = ""
            rows.update({f"{name}:{i}": "" for i in range(len(ledger.pages))})
            rows.update({ledger.content: ""} if ledger.content else {})
    for key in {index_key(owner, name) for name in emptied}:
        left = [name for name in indexed(store, key) if name not in emptied]
        rows[key] = json.dumps(left) if left else ""
    return rows
