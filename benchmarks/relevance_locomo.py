"""Fit the relevance curve (`remem.read.relevance`) on LoCoMo's tuning half, and measure
what a relevance floor keeps and rejects.

    python benchmarks/relevance_locomo.py --data ../shared/bench/locomo10.json

For each sample (added a turn per call, user id only) it asks the sample's own questions
and, mapped onto this sample's two speakers, every sixth question of the other samples
("foreign" questions, which this memory cannot answer). Features of the top 10 hits: the
best-sentence cosine and the share of the query's content words the hit says. It prints
the fitted weights, then for each floor: the share of foreign questions left with no hit
at or above it, the share of evidence hits kept, and the share of real questions left
with nothing — on the tuning half and the held-out half.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from remem.bench import locomo
from remem.bench.abstain import mapped, speakers_of
from remem.bench.runner import TUNING_SAMPLES, Report, _ingest
from remem.embedders.minilm import MiniLMEmbedder
from remem.memory import Memory
from remem.read.query import as_said_by, search_terms
from remem.read.relevance import coverage
from remem.stores.sqlite import SQLiteStore

FLOORS = (0.02, 0.03, 0.04, 0.05, 0.07, 0.1, 0.2)
Row = tuple[float, float, bool]  # cosine, coverage, is evidence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="A LoCoMo-format file.")
    args = parser.parse_args()
    samples = locomo.load(args.data)
    embedder = MiniLMEmbedder()
    asked: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="remem-relevance-") as folder:
        for sample in samples:
            path = Path(folder) / f"{sample.sample_id}.db"
            with Memory(store=SQLiteStore(path), embedder=embedder) as memory:
                asked += _ask_sample(memory, embedder, sample, samples)
            print(f"{sample.sample_id}: {len(asked)} questions so far", flush=True)
    weights = _fit([r for q in asked if q["tuning"] and q["real"] for r in q["rows"]])
    print(f"log-odds = {weights[0]:.2f} * cosine + {weights[1]:.2f} * coverage + {weights[2]:.2f}")
    for tuning, half in ((True, "tuning"), (False, "held-out")):
        _report(half, [q for q in asked if q["tuning"] == tuning], weights)


def _ask_sample(
    memory: Memory, embedder: MiniLMEmbedder, sample: Any, samples: list[Any]
) -> list[dict[str, Any]]:
    dia_of = _ingest(memory, sample, Report(), "turn")
    tuning = sample.sample_id in TUNING_SAMPLES
    out = []
    for question in sample.questions:
        rows = _features(
            memory, embedder, sample.sample_id, question.text, dia_of, question.evidence
        )
        out.append({"tuning": tuning, "real": True, "rows": rows})
    mine = speakers_of(sample)
    for other in samples:
        if other.sample_id == sample.sample_id:
            continue
        for question in other.questions[::6]:
            text = mapped(question.text, speakers_of(other), mine)
            rows = _features(memory, embedder, sample.sample_id, text, dia_of, ())
            out.append({"tuning": tuning, "real": False, "rows": rows})
    return out


def _features(
    memory: Memory,
    embedder: MiniLMEmbedder,
    user: str,
    query: str,
    dia_of: dict[str, str],
    evidence: Any,
) -> list[Row]:
    hits = memory.search(query, user_id=user, limit=10)
    terms = search_terms(query)
    named = memory.store.speakers_named(terms, memory.get(hits[0].id).scope) if hits else []
    speaker = named[0] if len(named) == 1 else None
    vector = embedder.embed(as_said_by(query, speaker) if speaker else query)
    cosines = memory.store.sentence_scores(vector, [hit.id for hit in hits])
    content = [term for term in terms if term not in {name.lower() for name in named}]
    return [
        (
            cosines.get(hit.id, 0.0),
            coverage(content, hit.text),
            any(dia_of[e] in evidence for e in hit.episode_ids),
        )
        for hit in hits
    ]


def _fit(rows: list[Row]) -> np.ndarray:
    """Logistic regression by Newton's method."""
    features = np.array([[cosine, share, 1.0] for cosine, share, _ in rows])
    labels = np.array([1.0 if relevant else 0.0 for _, _, relevant in rows])
    weights = np.zeros(3)
    for _ in range(50):
        chance = 1 / (1 + np.exp(-features @ weights))
        gradient = features.T @ (chance - labels)
        hessian = (features * (chance * (1 - chance))[:, None]).T @ features
        weights -= np.linalg.solve(hessian + 1e-6 * np.eye(3), gradient)
    return weights


def _report(half: str, asked: list[dict[str, Any]], weights: np.ndarray) -> None:
    def chance(row: Row) -> float:
        return 1 / (1 + math.exp(-(weights[0] * row[0] + weights[1] * row[1] + weights[2])))

    real = [q["rows"] for q in asked if q["real"]]
    foreign = [q["rows"] for q in asked if not q["real"]]
    evidence = [row for rows in real for row in rows if row[2]]
    print(f"\n{half}: {len(real)} questions, {len(foreign)} foreign")
    print(f"{'floor':>6} {'foreign rejected':>17} {'evidence kept':>14} {'real rejected':>14}")
    for floor in FLOORS:
        rejected = np.mean([max(map(chance, rows), default=0) < floor for rows in foreign])
        kept = np.mean([chance(row) >= floor for row in evidence])
        lost = np.mean([max(map(chance, rows), default=0) < floor for rows in real])
        print(f"{floor:>6} {rejected:>17.3f} {kept:>14.3f} {lost:>14.3f}")


if __name__ == "__main__":
    main()
