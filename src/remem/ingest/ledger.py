"""What each ingested file gave, kept in the store's `meta` table beside the records, and
written in the same transaction as them: so a crash never leaves chunks without their
ledger, or the reverse, and an interrupted ingest resumes where it stopped.

One ledger per (tenant, owner, file): a head `{hash, pages}` (`hash` is the whole file's,
set once every chunk of it is in) and pages of at most PAGE entries [key, hash, episode id,
note id], so a batch rewrites the few pages it touched, never the whole ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from remem.ingest.sessions import digest
from remem.stores.base import Records
from remem.types import Scope

PAGE = 256
PREFIX = "ingest:"


@dataclass
class Entry:
    """One chunk in memory: where it sat in the file, its hash, its episode and note."""

    key: str
    hash: str
    episode_id: str
    note_id: str


def ledger_name(owner: Scope, path: str) -> str:
    """The meta key of a file's ledger for one tenant and owner."""
    owner_part = f"{owner.tenant}\x00{owner.user_id or ''}\x00{owner.agent_id or ''}"
    return PREFIX + digest(owner_part, path)[:40]


class Ledger:
    """A file's ledger, loaded; changes are kept until `flush` says what to write."""

    def __init__(self, name: str, file_hash: str | None, pages: list[list[Entry]]) -> None:
        self.name = name
        self.file_hash = file_hash
        self.pages = pages
        self._page_of = {e.note_id: i for i, page in enumerate(pages) for e in page}
        self._dirty: set[int] = set()
        self._head_dirty = False

    @classmethod
    def load(cls, store: Records, name: str) -> Ledger:
        head = _json(store.get_meta(name))
        if not isinstance(head, dict):
            return cls(name, None, [])
        count = head["pages"] if isinstance(head.get("pages"), int) else 0
        pages = [_entries(store.get_meta(f"{name}:{i}")) for i in range(count)]
        file_hash = head.get("hash") if isinstance(head.get("hash"), str) else None
        return cls(name, file_hash, pages)

    def entries(self) -> list[Entry]:
        return [entry for page in self.pages for entry in page]

    def put(self, entry: Entry) -> None:
        """Record a chunk (replacing the entry of the same note)."""
        page = self._page_of.get(entry.note_id)
        if page is None:
            if not self.pages or len(self.pages[-1]) >= PAGE:
                self.pages.append([])
                self._head_dirty = True
            page = len(self.pages) - 1
            self._page_of[entry.note_id] = page
        else:
            self.pages[page] = [e for e in self.pages[page] if e.note_id != entry.note_id]
        self.pages[page].append(entry)
        self._dirty.add(page)
        self._unfinished()

    def drop(self, note_id: str) -> None:
        """Forget the entry of a note (its chunk is gone, or the note is)."""
        page = self._page_of.pop(note_id, None)
        if page is not None:
            self.pages[page] = [e for e in self.pages[page] if e.note_id != note_id]
            self._dirty.add(page)
            self._unfinished()

    def finish(self, file_hash: str) -> None:
        """Every chunk of the file with this hash is in."""
        if self.file_hash != file_hash:
            self.file_hash = file_hash
            self._head_dirty = True

    def flush(self) -> dict[str, str]:
        """The meta rows to write for the changes since the last flush."""
        rows = {f"{self.name}:{i}": _dump([_row(e) for e in self.pages[i]]) for i in self._dirty}
        if self._head_dirty or rows:
            rows[self.name] = _dump({"hash": self.file_hash, "pages": len(self.pages)})
        self._dirty.clear()
        self._head_dirty = False
        return rows

    def _unfinished(self) -> None:
        if self.file_hash is not None:
            self.file_hash = None
            self._head_dirty = True


def _row(entry: Entry) -> list[str]:
    return [entry.key, entry.hash, entry.episode_id, entry.note_id]


def _entries(text: str | None) -> list[Entry]:
    rows = _json(text)
    if not isinstance(rows, list):
        return []
    return [
        Entry(*row)
        for row in rows
        if isinstance(row, list) and len(row) == 4 and all(isinstance(v, str) for v in row)
    ]


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None  # a damaged ledger is rebuilt: its chunks are matched again as new


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
