"""Export and import: one JSONL file holding a whole memory, losslessly.

Line 1 is a header naming the format and the embedder; then one record per line, in an
order an import can apply as it reads: episodes, notes (with their vectors), links,
events, jobs. Re-importing an export reproduces the same ids, times, history and vectors.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from remem import clock, ids
from remem.embedders.base import Embedder, Vectors
from remem.errors import InvalidInputError
from remem.inputs import check_raw_record, check_record, references, stored_with
from remem.serialize import from_data, to_data
from remem.stores.base import Changes, Dump, NoteRecord, Records, RecordsWithKeys
from remem.types import Episode, Event, ImportResult, Job, Link, Note
from remem.write.operations import import_batch

FORMAT = "remem-export"
FORMAT_VERSION = 1
BATCH = 500  # records checked together (the first pass of an import)
LOAD_BATCH = 5000  # records written in one transaction
MAX_LINE_BYTES = 64 * 1024 * 1024  # far above a long note with a vector per sentence
RECORD_TYPES: dict[str, type[Any]] = {
    "episode": Episode,
    "note": Note,
    "link": Link,
    "event": Event,
    "job": Job,
}
# (kind, record, the note's vectors): the third is set for notes only
Record = tuple[str, Any, NoteRecord | None]
log = logging.getLogger("remem")


def export_jsonl(store: Records, path: Path, embedder_id: str, tenant: str) -> int:
    """Write one tenant's records to `path` (atomically, through a temporary file beside
    it); return how many. The target must be a new path or a regular file."""
    target = _export_target(path)
    try:
        handle, name = tempfile.mkstemp(".partial", f".{target.name}.", target.parent)
    except OSError as error:
        raise InvalidInputError(f"cannot write in {target.parent}: {error.strerror}") from None
    temporary = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            count = _write_dump(out, store, embedder_id, tenant)
            out.flush()
            os.fsync(out.fileno())
        if target.exists():
            shutil.copymode(target, temporary)  # replacing a file keeps who may read it
        temporary.replace(target)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise InvalidInputError(f"cannot export to {target}: {error.strerror}") from None
        raise
    return count


def _export_target(path: Path) -> Path:
    """`path`, if an export may be written there: a new file in an existing folder, or a
    regular file to replace (never a folder, a device, a fifo or a symbolic link)."""
    text = str(path)
    if text in ("", ".") or "\x00" in text:
        raise InvalidInputError(f"export needs a file path, got {text!r}")
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # named below, by its folder
        mode = None
    except OSError as error:
        raise InvalidInputError(f"cannot export to {path}: {error.strerror}") from None
    if mode is not None and stat.S_ISLNK(mode):
        raise InvalidInputError(
            f"{path} is a symbolic link: export to the file it points to, or to a new path"
        )
    if mode is not None and not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise InvalidInputError(f"cannot export to {path}: it is {what}")
    parent = path.parent
    if not parent.is_dir():
        problem = "is not a folder" if parent.exists() else "does not exist"
        raise InvalidInputError(f"cannot export to {path}: folder {parent} {problem}")
    return path


def _write_dump(out: IO[str], store: Records, embedder_id: str, tenant: str) -> int:
    header = {
        "type": FORMAT,
        "format": FORMAT_VERSION,
        "embedder": embedder_id,
        "exported_at": clock.to_text(clock.now()),
    }
    _write(out, header)
    count = 0
    dump = only_tenant(store.dump(), tenant)
    for episode in dump.episodes:
        count += _write(out, {"type": "episode", **to_data(episode)})
    for stored in dump.notes:
        count += _write(out, {"type": "note", **to_data(stored.note), **_vectors_data(stored)})
    for kind, records in _rest(dump):
        for record in records:
            count += _write(out, {"type": kind, **to_data(record)})
    return count


def only_tenant(dump: Dump, tenant: str) -> Dump:
    """The part of a dump that belongs to one tenant (links and jobs go with their notes)."""
    notes: set[str] = set()

    def tenant_notes() -> Iterator[NoteRecord]:
        for stored in dump.notes:
            if stored.note.scope.tenant == tenant:
                notes.add(stored.note.id)
                yield stored

    # Dump order puts notes before links and jobs, so `notes` is complete when they are read.
    return Dump(
        episodes=(e for e in dump.episodes if e.scope.tenant == tenant),
        notes=tenant_notes(),
        links=(ln for ln in dump.links if ln.source_id in notes),
        events=(e for e in dump.events if e.scope.tenant == tenant),
        jobs=(j for j in dump.jobs if j.target_id in notes),
    )


def import_jsonl(
    store: Records,
    path: Path,
    embedder: Embedder,
    tenant: str,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Check the whole file, then load it in batches through the store's bulk path; skip
    records whose id is already there. A bad record raises InvalidInputError naming its
    line, and nothing is written."""
    header, size, count = _check_file(store, path, embedder, tenant)
    reuse_vectors = header.get("embedder") == embedder.model_id
    if not reuse_vectors:
        log.warning(
            "%s was embedded with %r; re-embedding with %r",
            path,
            header.get("embedder"),
            embedder.model_id,
        )
    reader = _Reader(path, tenant, size=size)
    with _open(path) as source:
        lines = _lines(source, path, progress)
        next(lines)  # the header
        records = (reader.record(number, data) for number, data in lines)
        return _load(store, records, count, embedder, reuse_vectors)


