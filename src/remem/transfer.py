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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from remem import clock
from remem.embedders.base import Embedder, Vectors
from remem.errors import InvalidInputError
from remem.serialize import from_data, to_data
from remem.stores.base import Changes, Dump, NoteRecord, Records, RecordsWithKeys
from remem.types import Episode, Event, ImportResult, Job, Link, Note
from remem.write.operations import import_batch

FORMAT = "remem-export"
FORMAT_VERSION = 1
BATCH = 500
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
    """Write one tenant's records to `path` (atomically, through a temporary file); return
    how many."""
    temporary = path.with_name(path.name + ".partial")
    count = 0
    with temporary.open("w", encoding="utf-8") as out:
        _write(
            out,
            {
                "type": FORMAT,
                "format": FORMAT_VERSION,
                "embedder": embedder_id,
                "exported_at": clock.to_text(clock.now()),
            },
        )
        dump = only_tenant(store.dump(), tenant)
        for episode in dump.episodes:
            count += _write(out, {"type": "episode", **to_data(episode)})
        for stored in dump.notes:
            count += _write(out, {"type": "note", **to_data(stored.note), **_vectors_data(stored)})
        for kind, records in _rest(dump):
            for record in records:
                count += _write(out, {"type": kind, **to_data(record)})
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)
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
    """Apply an export to the store in batches; skip records whose id is already there."""
    added = skipped = 0
    with path.open("rb") as source:
        lines = _lines(source, progress)
        header = _header(next(lines, None), path)
        reuse_vectors = header.get("embedder") == embedder.model_id
        if not reuse_vectors:
            log.warning(
                "%s was embedded with %r; re-embedding with %r",
                path,
                header.get("embedder"),
                embedder.model_id,
            )
        batch: list[Record] = []
        for number, data in lines:
            batch.append(_decode(data, number, path))
            if len(batch) >= BATCH:
                a, s = _apply_batch(store, batch, embedder, reuse_vectors)
                added, skipped, batch = added + a, skipped + s, []
        a, s = _apply_batch(store, batch, embedder, reuse_vectors)
    return ImportResult(added=added + a, skipped=skipped + s)


def copy_store(
    source: RecordsWithKeys, target: RecordsWithKeys, progress: Callable[[int], None] | None = None
) -> ImportResult:
    """Copy every record of `source` (history, vectors and API keys included, ids kept) into
    `target`; records already there are skipped, so an interrupted copy can be run again."""
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
    added = skipped = 0
    while batch := list(itertools.islice(records, BATCH)):
        a, s = _apply_batch(target, batch, None, True, embedder_id)
        added, skipped = added + a, skipped + s
        if progress:
            progress(len(batch))
    return ImportResult(added=added, skipped=skipped)


def _tagged(kind: str, rows: Iterator[Any]) -> Iterator[Record]:
    return ((kind, row, None) for row in rows)


def _rest(dump: Dump) -> list[tuple[str, Iterator[Any]]]:
    return [("link", dump.links), ("event", dump.events), ("job", dump.jobs)]


def _apply_batch(
    store: Records,
    batch: list[Record],
    embedder: Embedder | None,
    reuse_vectors: bool,
    embedder_id: str | None = None,
) -> tuple[int, int]:
    """Apply the batch's new records in one transaction; return how many were added and
    how many skipped (already present)."""
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
    store.apply(import_batch(records, given, store, embedder))
    return len(batch) - len(present), len(present)


def _decode(data: Any, number: int, path: Path) -> Record:
    try:
        kind = data.pop("type")
        vector = data.pop("vector", None)
        sentences = data.pop("sentences", None)
        record = from_data(RECORD_TYPES[kind], data)
        if kind != "note":
            return kind, record, None
        if vector is None:
            return kind, record, NoteRecord(record)
        vector = _vector(vector)
        rows = None if sentences is None else _vector(sentences).reshape(-1, len(vector))
        return kind, record, NoteRecord(record, vector, rows)
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidInputError(f"{path}:{number}: not a valid remem record ({error!r})") from None


def _header(line: tuple[int, Any] | None, path: Path) -> dict[str, Any]:
    if line is None or not isinstance(line[1], dict) or line[1].get("type") != FORMAT:
        raise InvalidInputError(f"{path} is not a remem export (its first line is no header)")
    header: dict[str, Any] = line[1]
    if header.get("format") != FORMAT_VERSION:
        raise InvalidInputError(
            f"{path} has export format {header.get('format')!r}; this remem reads {FORMAT_VERSION}"
        )
    return header


def _lines(source: IO[bytes], progress: Callable[[int], None] | None) -> Iterator[tuple[int, Any]]:
    for number, raw in enumerate(source, start=1):
        if progress:
            progress(len(raw))
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidInputError(f"line {number} is not valid JSON: {error}") from None


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


def _vector(text: str) -> Vectors:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)
