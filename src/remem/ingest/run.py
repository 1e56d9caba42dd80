"""The one entry point of ingesting: files (or uploaded bytes) in, an `IngestResult` out.

For each file: read it as its format says, give each chunk its speaker's role, match the
chunks with the file's ledger (one per conversation of a chat export with ids), and commit
the steps in batches (each batch's notes embedded together, the ledger in the same
transaction). A file that cannot be read, or that a parser fails on, is reported in
`skipped` and the others go on; a failing store is raised.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from remem.errors import InvalidInputError, StoreError
from remem.ingest import detect
from remem.ingest.batch import FileFacts, Target, batch_changes
from remem.ingest.files import find_files, read_source
from remem.ingest.ledger import Ledger, index_key, is_finished, ledger_name, ledgers_listed
from remem.ingest.links import wikilink_changes
from remem.ingest.plan import Step, chunk_hash, plan
from remem.ingest.records import Chunk, Parsed, Source, UnreadableFileError
from remem.ingest.renames import adopt_moved, remembered
from remem.ingest.sessions import digest
from remem.stores.base import Changes, MetaChangedError, Records, StaleWriteError
from remem.types import IngestResult, Note

__all__ = ["BATCH", "Me", "Progress", "Target", "ingest_paths", "ingest_sources"]

BATCH = 256  # chunk writes per transaction: one embedding batch, a short write lock
MAX_KEY = 200  # characters of a chunk's key (ids in an export may be any length)
ATTEMPTS = 5  # a file another writer overtook is planned again this many times
QUIET = 30.0  # seconds without a write to a file's ledger: its other ingest stopped
POLL = 0.2  # seconds between looks at a ledger another ingest is writing
QUIET_WAIT = 600.0
CONVERSATIONS = ("chatgpt", "claude", "telegram")  # exports that give each conversation an id
T = TypeVar("T")
R = TypeVar("R")
Me = str | Callable[[list[str]], str | None] | None
Commit = Callable[[Changes], None]
# a lock lives while an ingest of its file holds it: the table does not grow with every file
_file_locks: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
_file_locks_guard = threading.Lock()
_index_guard = threading.Lock()
log = logging.getLogger(__name__)


class _Passed(Exception):
    """An error the caller must see, not a bad file: the store's (a commit failed), or
    that of the caller's own callback (`progress`, `me`)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Progress:
    """Where an ingest is: file `index` of `files` (`path`), `done` of its `total` steps."""

    path: str
    index: int
    files: int
    done: int
    total: int


@dataclass
class _Tally:
    files: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def result(self) -> IngestResult:
        counts = self.counts
        return IngestResult(
            files=self.files,
            added=counts["add"],
            updated=counts["update"],
            unchanged=counts["same"] + counts["forgotten"],  # neither is written
            removed=counts["remove"],
            skipped=tuple(self.skipped or ()),
        )


class _Person:
    """Who "me" is: given, or asked once (a callable) when a chat needs it."""

    def __init__(self, me: Me) -> None:
        self.name = me if isinstance(me, str) and me.strip() else None
        self._ask = me if callable(me) else None

    def needed(self, senders: Sequence[str]) -> str | None:
        if self.name is None and self._ask is not None and len(senders) > 1:
            answer, self._ask = _passing(self._ask, list(senders)), None
            self.name = answer.strip() if answer and answer.strip() else None
        return self.name


def ingest_paths(
    paths: str | Path | Iterable[str | Path],
    target: Target,
    commit: Commit,
    *,
    me: Me = None,
    progress: Callable[[Progress], None] | None = None,
    batch: int = BATCH,
) -> IngestResult:
    """Ingest files and folders (recursively) on this machine."""
    found = list(find_files([Path(path).expanduser() for path in _paths(paths)]))

    def sources() -> Iterable[Source | tuple[str, str]]:
        for item in found:
            try:
                yield read_source(item) if item.problem is None else (item.name, item.problem)
            except UnreadableFileError as error:
                yield (item.name, str(error))

    return ingest_sources(sources(), target, commit, me=me, progress=progress, batch=batch,
                          count=len(found))  # fmt: skip