def _check_file(
    store: Records, path: Path, embedder: Embedder, tenant: str
) -> tuple[dict[str, Any], int | None, int]:
    """The first pass of an import: every record checked, none naming what another tenant
    holds, and what a note or link is stored with (its episodes, its notes) earlier in the
    file or in the memory (the order an export is written in, and the load keeps). Returns
    the header, the size of the file's vectors (None: it has none) and the number of
    records. Streams the file, keeping only the ids seen (to refuse one given twice)."""
    with _open(path) as source:
        lines = _lines(source, path)
        header = _header(next(lines, None), path)
        reuse = header.get("embedder") == embedder.model_id
        seen: set[str] = set()
        reader = _Reader(path, tenant, embedder if reuse else None, seen=seen)
        batch: list[tuple[int, Record]] = []
        earlier: dict[str, tuple[int, str]] = {}  # named, not read before: must be stored
        for number, data in lines:
            kind, record, stored = reader.record(number, data)
            batch.append((number, (kind, record, stored)))
            for item_id in stored_with(record):
                if item_id not in seen:
                    earlier.setdefault(item_id, (number, kind))
            if len(batch) >= BATCH:
                _check_batch(store, batch, tenant, path, earlier)
                batch, earlier = [], {}
        _check_batch(store, batch, tenant, path, earlier)
    return header, reader.size, len(seen)


def _check_batch(
    store: Records,
    batch: list[tuple[int, Record]],
    tenant: str,
    path: Path,
    earlier: dict[str, tuple[int, str]],
) -> None:
    """`_check_owners`, and each of `earlier` (id: the line naming it, its kind) in the
    memory."""
    present = _check_owners(store, batch, tenant, path)
    for item_id, (number, kind) in earlier.items():
        if item_id not in present:
            raise InvalidInputError(
                f"{path}:{number}: {kind} names {item_id}, which is neither earlier in the"
                " file nor in this memory"
            )


def _check_owners(
    store: Records, batch: list[tuple[int, Record]], tenant: str, path: Path
) -> set[str]:
    """Raise when a record of the batch, or an episode or note it names, is already in the
    store under another tenant (writing it would reach into that tenant's memory); else
    the ids of those the store holds."""
    named: dict[str, tuple[int, str]] = {}
    for number, (kind, record, _) in batch:
        if kind in ("episode", "note"):
            named.setdefault(record.id, (number, kind))
        for _, item_id, _ in references(record):
            named.setdefault(item_id, (number, kind))
    present = store.existing_ids(list(named)) if named else set()
    if not present:
        return present
    found: dict[str, Episode | Note] = {
        **store.get_episodes([i for i in present if ids.kind_of(i) == ids.EPISODE]),
        **store.get_notes([i for i in present if ids.kind_of(i) == ids.NOTE]),
    }
    for item_id, held in found.items():
        if held.scope.tenant != tenant:
            number, kind = named[item_id]
            raise InvalidInputError(
                f"{path}:{number}: {kind} names {item_id}, which another tenant of this store holds"
            )
    return present


