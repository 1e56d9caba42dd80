"""Bulk loads: `remem migrate` of a large SQLite memory into a fresh PostgreSQL and a fresh
SQLite file; minutes, notes/s, index build time, and searches afterwards.

    python benchmarks/bench_load.py --size 1000000 --url "$REMEM_TEST_POSTGRES"
    python benchmarks/bench_load.py --size 20000 --target sqlite   # a quick look

The source is bench_scale's synthetic corpus (MiniLM-like vectors mixed from an embedded
pool of sentences, Zipf-drawn words), one episode per note, notes as turns of sessions of
20 (so passages and threads are built too), 10 users. It is built once per size and cached
under `--cache` (it is itself loaded through the SQLite store's bulk path, without the
HNSW graph a copy does not read). Each target is
fresh: a new database on the server `--url` names (dropped afterwards unless `--keep`), a
new SQLite file beside the cache. The copy runs `remem migrate` in this process (the CLI's
code path, progress on stderr); search is checked afterwards by a few `Memory.search`
questions per target (each must find something).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from remem import Memory, clock, ids
from remem.embedders.minilm import MiniLMEmbedder
from remem.stores import open_store
from remem.stores.base import Changes
from remem.stores.sqlite import SQLiteStore
from remem.transfer import copy_store
from remem.types import Episode, Note, Scope
from remem.write.ingest import index_text

sys.path.insert(0, str(Path(__file__).parent))
from bench_core import question, sentence
from bench_scale import POOL, _mixed, _pool, _words

BATCH = 5000
SESSION = 20  # notes per session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="notes in the source")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--url", help="a PostgreSQL server URL (a new database is made on it)")
    parser.add_argument("--target", choices=["both", "postgres", "sqlite"], default="both")
    parser.add_argument("--cache", default="/tmp/remem-bench-load")
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    source = cache / f"source-{args.size}.db"
    report: dict[str, Any] = {"notes": args.size}
    if not source.exists():
        report["source_build_s"] = round(_build_source(source, args.size, args.users), 1)
    answers: dict[str, Any] = {}
    if args.target in ("both", "sqlite"):
        target = cache / f"target-{uuid.uuid4().hex[:8]}.db"
        try:
            report["sqlite"], answers["sqlite"] = _migrate(source, str(target), args)
        finally:
            for path in cache.glob(target.name + "*"):
                path.unlink()
    if args.target in ("both", "postgres"):
        if not args.url:
            parser.error("--target postgres needs --url")
        with _database(args.url, args.keep) as url:
            report["postgres"], answers["postgres"] = _migrate(source, url, args)
    print(json.dumps(report, indent=2))


def _build_source(path: Path, size: int, users: int) -> float:
    """bench_scale's corpus as a SQLite memory, loaded through the bulk path."""
    embedder = MiniLMEmbedder()
    rng = np.random.default_rng(7)
    vectors = _mixed(_pool(embedder, min(POOL, size)), size, rng)
    owners = rng.integers(0, users, size=size)
    start = time.perf_counter()
    store = _source(path.with_suffix(".partial"))
    try:
        store.apply(Changes(meta={"embedder": embedder.model_id}))
        store.bulk_load(_batches(vectors, owners), size)
    finally:
        store.close()
    path.with_suffix(".partial").replace(path)
    return time.perf_counter() - start


def _batches(vectors: np.ndarray, owners: np.ndarray) -> Iterator[Changes]:
    rng = random.Random(5)
    words = _words()
    # cumulative once: `choices` would add up the weights again for every note
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))
    start = clock.now()
    for first in range(0, len(vectors), BATCH):
        changes = Changes()
        for i in range(first, min(first + BATCH, len(vectors))):
            text = sentence(rng) + " " + " ".join(rng.choices(words, cum_weights=cumulative, k=4))
            session = f"s{owners[i]}_{i // (SESSION * 10)}"
            scope = Scope(user_id=f"user_{owners[i]}", session_id=session)
            moment = start.replace(microsecond=0) - timedelta(seconds=len(vectors) - i)
            episode = Episode(
                ids.new_id(ids.EPISODE), scope, text, "user", None, {}, moment, moment
            )
            note = Note(
                ids.new_id(ids.NOTE), scope, text, {}, moment, moment, moment, 1,
                (episode.id,), valid_from=moment, thread=session,
            )  # fmt: skip
            changes.episodes.append(episode)
            changes.notes.append(note)
            changes.bodies[note.id] = index_text(note, {})
            changes.vectors[note.id] = vectors[i]
        yield changes
        print(f"source: {first + len(changes.notes)} notes", file=sys.stderr, flush=True)


def _migrate(source: Path, target: str, args: Any) -> tuple[dict[str, Any], list[Any]]:
    """Copy `source` to `target` as `remem migrate` does; time it, then search it."""
    origin = _source(source)
    destination = open_store(target)
    total = origin.counts()["records"]
    done = 0
    start = time.perf_counter()

    def progress(count: int) -> None:
        nonlocal done
        done += count
        elapsed = time.perf_counter() - start
        print(
            f"{elapsed:7.1f} s: {done}/{total} records, {done / max(elapsed, 1e-9):,.0f}/s",
            file=sys.stderr,
            flush=True,
        )

    try:
        result = copy_store(origin, destination, progress, size=total)
    finally:
        origin.close()
        destination.close()
    seconds = time.perf_counter() - start
    figures: dict[str, Any] = {
        "records": result.added,
        "minutes": round(seconds / 60, 2),
        "notes_per_s": round(args.size / seconds),
        "records_per_s": round(result.added / seconds),
    }
    figures.update(_timings(destination))
    start = time.perf_counter()
    answers = _search(target, args)
    figures["open_and_search_s"] = round(time.perf_counter() - start, 1)
    return figures, answers


def _source(path: Path) -> SQLiteStore:
    """The source, opened without its HNSW graph: a copy only reads it, and building the
    graph of a million notes takes ~25 minutes on 2 busy cores (a memory in use has its
    graph saved beside it, and `migrate` loads that in seconds)."""
    return SQLiteStore(path, ann_threshold=sys.maxsize)


def _timings(store: Any) -> dict[str, Any]:
    """What the store's bulk load measured of itself (its index builds), if it did."""
    measured = getattr(store, "load_timings", None) or {}
    return {name: round(seconds, 1) for name, seconds in measured.items()}


def _search(location: str, args: Any) -> list[Any]:
    rng = random.Random(9)
    answers = []
    with Memory(location, embedder=MiniLMEmbedder()) as memory:
        for _ in range(args.queries):
            user = f"user_{rng.randrange(args.users)}"
            hits = memory.search(question(rng), user_id=user, limit=5)
            assert hits, "a search after the load found nothing"
            answers.append([hit.id for hit in hits])
    return answers


class _database:
    """A new database on the server `url` names, dropped on exit unless kept."""

    def __init__(self, url: str, keep: bool) -> None:
        self.admin, self.keep = url, keep
        self.name = f"remem_load_{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> str:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.name}")
        with psycopg.connect(self._url(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self._url()

    def __exit__(self, *exc: object) -> None:
        import psycopg

        if self.keep:
            print(f"kept {self._url()}", file=sys.stderr)
            return
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {self.name} WITH (FORCE)")

    def _url(self) -> str:
        parts = urlsplit(self.admin)
        return urlunsplit(parts._replace(path="/" + self.name))


if __name__ == "__main__":
    main()
