"""remem's PostgreSQL store on a Citus cluster: load rate, search latency for one user's
scope, recall@10 of the vector path against exact search; optionally the same run on a
single PostgreSQL server beside it.

    eval "$(scripts/test-citus.sh start /tmp/remem-citus)"
    python benchmarks/bench_citus.py --url "$REMEM_TEST_CITUS" --notes 20000
    python benchmarks/bench_citus.py --url "$REMEM_TEST_CITUS" --notes 1000000 \\
        --single "$REMEM_TEST_POSTGRES"          # single-node figures from the same corpus

The corpus, the load (the store's bulk path, with precomputed vectors) and
the searches are those of `bench_scale.py`: notes spread over `--users` users, every query
searching one user's scope, its embedding inside the timing. Each run works in a fresh
schema of the database the URL names (dropped afterwards unless `--keep`), so remem's own
migrations make and distribute its tables there. `--shards` sets Citus's shard count for
those tables (default: the cluster's `citus.shard_count`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from remem.embedders.minilm import MiniLMEmbedder
from remem.stores import open_store

sys.path.insert(0, str(Path(__file__).parent))
from bench_scale import _corpus, _load, _searches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the Citus coordinator's database URL")
    parser.add_argument("--notes", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=100, help="untimed searches first")
    parser.add_argument("--shards", type=int, help="shards per table (citus.shard_count)")
    parser.add_argument("--single", metavar="URL", help="also run on this plain PostgreSQL")
    parser.add_argument("--keep", action="store_true", help="keep the schemas loaded")
    args = parser.parse_args()
    _check_cluster(args.url)
    embedder = MiniLMEmbedder()
    synthetic = argparse.Namespace(
        corpus="synthetic", size=args.notes, users=args.users, queries=args.queries
    )
    corpus = _corpus(synthetic, embedder)  # bench_scale's: texts, vectors, users, questions
    report: dict[str, Any] = {"notes": args.notes, "users": args.users}
    runs = [("citus", args.url, args.shards)] + (
        [("postgres", args.single, None)] * bool(args.single)
    )
    for name, url, shards in runs:
        with _fresh_schema(url, shards, args.keep) as location:
            report[name] = _run(location, embedder, corpus, args)
            if name == "citus":
                report[name]["cluster"] = _cluster_facts(location)
    print(json.dumps(report, indent=2))


def _run(location: str, embedder: Any, corpus: Any, args: Any) -> dict[str, Any]:
    texts, vectors, users, asked = corpus
    store = open_store(location)
    seconds, note_ids = _load(store, vectors, users, texts)
    figures: dict[str, Any] = {
        "load_s": round(seconds, 1),
        "load_notes_per_s": round(len(note_ids) / seconds, 1),
    }
    figures.update(_searches(store, embedder, (vectors, users, note_ids), asked, args))
    store.close()
    return figures


def _check_cluster(url: str) -> None:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'citus'").fetchone()
    if not found or not found[0]:
        sys.exit(f"{url}: no citus extension here; give the coordinator's database URL")


@contextmanager
def _fresh_schema(url: str, shards: int | None, keep: bool) -> Iterator[str]:
    """A new schema in the database `url` names, as the URL of a memory living in it."""
    schema = f"bench_citus_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    options = f"-c search_path={schema},public"
    if shards:
        options += f" -c citus.shard_count={shards}"
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options={quote(options)}"
    finally:
        if keep:
            print(f"kept schema {schema}", file=sys.stderr)
        else:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")


def _cluster_facts(location: str) -> dict[str, Any]:
    """Workers, shards of the notes table, and how the notes spread over the workers."""
    with psycopg.connect(location) as conn:
        rows = conn.execute(
            "SELECT nodename || ':' || nodeport, count(*), sum(shard_size) FROM citus_shards"
            " WHERE table_name = 'notes'::regclass GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return {
        "workers": len(rows),
        "notes_shards": int(sum(row[1] for row in rows)),
        "notes_mb_per_worker": [round(int(row[2] or 0) / 2**20, 1) for row in rows],
    }


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"took {time.perf_counter() - start:.0f} s", file=sys.stderr)
