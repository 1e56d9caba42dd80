"""Core speed on this machine: add throughput, search latency at scale, `remem search` cold start.

    python benchmarks/bench_core.py                      # 10k and 100k notes
    python benchmarks/bench_core.py --sizes 2000 --queries 50   # a quick look

Everything runs through the public API with the bundled MiniLM embedder, on SQLite files
in a temporary folder. Query embedding is inside every search timing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from remem import Memory

PEOPLE = ["Ana", "Bo", "Chen", "Dara", "Emil", "Fatima", "Gus", "Hana", "Ivo", "Jun"]
ACTIONS = [
    "visited",
    "booked",
    "cooked",
    "painted",
    "fixed",
    "lost",
    "found",
    "bought",
    "sold",
    "recommended",
    "read about",
    "planned",
    "cancelled",
    "photographed",
]
THINGS = [
    "a red bicycle",
    "the old piano",
    "a trip to Kyoto",
    "grandma's lasagne recipe",
    "a vintage camera",
    "the garden shed",
    "a marathon training plan",
    "the tax forms",
    "a birthday cake",
    "the car insurance",
    "a yoga class",
    "a jazz concert ticket",
    "the kitchen tap",
    "a chess set",
    "a puppy named Biscuit",
    "the wedding venue",
]
PLACES = [
    "in Lisbon",
    "near the lake",
    "at the office",
    "downtown",
    "in the mountains",
    "at the farmers market",
    "on the beach",
    "at home",
    "in Berlin",
    "by the river",
]
WHEN = [
    "last Saturday",
    "yesterday",
    "in May",
    "two weeks ago",
    "this morning",
    "over the holidays",
    "on Tuesday",
    "last summer",
    "recently",
    "after work",
]
FEELINGS = [
    "and loved it",
    "but it rained",
    "with a friend",
    "for the first time",
    "and felt proud",
    "which was stressful",
    "on a whim",
    "as a surprise",
    "",
    "",
]


def sentence(rng: random.Random) -> str:
    parts = [
        rng.choice(PEOPLE),
        rng.choice(ACTIONS),
        rng.choice(THINGS),
        rng.choice(PLACES),
        rng.choice(WHEN),
        rng.choice(FEELINGS),
    ]
    return " ".join(p for p in parts if p) + "."


def question(rng: random.Random) -> str:
    return f"What did {rng.choice(PEOPLE)} do with {rng.choice(THINGS)} {rng.choice(WHEN)}?"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def add_throughput(folder: Path, rng: random.Random, single: int, batched: int) -> dict[str, Any]:
    with Memory(folder / "throughput.db") as memory:
        memory.add("warm up the model", user_id="u")
        start = time.perf_counter()
        for _ in range(single):
            memory.add(sentence(rng), user_id="u")
        one_by_one = single / (time.perf_counter() - start)
        batch = [{"role": "user", "content": sentence(rng)} for _ in range(batched)]
        start = time.perf_counter()
        for offset in range(0, batched, 100):
            memory.add(batch[offset : offset + 100], user_id="u")
        in_batches = batched / (time.perf_counter() - start)
    return {
        "one_by_one_turns_per_s": round(one_by_one, 1),
        "batched_100_turns_per_s": round(in_batches, 1),
    }


def fill(memory: Memory, rng: random.Random, count: int) -> float:
    start = time.perf_counter()
    done = 0
    while done < count:
        size = min(1000, count - done)
        memory.add(
            [{"role": "user", "content": sentence(rng)} for _ in range(size)],
            user_id="u",
            session_id=f"s{done // 1000}",
        )
        done += size
        print(f"  loaded {done}/{count}", end="\r", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return time.perf_counter() - start


def search_latency(db: Path, rng: random.Random, count: int, queries: int) -> dict[str, Any]:
    with Memory(db) as memory:
        load_seconds = fill(memory, rng, count)
    start = time.perf_counter()
    with Memory(db) as memory:
        reopen_seconds = time.perf_counter() - start
        memory.search("warm up", user_id="u")
        timings = []
        for _ in range(queries):
            text = question(rng)
            start = time.perf_counter()
            memory.search(text, user_id="u", limit=10)
            timings.append((time.perf_counter() - start) * 1000)
    return {
        "notes": count,
        "load_s": round(load_seconds, 1),
        "load_turns_per_s": round(count / load_seconds, 1),
        "reopen_s": round(reopen_seconds, 2),
        "search_p50_ms": round(statistics.median(timings), 2),
        "search_p95_ms": round(percentile(timings, 95), 2),
        "db_mb": round(sum(f.stat().st_size for f in db.parent.glob(db.name + "*")) / 2**20, 1),
    }


def cold_start(db: Path, runs: int) -> dict[str, Any]:
    remem = Path(sys.executable).with_name("remem")
    command = [
        str(remem) if remem.exists() else "remem",
        "--db",
        str(db),
        "search",
        "who went to Kyoto",
        "--user",
        "u",
        "--limit",
        "5",
    ]
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env={**os.environ})
        timings.append(time.perf_counter() - start)
    return {"remem_search_cold_s_median": round(statistics.median(timings), 3), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="Note counts to search at.")
    parser.add_argument("--queries", type=int, default=200, help="Searches per size.")
    parser.add_argument("--single", type=int, default=300, help="Adds timed one by one.")
    parser.add_argument("--batched", type=int, default=3000, help="Turns added in batches.")
    parser.add_argument("--json", action="store_true", help="Print JSON only.")
    args = parser.parse_args()
    rng = random.Random(7)
    results: dict[str, Any] = {"python": sys.version.split()[0], "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="remem-bench-") as name:
        folder = Path(name)
        results["add"] = add_throughput(folder, rng, args.single, args.batched)
        results["search"] = []
        for size in (int(s) for s in args.sizes.split(",")):
            db = folder / f"search-{size}.db"
            results["search"].append(search_latency(db, rng, size, args.queries))
        results["cold_start"] = cold_start(folder / f"search-{size}.db", runs=5)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"add: {results['add']['one_by_one_turns_per_s']} turns/s one by one, "
        f"{results['add']['batched_100_turns_per_s']} turns/s in batches of 100"
    )
    print(
        f"{'notes':>8} {'load s':>8} {'turns/s':>8} {'reopen s':>9} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'db MB':>7}"
    )
    for row in results["search"]:
        print(
            f"{row['notes']:>8} {row['load_s']:>8} {row['load_turns_per_s']:>8} "
            f"{row['reopen_s']:>9} {row['search_p50_ms']:>7} {row['search_p95_ms']:>7} "
            f"{row['db_mb']:>7}"
        )
    print(
        f"cold start of `remem search` at {size} notes: "
        f"{results['cold_start']['remem_search_cold_s_median']} s (median of 5)"
    )


if __name__ == "__main__":
    main()
