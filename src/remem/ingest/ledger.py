"""What each ingested file gave, kept in the store's `meta` table beside the records, and
written in the same transaction as them: so a crash never leaves chunks without their
ledger, or the reverse, and an interrupted ingest resumes where it stopped.

One ledger per (tenant, owner, file): a head `{hash, pages}` (`hash` is the whole file's,
set once every chunk of it is in) and pages of at most PAGE entries [key digest, hash,
episode id, note id], so a batch rewrites the few pages it touched, never the whole ledger.
A ledger holds digests and ids only, never the file's text (nor its headings, senders or
times, which a chunk's key is made of): a purge leaves nothing readable behind. The
ledgers of an owner are listed (in BUCKETS meta rows) so a purge can find them."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from remem.ingest.sessions import digest
from remem.stores.base import Records
from remem.types import Scope

PAGE = 256
PREFIX = "ingest:"
INDEX_PREFIX = "ingest-files:"


@dataclass
class Entry:
    """One chunk in memory: where it sat in the file, its hash, its episode and note."""

    key: str
    hash: str
    episode_id: str
    note_id: str


def owner_part(owner: Scope) -> str:
    """An owner as text that digests name (tenant, user, agent)."""
    return f"{owner.tenant}\x00{owner.user_id or ''}\x00{owner.agent_id or ''}"


def ledger_name(owner: Scope, path: str) -> str:
    """The meta key of a file's ledger for one tenant and owner."""
    return PREFIX + digest(owner_part(owner), path)[:40]


def key_digest(key: str) -> str:
    """What a ledger keeps of a chunk's key (only equality is needed)."""
    return digest("chunk-key", key)[:32]


def index_key(owner: Scope, name: str) -> str:
    """The meta row listing the owner's ledgers whose name ends as `name`'s does (256 rows
    per owner, each short: a new file rewrites one)."""
    return f"{INDEX_PREFIX}{digest(owner_part(owner))[:40]}:{name[-2:]}"


def indexed(store: Records, key: str) -> list[str]:
    """The ledger names an index row lists."""
    return ledgers_listed(store.get_meta(key))


def ledgers_listed(row: str | None) -> list[str]:
    """The ledger names in the value of an index row."""
    names = _json(row)
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def owner_ledgers(store: Records, owner: Scope) -> list[str]:
    """Every ledger name of the owner (in files ingested since ledgers were listed)."""
    rows = (index_key(owner, f"{i:02x}") for i in range(256))
    return [name for key in rows for name in indexed(store, key)]


def is_finished(head: str | None) -> bool:
    """Whether a ledger's head row says every chunk of its file is in."""
    fields = _json(head)
    return isinstance(fields, dict) and isinstance(fields.get("hash"), str)


class Ledger:
    """A file's ledger, loaded; changes are kept until `flush` says what to write."""

    def __init__(
        self,
        name: str,
        file_hash: str | None,
        pages: list[list[Entry]],
        stored: str | None = None,
    ) -> None:
        self.name = name
        self.file_hash = file_hash
        self.content: str | None = None  # the meta row that names it by the file's bytes
        self.stored = stored  # the head row as stored, when read or last flushed
        self.pages = pages
        self._page_of = {e.note_id: i for i, page in enumerate(pages) for e in page}
        self._dirty: set[int] = set()
        self._head_dirty = False

    @classmethod
    def load(cls, store: Records, name: str) -> Ledger:
        stored = store.get_meta(name)
        head = _json(stored)
        if not isinstance(head, dict):
            return cls(name, None, [], stored)
        count = head["pages"] if isinstance(head.get("pages"), int) else 0
        pages = [_entries(store.get_meta(f"{name}:{i}")) for i in range(count)]
        file_hash = head.get("hash") if isinstance(head.get("hash"), str) else None
        ledger = cls(name, file_hash, pages, stored)
        ledger.content = head["content"] if isinstance(head.get("content"), str) else None
        return ledger

    @property
    def is_new(self) -> bool:
        """Nothing of the file is in yet (no head written)."""
        return self.file_hash is None and not self.pages

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

    def named_by(self, content_key: str) -> None:
        """The file's bytes name this ledger in the meta row `content_key` (a purge that
        empties the ledger blanks that row too)."""
        if self.content != content_key:
            self.content = content_key
            self._head_dirty = True

    def finish(self, file_hash: str) -> None:
        """Every chunk of the file with this hash is in."""
        if self.file_hash != file_hash:
            self.file_hash = file_hash
            self._head_dirty = True

    def expected(self) -> dict[str, str | None]:
        """What a batch written from this ledger expects of the store (`Changes.expect_meta`):
        its head as read here, so a write by another process since is never written over."""
        return {self.name: self.stored}

    def flush(self) -> dict[str, str]:
        """The meta rows to write for the changes since the last flush."""
        rows = {f"{self.name}:{i}": _dump([_row(e) for e in self.pages[i]]) for i in self._dirty}
        if self._head_dirty or rows:  # the head with a new token: a compare-and-set sees it
            token = secrets.token_hex(8)
            head = {"hash": self.file_hash, "pages": len(self.pages), "writer": token}
            head.update({"content": self.content} if self.content else {})
            rows[self.name] = self.stored = _dump(head)
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
