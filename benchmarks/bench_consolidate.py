"""Consolidation on a synthetic memory with planted duplicates: precision and recall of
merging, without a model, with the bundled embedder (or --embedder hash).

One person says N distinct statements (templates with varied names, places, numbers and
dates). Planted among them: restatements of some (the same words with other casing and
punctuation, a filler in front, a contraction, a reordered clause) that should merge, and
hard negatives that should not (one detail changed, a negation, one small word changed -
"since" for "until", "I" for "you" - or the other speaker saying it). All are said on one
day: the same sentence on two days is left to a model. Precision: merged notes whose
survivor says the same statement / merged notes. Recall: planted restatements merged
into their original / planted restatements.

    python benchmarks/bench_consolidate.py [--statements 2000] [--seed 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from remem import Memory
from remem.config import Settings
from remem.embedders import create_embedder
from remem.testing import HashEmbedder

NAMES = [
    "Max",
    "Bella",
    "Luna",
    "Rocky",
    "Daisy",
    "Milo",
    "Coco",
    "Ruby",
    "Oscar",
    "Teddy",
    "Nala",
    "Simba",
    "Leo",
    "Rosie",
]
PEOPLE = [
    "Ana",
    "Bruno",
    "Carla",
    "Diego",
    "Elena",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Lars",
    "Mona",
    "Nils",
]
CITIES = [
    "Lisbon",
    "Porto",
    "Berlin",
    "Oslo",
    "Madrid",
    "Vienna",
    "Prague",
    "Dublin",
    "Krakow",
    "Turin",
    "Ghent",
    "Bergen",
]
JOBS = [
    "nurse",
    "teacher",
    "welder",
    "architect",
    "baker",
    "pilot",
    "chemist",
    "plumber",
    "lawyer",
    "editor",
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
]
THINGS = [
    "cello",
    "piano",
    "guitar",
    "violin",
    "drums",
    "flute",
    "trumpet",
    "harp",
    "banjo",
    "ukulele",
]
TEMPLATES = [
    "I adopted a dog called {name} in {month} {year}.",
    "My friend {person} moved to {city} in {year}.",
    "I started working as a {job} in {city} in {month}.",
    "I ran {n} kilometres along the river in {month}.",
    "My cousin {person} is learning to play the {thing} with a teacher from {city}.",
    "We booked a trip to {city} for {n} days in {month} {year}.",
    "{person} gave me a {thing} for my birthday in {year}.",
    "I have been saving {n} euros a month since {month} {year}.",
]
# (what a statement says, with one small word changed: stopwords to a keyword search)
SWAPS = [
    (" since ", " until "),
    (" with ", " without "),
    (" to ", " from "),
    ("I ", "You "),
    (" in ", " before "),
    (" for ", " against "),
]
FILLERS = ["Actually, ", "As I said, ", "Just so you remember, ", "By the way, ", "Oh and "]


def slots(rng: random.Random) -> dict[str, Any]:
    return {
        "name": rng.choice(NAMES),
        "person": rng.choice(PEOPLE),
        "city": rng.choice(CITIES),
        "job": rng.choice(JOBS),
        "month": rng.choice(MONTHS),
        "thing": rng.choice(THINGS),
        "year": rng.randint(2015, 2025),
        "n": rng.randint(2, 90),
    }


def restated(text: str, how: str) -> str:
    """The same statement said again, as `how` names."""
    if how == "casing":
        return text.upper() if len(text) % 2 else text.lower()
    if how == "punctuation":
        return text.rstrip(".") + "!"
    if how == "filler":
        return FILLERS[len(text) % len(FILLERS)] + text[0].lower() + text[1:]
    if how == "contraction":
        return text.replace("I have been", "I've been").replace("I started", "I had started")
    words = text.rstrip(".").split(" in ")  # "reorder": the time in front
    return f"In {words[-1]}, {' in '.join(words[:-1])}." if len(words) > 1 else text


def changed(text: str, values: dict[str, Any], how: str, rng: random.Random) -> str | None:
    """A hard negative: the statement with one thing that makes it another memory."""
    if how == "negation":
        return text.replace("I ", "I never ", 1) if text.startswith("I ") else "Not true: " + text
    if how == "function word":  # a small word that changes what it says
        for one, other in SWAPS:
            if one in text:
                return text.replace(one, other, 1)
        return None
    keys = [
        k
        for k in ("n", "year", "name", "person", "city", "month", "job", "thing")
        if f"{{{k}}}" in how
    ]
    if not keys:
        return None
    key = rng.choice(keys)
    other = dict(values)
    while other[key] == values[key]:
        other[key] = slots(rng)[key]
    return how.format(**other)


def build(count: int, seed: int) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """Messages in the order said, and for each planted restatement (by index) the index of
    its original."""
    rng = random.Random(seed)
    said: list[dict[str, Any]] = []
    seen: set[str] = set()
    originals: list[tuple[int, str, dict[str, Any]]] = []
    while len(originals) < count:
        template, values = rng.choice(TEMPLATES), slots(rng)
        text = template.format(**values)
        if f"user:{text}" not in seen:
            seen.add(f"user:{text}")
            originals.append((len(said), template, values))
            said.append({"role": "user", "content": text, "kind": "original"})
    truth: dict[int, int] = {}
    for index, _, _ in rng.sample(originals, count // 4):
        how = rng.choice(["casing", "punctuation", "filler", "contraction", "reorder"])
        text = restated(said[index]["content"], how)
        truth[len(said)] = index
        kind = how if text != said[index]["content"] else "identical"
        said.append({"role": "user", "content": text, "kind": kind})
    for index, template, values in rng.sample(originals, count // 4):
        how = rng.choice(["negation", "detail", "speaker", "function word"])
        text = said[index]["content"]
        role = "assistant" if how == "speaker" else "user"
        kind = how if how in ("negation", "function word") else template
        other = text if how == "speaker" else changed(text, values, kind, rng)
        if other and f"{role}:{other}" not in seen:
            seen.add(f"{role}:{other}")
            said.append({"role": role, "content": other, "kind": f"negative:{how}"})
    return said, truth


def measure(memory: Memory, said: list[dict[str, Any]], truth: dict[int, int]) -> dict[str, Any]:
    note_of: dict[int, str] = {}
    for start in range(0, len(said), 50):  # sessions of 50 turns
        batch = said[start : start + 50]
        messages = [{"role": m["role"], "content": m["content"]} for m in batch]
        added = memory.add(messages, user_id="ana", session_id=f"s{start // 50}")
        note_of.update(zip(range(start, start + len(batch)), added.note_ids, strict=True))
    index_of = {note_id: index for index, note_id in note_of.items()}
    began = time.perf_counter()
    done = memory.consolidate(user_id="ana", model="never")
    seconds = time.perf_counter() - began
    root = {i: truth.get(i, i) for i in range(len(said))}
    right, wrong = 0, []
    recalled: Counter[str] = Counter()
    for merge in done.merges:
        for merged_id in merge.merged_ids:
            a, b = index_of[merge.survivor_id], index_of[merged_id]
            if root[a] == root[b]:
                right += 1
                recalled[said[max(a, b)]["kind"]] += 1
            else:
                wrong.append((said[a]["content"], said[b]["content"]))
    planted = Counter(said[i]["kind"] for i in truth)
    return {
        "notes": len(said),
        "planted_duplicates": len(truth),
        "hard_negatives": dict(Counter(m["kind"] for m in said if m["kind"].startswith("neg"))),
        "merged": done.merged,
        "precision": round(right / done.merged, 4) if done.merged else 1.0,
        "recall": round(right / len(truth), 4) if truth else 1.0,
        "recall_by_kind": {k: round(recalled[k] / n, 3) for k, n in sorted(planted.items())},
        "consolidate_seconds": round(seconds, 2),
        "wrong_merges": wrong[:10],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--embedder", choices=["bundled", "hash"], default="bundled")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    said, truth = build(options.statements, options.seed)
    embedder = HashEmbedder() if options.embedder == "hash" else create_embedder(Settings())
    with (
        tempfile.TemporaryDirectory() as folder,
        Memory(Path(folder) / "memory.db", embedder=embedder) as memory,
    ):
        result = measure(memory, said, truth)
    result["embedder"] = embedder.model_id
    if options.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    for key, value in result.items():
        print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
