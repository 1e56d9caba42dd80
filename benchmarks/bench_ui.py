"""The web UI's pages at 10k and 100k notes: time to the first byte and to the whole page.

    python benchmarks/bench_ui.py                 # 10k and 100k notes
    python benchmarks/bench_ui.py --sizes 10000   # just one size

Notes are added through `Memory.add` in batches of chat messages (one note each), with the
deterministic HashEmbedder, spread over a year of days, 20 sessions and 3 users, into a
SQLite file. Each page is fetched over real HTTP on 127.0.0.1 from a server in this process
(uvicorn, as `remem serve` runs it): once cold (the first request after the server started,
templates not yet compiled), then `--repeat` times warm (fewer for a slow page: about ten
seconds each); the figures are milliseconds. Then the library calls behind the slow pages
are timed alone, so what the UI adds can be told from what the store and ranking cost.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from remem import Memory
from remem.server.app import create_app
from remem.testing import HashEmbedder
from remem.testing.http import running

TOPICS = "cat dog cello Porto Lisbon bakery marathon tea garden sister brother trip train"
WORDS = [*TOPICS.split(), "book", "film", "dinner", "recipe", "doctor", "school", "meeting"]
BATCH = 2000


def load(memory: Memory, size: int) -> str:
    """Add `size` notes; return the id of one in the middle."""
    chooser = random.Random(7)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    middle = ""
    for first in range(0, size, BATCH):
        count = min(BATCH, size - first)
        messages = [
            {"role": "user", "content": " ".join(chooser.choices(WORDS, k=12)) + f" #{first + i}"}
            for i in range(count)
        ]
        added = memory.add(
            messages,
            user_id=f"user{(first // BATCH) % 3}",
            session_id=f"s{(first // BATCH) % 20}",
            occurred_at=start + timedelta(hours=first // BATCH * 9),
        )
        if first <= size // 2 < first + count:
            middle = added.note_ids[size // 2 - first]
    return middle


def fetch(client: httpx.Client, path: str) -> tuple[float, float, int]:
    """(ms to the first byte, ms to the whole page, bytes) of one GET."""
    began = time.perf_counter()
    with client.stream("GET", path) as answer:
        chunks = answer.iter_bytes()
        first = next(chunks, b"")
        first_byte = time.perf_counter()
        size = len(first) + sum(len(chunk) for chunk in chunks)
        assert answer.status_code == 200, (path, answer.status_code)
    done = time.perf_counter()
    return (first_byte - began) * 1000, (done - began) * 1000, size


def measure(size: int, repeat: int, folder: Path) -> None:
    with Memory(folder / f"ui-{size}.db", embedder=HashEmbedder(), llm=None) as memory:
        began = time.perf_counter()
        middle = load(memory, size)
        print(f"\n{size:,} notes loaded in {time.perf_counter() - began:.1f}s")
        pages = {
            "memory list (/)": "/",
            "memory page": f"/memories/{middle}",
            "list, 2nd page (cursor)": None,
            "search": "/?q=cello+Porto&user=user1",
            "timeline (200 notes)": "/timeline?by=week",
            "what the agent sees": "/context?q=cello+Porto&user=user1",
            "graph": f"/graph?id={middle}",
            "health": "/health",
        }
        with running(create_app(memory)) as url, httpx.Client(base_url=url, timeout=60) as client:
            cursor = memory.list(limit=50, order="newest").cursor
            pages["list, 2nd page (cursor)"] = f"/?cursor={cursor}"
            columns = ("cold ttfb", "cold all", "warm p50", "warm p95")
            print(f"{'page':26} " + " ".join(f"{c:>9}" for c in columns) + f" {'KB':>6}")
            for name, path in pages.items():
                assert path is not None
                cold_first, cold_all, size_bytes = fetch(client, path)
                times = max(3, min(repeat, int(10_000 / max(cold_all, 1))))  # ~10 s a page
                warm = sorted(fetch(client, path)[1] for _ in range(times))
                p95 = warm[min(len(warm) - 1, int(len(warm) * 0.95))]
                print(
                    f"{name:26} {cold_first:9.1f} {cold_all:9.1f}"
                    f" {statistics.median(warm):9.1f} {p95:9.1f} {size_bytes / 1024:6.1f}"
                )
        library_calls(memory, middle)


def library_calls(memory: Memory, middle: str) -> None:
    """The calls the slow pages make, timed alone: what the UI adds is the difference."""
    calls = {
        "Memory.list(newest, 50)": lambda: memory.list(limit=50, order="newest"),
        "Memory.get + history + links": lambda: (
            memory.get(middle),
            memory.history(middle),
            memory.links(middle),
        ),
        "Memory.search": lambda: memory.search("cello Porto", user_id="user1", limit=50),
        "Memory.context": lambda: memory.context("cello Porto", user_id="user1"),
        "store.counts()": memory.store.counts,
    }
    print(f"{'library call':32} {'p50 ms':>9}")
    for name, call in calls.items():
        timings = []
        for _ in range(5):
            began = time.perf_counter()
            call()
            timings.append((time.perf_counter() - began) * 1000)
        print(f"{name:32} {statistics.median(timings):9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=20)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="remem-bench-ui-") as folder:
        for size in arguments.sizes:
            measure(size, arguments.repeat, Path(folder))


if __name__ == "__main__":
    main()