def ingest_sources(
    sources: Iterable[Source | tuple[str, str]],
    target: Target,
    commit: Commit,
    *,
    me: Me = None,
    progress: Callable[[Progress], None] | None = None,
    batch: int = BATCH,
    count: int | None = None,
) -> IngestResult:
    """Ingest files given as bytes (uploads), or (name, reason) pairs already skipped."""
    if not (target.owner.user_id or target.owner.agent_id):
        raise InvalidInputError(
            "ingest needs an owner: pass user_id and/or agent_id (each conversation or"
            " document becomes a session of it)"
        )
    tally = _Tally()
    person = _Person(me)
    for index, source in enumerate(sources, 1):
        if isinstance(source, tuple):
            tally.skipped.append(source)
            continue

        def report(done: int, total: int, path: str = source.path, at: int = index) -> None:
            if progress is not None:
                _passing(progress, Progress(path, at, count or at, done, total))

        try:
            parsed = detect.parse(source, person.name)
            chunks = _prepared(parsed, person)
            steps = [
                step
                for identity, part in units(parsed, chunks, source)
                for step in _sync_file(
                    parsed, part, source, identity, target, _guarded(commit), report, batch
                )
            ]
        except _Passed as failed:
            raise failed.error from None
        except (StoreError, MemoryError):
            raise
        except Exception as error:  # a parser's bug on odd input must not stop the others
            tally.skipped.append((source.path, _reason(source, error)))
            continue
        tally.counts.update(step.action for step in steps)
        tally.files += 1
    return tally.result()


def _reason(source: Source, error: Exception) -> str:
    """Why a file was skipped; an unexpected error is logged with its traceback too."""
    if isinstance(error, UnreadableFileError):
        return str(error)
    log.warning("ingest skipped %s", source.path, exc_info=error)
    return f"could not be read: {type(error).__name__}: {error}"


def _guarded(commit: Commit) -> Commit:
    """`commit`, its failures marked as the store's (a stale write is planned again)."""

    def guarded(changes: Changes) -> None:
        try:
            commit(changes)
        except StaleWriteError:
            raise
        except Exception as error:
            raise _Passed(error) from error

    return guarded


def _passing(callback: Callable[[T], R], argument: T) -> R:
    """The caller's `callback` called, its error marked as the caller's."""
    try:
        return callback(argument)
    except Exception as error:
        raise _Passed(error) from error


def _paths(paths: str | Path | Iterable[str | Path]) -> list[str | Path]:
    if isinstance(paths, str | Path):
        return [paths]
    listed = list(paths)
    if not listed:
        raise InvalidInputError("ingest needs at least one file or folder")
    return listed


def _prepared(parsed: Parsed, person: _Person) -> list[Chunk]:
    """The chunks with roles (the person's own messages "user", the others' their
    sender's name), storable text, and keys unique in the file."""
    me = person.needed(parsed.senders) if parsed.senders else person.name
    seen: Counter[str] = Counter()
    chunks = []
    for chunk in parsed.chunks:
        # (a sender's name becomes the role too: cleaned first, or a NUL in a chat
        # export's name would be stored where the memory's own export cannot restore it)
        name = storable(chunk.name) if chunk.name else None
        role = storable(chunk.role) if chunk.role is not None else None
        if role is None and name:
            mine = me is not None and name.casefold() == me.casefold()
            role = "user" if mine else name
        seen[chunk.key] += 1
        key = chunk.key if seen[chunk.key] == 1 else f"{chunk.key}~{seen[chunk.key]}"
        key = key if len(key) <= MAX_KEY else f"{key[: MAX_KEY - 33]}~{digest(key)[:32]}"
        text = storable(chunk.text).strip()
        if text:
            metadata = storable(chunk.metadata)
            chunks.append(replace(chunk, key=storable(key), text=text, name=name, role=role,
                                  metadata=metadata))  # fmt: skip
    if not chunks:
        raise UnreadableFileError(f"no text found in it (read as {parsed.format})")
    return chunks


