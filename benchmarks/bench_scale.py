"""Each store at 100k and 1M notes: load time, search latency, recall of the ANN path, RSS, disk.

    python benchmarks/bench_scale.py --store sqlite --size 100000
    python benchmarks/bench_scale.py --store postgres --url postgresql://... --size 1000000
    python benchmarks/bench_scale.py --store sqlite --path FILE --reuse --size 1000000
    python benchmarks/bench_scale.py --corpus locomo --data ../shared/bench/locomo10.json

Notes are loaded through the store's own `apply` in batches, with precomputed vectors: a
pool of synthetic sentences is embedded with the bundled MiniLM, and each note's vector
mixes two pool vectors plus a little noise, so vectors lie where real sentence embeddings
do without embedding a million texts. Texts are synthetic sentences plus words drawn from a
Zipf law over the tokenizer's English words, so full-text search sees a realistic spread of
rare and common terms. Notes belong to `--users` users; every query searches one user.
`--corpus locomo` loads LoCoMo's turns copied with other names instead (corpus_locomo.py).
`--reuse` searches a database loaded before (by this script or bench_load.py: the same
seeds make the same corpus). Besides p50/p95 in ms, the search is given as a multiple of
embedding the query once, measured in the same run (these machines vary about threefold by day).

PostgreSQL figures assume a server configured for the index: the default shared_buffers
(128 MB) cannot hold a million-note HNSW index (~2 GB), so measure with e.g.
`-c shared_buffers=4GB`. Searches are timed after `--warmup` untimed searches with other
questions, as in a serving process.

Timed per query, with the query's embedding inside the timing: the vector path alone
(`store.search_vector`, what the ANN index serves) and the whole `Memory.search` (hybrid
retrieval and ranking). Recall@10 compares the vector path with exact search over the
same vectors in NumPy.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from remem import Memory, clock, ids
from remem.embedders import Embedder
from remem.embedders.minilm import TOKENIZER_PATH, MiniLMEmbedder
from remem.stores import open_store
from remem.stores.base import Changes, Store
from remem.types import Episode, Note, Scope
from remem.write.ingest import index_text

sys.path.insert(0, str(Path(__file__).parent))
import corpus_locomo
from bench_core import percentile, question, sentence

BATCH = 5000
POOL = 20_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--url", help="PostgreSQL URL (an empty database) for --store postgres")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--warmup", type=int, default=200, help="untimed searches first, with other questions"
    )
    parser.add_argument(
        "--corpus",
        choices=["synthetic", "locomo"],
        default="synthetic",
        help="synthetic sentences (harsh on full-text search), or LoCoMo's turns copied"
        " with other names (realistic; needs --data)",
    )
    parser.add_argument("--data", type=Path, help="a LoCoMo-format file, for --corpus locomo")
    parser.add_argument(
        "--path", help="the SQLite file for --store sqlite (default: a temporary one)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="search a database (--url or --path) loaded before, by this or bench_load.py"
        " (the same seeds make the same corpus)",
    )
    args = parser.parse_args()
    embedder = MiniLMEmbedder()
    if args.corpus == "locomo" and not args.data:
        parser.error("--corpus locomo needs --data")
    with tempfile.TemporaryDirectory(prefix="remem-bench-scale-") as folder:
        location = args.url if args.store == "postgres" else args.path or f"{folder}/scale.db"
        if args.store == "postgres" and not args.url:
            parser.error("--store postgres needs --url")
        texts, vectors, users, asked = _corpus(args, embedder)
        report: dict[str, Any] = {
            "store": args.store,
            "corpus": args.corpus,
            "notes": args.size,
            "users": args.users,
        }
        store = open_store(location)
        if args.reuse:  # same seeds, same vectors; ids in the order they were loaded
            note_ids = _loaded_ids(store)
        else:
            seconds, note_ids = _load(store, vectors, users, texts)
            report["load_s"] = round(seconds, 1)
        store.close()
        start = time.perf_counter()
        store = open_store(location)
        report["open_s"] = round(time.perf_counter() - start, 2)
        report.update(_searches(store, embedder, (vectors, users, note_ids), asked, args))
        report["rss_mb"] = _rss_mb()
        report["disk_mb"] = _disk_mb(store, location)
        store.close()
    print(json.dumps(report, indent=2))


def _corpus(
    args: Any, embedder: Embedder
) -> tuple[list[str] | None, np.ndarray, np.ndarray, list[tuple[str, int]]]:
    """Texts (None: generated while loading), vectors, owners and questions with the user
    asked."""
    if args.corpus == "locomo":
        corpus = corpus_locomo.build(args.data, args.size, args.users, embedder)
        return corpus.texts, corpus.vectors, corpus.users, corpus.questions[: args.queries]
    rng = np.random.default_rng(7)
    vectors = _mixed(_pool(embedder, min(POOL, args.size)), args.size, rng)
    users = rng.integers(0, args.users, size=args.size)
    asking = random.Random(9)
    asked = [(question(asking), asking.randrange(args.users)) for _ in range(args.queries)]
    return None, vectors, users, asked


def _pool(embedder: Embedder, count: int) -> np.ndarray:
    rng = random.Random(3)
    texts = [sentence(rng) for _ in range(count)]
    return np.concatenate([embedder.embed_batch(texts[i : i + 256]) for i in range(0, count, 256)])


def _mixed(pool: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors near the sentence manifold: two pool vectors mixed, plus noise."""
    out = np.empty((count, pool.shape[1]), dtype=np.float32)
    for start in range(0, count, 100_000):
        n = min(100_000, count - start)
        a, b = rng.integers(0, len(pool), size=(2, n))
        mix = pool[a] + rng.uniform(0.2, 0.8, size=(n, 1)).astype(np.float32) * pool[b]
        mix += 0.05 * rng.standard_normal(mix.shape, dtype=np.float32)
        out[start : start + n] = mix / np.linalg.norm(mix, axis=1, keepdims=True)
    return out


