"""A file moved or renamed on this machine is recognised by its bytes: its new ledger takes
over the entries of the ledger of the same bytes whose file is gone, so its chunks are not
added a second time (a changed title or path makes them new versions, not new notes)."""

from __future__ import annotations

import hashlib
import json
import os

from remem.ingest.ledger import Ledger, owner_part
from remem.ingest.records import Source
from remem.ingest.sessions import digest
from remem.stores.base import Records
from remem.types import Scope

PREFIX = "ingest-content:"


def content_key(owner: Scope, data: bytes) -> str:
    """The meta row naming the ledger of the owner's file with these bytes."""
    return PREFIX + digest(owner_part(owner), hashlib.sha256(data).hexdigest())[:40]


def remembered(store: Records, owner: Scope, source: Source, ledger: Ledger) -> dict[str, str]:
    """The row saying which ledger (and file) these bytes were last ingested as, unless
    it says so already (the ledger notes the row's key, for a purge)."""
    key = content_key(owner, source.data)
    ledger.named_by(key)
    value = json.dumps({"ledger": ledger.name, "identity": source.identity})
    return {} if store.get_meta(key) == value else {key: value}


def adopt_moved(store: Records, owner: Scope, source: Source, ledger: Ledger) -> dict[str, str]:
    """Move into the new `ledger` the entries of the ledger of a file with the same bytes
    that is no longer where it was (a file on this machine only: an upload's name says
    nothing of where a file went); the rows that blank the old ledger."""
    if not ledger.is_new:
        return {}
    try:
        row = json.loads(store.get_meta(content_key(owner, source.data)) or "null")
    except ValueError:
        return {}
    if not isinstance(row, dict) or not isinstance(row.get("ledger"), str):
        return {}
    before = row.get("identity")
    if not isinstance(before, str) or before == source.identity or not os.path.isabs(before):
        return {}
    if os.path.exists(before) or row["ledger"] == ledger.name:
        return {}  # a copy, not a move: both files stay what they are
    old = Ledger.load(store, row["ledger"])
    for entry in old.entries():
        ledger.put(entry)
    return {old.name: "", **{f"{old.name}:{i}": "" for i in range(len(old.pages))}}