@dataclass
class _Reader:
    """Turns the lines of an export into checked records. Vectors must all have one size:
    the memory's embedder's when the file's vectors are kept, else the first one's."""

    path: Path
    tenant: str
    embedder: Embedder | None = None  # whose vector size to expect (computed once)
    size: int | None = None
    seen: set[str] | None = None  # ids read so far, when duplicates are to be refused

    def record(self, number: int, data: Any) -> Record:
        try:
            return self._record(data)
        except InvalidInputError as error:
            raise InvalidInputError(f"{self.path}:{number}: {error}") from None

    def _record(self, data: Any) -> Record:
        if not isinstance(data, dict):
            raise InvalidInputError(f"a record must be a JSON object, got {type(data).__name__}")
        kind = data.get("type")
        if kind == FORMAT:
            raise InvalidInputError("a second header: a file holds one export")
        if kind is None:
            raise InvalidInputError("a record without a 'type'")
        if not isinstance(kind, str) or kind not in RECORD_TYPES:
            raise InvalidInputError(
                f"unknown record type {kind!r} (expected {', '.join(RECORD_TYPES)})"
            )
        try:
            fields = {k: v for k, v in data.items() if k not in ("type", "vector", "sentences")}
            record = from_data(RECORD_TYPES[kind], fields)
            if isinstance(record, Note) and "thread" not in data:
                record = _with_session_thread(record)
            check_record(record, self.tenant)
            check_raw_record(data)  # after check_record, whose metadata limits say more
            stored = self._vectors(record, data) if kind == "note" else None
        except InvalidInputError as error:
            raise InvalidInputError(f"{kind} {error}") from None
        if self.seen is not None:
            if record.id in self.seen:
                raise InvalidInputError(f"{kind} {record.id} is in the file twice")
            self.seen.add(record.id)
        return kind, record, stored

    def _vectors(self, note: Note, data: dict[str, Any]) -> NoteRecord:
        vector = self._decode(data.get("vector"), "vector")
        sentences = self._decode(data.get("sentences"), "sentences")
        if vector is None and sentences is not None:
            raise InvalidInputError("field 'sentences' is set, but not field 'vector'")
        return NoteRecord(note, vector, sentences)

    def _decode(self, text: Any, name: str) -> Vectors | None:
        """A base64 float32 vector (`sentences`: rows of them) of the expected size."""
        if text is None:
            return None
        if not isinstance(text, str):
            raise InvalidInputError(f"field {name!r} must be base64 text")
        try:
            raw = base64.b64decode(text, validate=True)
        except ValueError:
            raise InvalidInputError(f"field {name!r} is not base64") from None
        if len(raw) % 4 or not raw:
            raise InvalidInputError(f"field {name!r} is not a list of float32 values")
        values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        if not np.isfinite(values).all():
            raise InvalidInputError(f"field {name!r} holds NaN or infinite values")
        if self.size is None:
            self.size = (
                len(self.embedder.embed_batch([FORMAT])[0]) if self.embedder else len(values)
            )
        if len(values) != self.size and (name == "vector" or len(values) % self.size):
            whose = "this memory's embedder" if self.embedder else "the file's first vector"
            wanted = f"{self.size}" if name == "vector" else f"a multiple of {self.size}"
            raise InvalidInputError(
                f"field {name!r} holds {len(values)} values, not {wanted} (the size of {whose})"
            )
        return values if name == "vector" else values.reshape(-1, self.size)


def copy_store(
    source: RecordsWithKeys,
    target: RecordsWithKeys,
    progress: Callable[[int], None] | None = None,
    size: int = 0,
    batch: int | None = None,
) -> ImportResult:
    """Copy every record of `source` (history, vectors and API keys included, ids kept) into
    `target`, through its bulk path; records already there are skipped, so an interrupted
    copy can be run again. `size`: how many records the source holds, if known (a large
    copy builds the target's search indexes after it); `batch`: records per transaction."""
    embedder_id = source.get_meta("embedder")
    recorded = target.get_meta("embedder")
    if embedder_id and recorded and recorded != embedder_id:
        raise InvalidInputError(
            f"the target was embedded with {recorded!r}, the source with {embedder_id!r}"
        )
    for key in source.list_keys():
        target.save_key(key)
    dump = source.dump()
    records: Iterator[Record] = itertools.chain(
        (("episode", e, None) for e in dump.episodes),
        (("note", stored.note, stored) for stored in dump.notes),
        *(_tagged(kind, rows) for kind, rows in _rest(dump)),
    )
    return _load(target, records, size, None, True, embedder_id, progress, batch or LOAD_BATCH)