def storable(value: Any) -> Any:
    """Strings both stores can keep: no NUL, no lone surrogate (JSON exports may hold
    both); in dicts and lists too."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {storable(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def _sync_file(
    parsed: Parsed,
    chunks: list[Chunk],
    source: Source,
    identity: str,
    target: Target,
    commit: Commit,
    report: Callable[[int, int], None],
    batch: int,
) -> list[Step]:
    """Bring the memory in line with one file (or one conversation of it: `identity`
    names its ledger), planned again when another writer changed one of its notes or its
    ledger in between (each batch commits only while the ledger is as it was read); the
    steps taken."""
    name = ledger_name(target.owner, identity)
    committed: list[Step] = []  # by attempts overtaken after they wrote some batches
    with _lock(name):
        for _ in range(ATTEMPTS):
            try:
                steps = _apply_plan(
                    parsed, chunks, source, target, commit, report, batch, name, committed
                )
                return _as_done(steps, committed)
            except MetaChangedError as stale:
                overtaken: Exception = stale
                if stale.key == name:  # another ingest of this file: let it finish, catch up
                    _wait_until_quiet(target.store, name)
            except StaleWriteError as stale:
                overtaken = stale
        raise StoreError(f"{source.path}: gave up after {ATTEMPTS} attempts: {overtaken}")


def _as_done(steps: list[Step], committed: list[Step]) -> list[Step]:
    """The steps of the attempt that finished, with what earlier attempts of this ingest
    wrote counted as theirs (their chunks are "same" to the last plan)."""
    earlier = {step.note_id: step for step in committed if step.action != "same"}
    final = [earlier.get(s.note_id, s) if s.action == "same" else s for s in steps]
    seen = {step.note_id for step in final}
    return final + [step for step in earlier.values() if step.note_id not in seen]


def _wait_until_quiet(store: Records, name: str) -> None:
    """Wait (up to QUIET_WAIT seconds) until the other ingest of the file has finished it
    (its ledger's head holds the file's hash) or has written nothing for QUIET seconds (it
    stopped, and this one takes over): two ingests of one file then take turns instead of
    racing batch by batch, however long a batch takes to embed."""
    deadline = time.monotonic() + QUIET_WAIT
    last, changed = store.get_meta(name), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - changed < QUIET:
        time.sleep(POLL)
        now = store.get_meta(name)
        if is_finished(now):
            return
        if now != last:
            last, changed = now, time.monotonic()


def _apply_plan(
    parsed: Parsed,
    chunks: list[Chunk],
    source: Source,
    target: Target,
    commit: Commit,
    report: Callable[[int, int], None],
    batch: int,
    name: str,
    committed: list[Step],
) -> list[Step]:
    ledger = Ledger.load(target.store, name)
    if ledger.is_new:
        _register(target, name, commit)
    whole = name == ledger_name(target.owner, source.identity)  # not one conversation of it
    moved = adopt_moved(target.store, target.owner, source, ledger) if whole else {}
    entries = ledger.entries()
    found = _notes(target.store, [entry.note_id for entry in entries])
    live = {i: note for i, note in found.items() if note.deleted_at is None}
    for entry in entries:
        if entry.note_id not in found:
            ledger.drop(entry.note_id)  # purged since: its chunk comes back
    steps = plan(chunks, entries, live, forgotten=found.keys() - live.keys())
    file_hash = digest(parsed.format, *(chunk_hash(chunk) for chunk in chunks))
    facts = FileFacts(parsed.format, source.path, _fallback_time(chunks, source))
    batches = _batches(steps, batch)
    for number, part in enumerate(batches, 1):
        changes = batch_changes(part, facts, target, ledger)
        changes.meta.update(moved if number == 1 else {})
        if number == len(batches):
            ledger.finish(file_hash)
            _merge(changes, _links(parsed, steps, target))
            known = remembered(target.store, target.owner, source, ledger) if whole else {}
            changes.meta.update(known)
        changes.expect_meta.update(ledger.expected())  # else another ingest wrote it: plan again
        changes.meta.update(ledger.flush())
        if _writes_anything(changes):
            commit(changes)
            committed += part
        report(sum(len(done) for done in batches[:number]), len(steps))
    return steps


def units(parsed: Parsed, chunks: list[Chunk], source: Source) -> list[tuple[str, list[Chunk]]]:
    """What is synced on its own, with the identity its ledger is named by: each
    conversation of a chat export with ids (the same conversation in a newer export, or
    in a copy elsewhere, updates what the last one gave; one missing from it is left
    alone), else the whole file."""
    if parsed.format not in CONVERSATIONS:
        return [(source.identity, chunks)]
    grouped: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        conversation = chunk.metadata.get("conversation_id")
        if not isinstance(conversation, str) or conversation.startswith("#"):  # no id: the file
            identity = source.identity
        else:
            identity = f"{parsed.format}\x00conversation\x00{conversation}"
        grouped.setdefault(identity, []).append(chunk)
    return list(grouped.items())


def _batches(steps: list[Step], size: int) -> list[list[Step]]:
    """Runs of steps with at most `size` writes each (unchanged and forgotten chunks
    cost nothing)."""
    batches: list[list[Step]] = [[]]
    writes = 0
    for step in steps:
        writing = step.action in ("add", "update", "remove")
        if writing and writes >= size:
            batches.append([])
            writes = 0
        batches[-1].append(step)
        writes += writing
    return batches


def _notes(store: Records, note_ids: list[str]) -> dict[str, Note]:
    """The notes of a ledger's entries still in the store (live or deleted)."""
    found: dict[str, Note] = {}
    for start in range(0, len(note_ids), 500):
        found.update(store.get_notes(note_ids[start : start + 500]))
    return found