def _words() -> list[str]:
    vocab = json.loads(Path(TOKENIZER_PATH).read_text())["model"]["vocab"]
    return sorted(w for w in vocab if w.isalpha() and w.isascii() and len(w) >= 4)


def _load(
    store: Store, vectors: np.ndarray, users: np.ndarray, texts: list[str] | None
) -> tuple[float, list[str]]:
    """Load the corpus through the store's bulk path (its indexes built once, after)."""
    note_ids: list[str] = []
    start = time.perf_counter()
    store.bulk_load(_batches(vectors, users, texts, note_ids), len(vectors))
    return time.perf_counter() - start, note_ids


def _batches(
    vectors: np.ndarray, users: np.ndarray, texts: list[str] | None, note_ids: list[str]
) -> Iterator[Changes]:
    """The corpus as `BATCH`-note writes, each note's id appended to `note_ids`."""
    rng = random.Random(5)
    words = _words()
    weights = [1 / (rank + 1) for rank in range(len(words))]
    moment = clock.now()
    for first in range(0, len(vectors), BATCH):
        episodes, notes, bodies, batch_vectors = [], [], {}, {}
        for i in range(first, min(first + BATCH, len(vectors))):
            text = (
                texts[i]
                if texts
                else sentence(rng) + " " + " ".join(rng.choices(words, weights, k=4))
            )
            scope = Scope(user_id=f"user_{users[i]}")
            episode = Episode(
                ids.new_id(ids.EPISODE), scope, text, "user", None, {}, moment, moment
            )
            note = Note(
                ids.new_id(ids.NOTE), scope, text, {}, moment, moment, moment, 1,
                (episode.id,), valid_from=moment,
            )  # fmt: skip
            episodes.append(episode)
            notes.append(note)
            bodies[note.id] = index_text(note, {})
            batch_vectors[note.id] = vectors[i]
            note_ids.append(note.id)
        yield Changes(episodes=episodes, notes=notes, bodies=bodies, vectors=batch_vectors)
        print(f"loaded {first + len(notes)}", file=sys.stderr, flush=True)


def _loaded_ids(store: Store) -> list[str]:
    loaded: list[str] = []
    cursor = None
    while True:
        page, cursor = store.list_notes(Scope(), 10_000, cursor)
        loaded += [note.id for note in page]
        if cursor is None:
            return loaded


def _searches(
    store: Store,
    embedder: Embedder,
    loaded: tuple[np.ndarray, np.ndarray, list[str]],
    asked: list[tuple[str, int]],
    args: Any,
) -> dict[str, Any]:
    vectors, users, note_ids = loaded
    embedder.embed("warm up")
    warm = random.Random(11)  # other questions: caches warm as in a serving process
    for _ in range(args.warmup):
        store.search_vector(
            embedder.embed(question(warm)), Scope(user_id=f"user_{warm.randrange(args.users)}"), 10
        )
    vector_ms, recalls = [], []
    for text, user in asked:
        start = time.perf_counter()
        query = embedder.embed(text)
        found = store.search_vector(query, Scope(user_id=f"user_{user}"), 10)
        vector_ms.append(1000 * (time.perf_counter() - start))
        rows = np.flatnonzero(users == user)
        truth = rows[np.argsort(-(vectors[rows] @ query))[:10]]
        recalls.append(len({note_ids[row] for row in truth} & {i for i, _ in found}) / 10)
    memory = Memory(store=store, embedder=embedder)
    search_ms, embed_ms = [], []
    for text, user in asked:
        start = time.perf_counter()
        embedder.embed(text)
        embed_ms.append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        memory.search(text, user_id=f"user_{user}", limit=10)
        search_ms.append(1000 * (time.perf_counter() - start))
    return {
        "vector_search_p50_ms": round(percentile(vector_ms, 50), 1),
        "vector_search_p95_ms": round(percentile(vector_ms, 95), 1),
        "recall_at_10": round(float(np.mean(recalls)), 3),
        "memory_search_p50_ms": round(percentile(search_ms, 50), 1),
        "memory_search_p95_ms": round(percentile(search_ms, 95), 1),
        "embed_p50_ms": round(percentile(embed_ms, 50), 1),
        # the machine-independent figure: how many query embeddings one search costs
        "search_to_embed_p50": round(percentile(search_ms, 50) / percentile(embed_ms, 50), 1),
    }


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _disk_mb(store: Store, location: str) -> float:
    if location.startswith("postgresql"):
        rows = store._rows("SELECT pg_database_size(current_database()) AS n")  # type: ignore[attr-defined]
        return round(rows[0]["n"] / 2**20, 1)
    files = Path(location).parent.glob(Path(location).name + "*")
    return round(sum(f.stat().st_size for f in files) / 2**20, 1)


if __name__ == "__main__":
    main()