def _load(
    store: Records,
    records: Iterator[Record],
    size: int,
    embedder: Embedder | None,
    reuse_vectors: bool,
    embedder_id: str | None = None,
    progress: Callable[[int], None] | None = None,
    size_of_batch: int = LOAD_BATCH,
) -> ImportResult:
    """Hand the records' new ones to the store's bulk load, `size_of_batch` at a time;
    count (and report) a batch once the store has committed it."""
    tally = [0, 0]  # added, skipped

    def batches() -> Iterator[Changes]:
        while batch := list(itertools.islice(records, size_of_batch)):
            changes, skipped = _batch_changes(store, batch, embedder, reuse_vectors, embedder_id)
            yield changes
            tally[0] += len(batch) - skipped
            tally[1] += skipped
            if progress:
                progress(len(batch))

    store.bulk_load(batches(), size)
    return ImportResult(added=tally[0], skipped=tally[1])


def _tagged(kind: str, rows: Iterator[Any]) -> Iterator[Record]:
    return ((kind, row, None) for row in rows)


def _rest(dump: Dump) -> list[tuple[str, Iterator[Any]]]:
    return [("link", dump.links), ("event", dump.events), ("job", dump.jobs)]


def _batch_changes(
    store: Records,
    batch: list[Record],
    embedder: Embedder | None,
    reuse_vectors: bool,
    embedder_id: str | None = None,
) -> tuple[Changes, int]:
    """The batch's new records, indexed, as one write; and how many of the batch were
    skipped (already present)."""
    present = store.existing_ids([record.id for _, record, _ in batch])
    recorded = embedder.model_id if embedder is not None else embedder_id
    records = Changes(meta={"embedder": recorded} if recorded else {})
    given: dict[str, NoteRecord] = {}
    for kind, record, stored in batch:
        if record.id in present:
            continue
        getattr(records, kind + "s").append(record)
        if stored is not None and reuse_vectors:
            given[record.id] = stored
    return import_batch(records, given, store, embedder), len(present)


def _with_session_thread(note: Note) -> Note:
    """A note of an export made before threads: a turn of a session is in that thread."""
    if note.kind != "turn" or note.scope.session_id is None:
        return note
    return replace(note, thread=note.scope.session_id)


def _open(path: Path) -> IO[bytes]:
    """The file at `path`, if it is one (a fifo or a device would block or never end)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InvalidInputError(f"cannot import {path}: no such file") from None
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        reason = error.strerror if isinstance(error, OSError) else error
        raise InvalidInputError(f"cannot import {str(path)!r}: {reason}") from None
    if not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise InvalidInputError(f"cannot import {path}: it is {what}")
    try:
        return path.open("rb")
    except OSError as error:
        raise InvalidInputError(f"cannot import {path}: {error.strerror}") from None


def _header(line: tuple[int, Any] | None, path: Path) -> dict[str, Any]:
    if line is None or not isinstance(line[1], dict) or line[1].get("type") != FORMAT:
        raise InvalidInputError(f"{path} is not a remem export (its first line is no header)")
    header: dict[str, Any] = line[1]
    version = header.get("format")
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise InvalidInputError(
            f"{path} has export format {version!r}; this remem reads {FORMAT_VERSION}"
        )
    if not isinstance(header.get("embedder"), str | None):
        raise InvalidInputError(f"{path}:{line[0]}: header field 'embedder' must be a string")
    return header


def _lines(
    source: IO[bytes], path: Path, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, Any]]:
    """Each non-blank line's number and JSON value; NaN and Infinity are not JSON."""
    number = 0
    while raw := source.readline(MAX_LINE_BYTES + 1):
        number += 1
        if progress:
            progress(len(raw))
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise InvalidInputError(f"{path}:{number}: longer than {MAX_LINE_BYTES} bytes")
        if raw.strip():
            yield number, _parse(raw, f"{path}:{number}")


def _parse(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw, parse_constant=_not_a_number)
    except RecursionError:
        raise InvalidInputError(f"{where}: JSON nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise InvalidInputError(f"{where}: not valid JSON ({error})") from None


def _not_a_number(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


# Characters that str.splitlines() and some editors treat as line ends: escaped, so every
# reader sees one record per line. They can only occur inside JSON strings, where \uXXXX is valid.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _write(out: IO[str], data: dict[str, Any]) -> int:
    out.write(json.dumps(data, ensure_ascii=False, sort_keys=True).translate(_LINE_BREAKS) + "\n")
    return 1


def _vectors_data(stored: NoteRecord) -> dict[str, str | None]:
    """A note's vector, and its sentence vectors when it has them, as base64 float32."""
    data = {"vector": None if stored.vector is None else _vector_text(stored.vector)}
    if stored.sentences is not None:
        data["sentences"] = _vector_text(stored.sentences)
    return data


def _vector_text(vector: Vectors) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