def _register(target: Target, name: str, commit: Commit) -> None:
    """List a new ledger among its owner's (so a purge finds it), in a write of its own
    made only while the row is as read (another process listing a file of the same row at
    once makes this one read it again)."""
    key = index_key(target.owner, name)
    with _index_guard:
        for _ in range(ATTEMPTS):
            stored = target.store.get_meta(key)
            names = ledgers_listed(stored)
            if name in names:
                return
            try:
                commit(Changes(meta={key: json.dumps([*names, name])}, expect_meta={key: stored}))
                return
            except MetaChangedError:
                continue
        raise StoreError(f"could not list ledger {name}: {key} kept changing")


def _fallback_time(chunks: list[Chunk], source: Source) -> Any:
    """When a chunk without a time of its own happened: the first time the file gives,
    else when the file was last changed."""
    return next((c.occurred_at for c in chunks if c.occurred_at is not None), source.modified)


def _links(parsed: Parsed, steps: list[Step], target: Target) -> Changes:
    if parsed.title is None:
        return Changes()
    notes = [(step.chunk, step.note_id) for step in steps if step.chunk is not None]
    return wikilink_changes(target.store, target.owner, target.actor, parsed.title, notes)


def _merge(changes: Changes, more: Changes) -> None:
    changes.links += more.links
    changes.events += more.events
    changes.meta.update(more.meta)
    for key, value in more.expect_meta.items():
        changes.expect_meta.setdefault(key, value)


def _writes_anything(changes: Changes) -> bool:
    return bool(changes.episodes or changes.notes or changes.links or changes.meta)


def _lock(name: str) -> threading.Lock:
    """One ingest of a file (per tenant and owner) at a time in this process."""
    with _file_locks_guard:
        lock = _file_locks.get(name)
        if lock is None:
            lock = _file_locks[name] = threading.Lock()
        return lock
