"""Which ranking step gives which gain: LoCoMo recall with each step of search turned off.

    python benchmarks/ablation_locomo.py --data ../shared/bench/locomo10.json

Every row is the whole benchmark (as `remem bench locomo`) with the default weights except
the ones named; "retrievers only" keeps the three retrievers and no later step. Each
sample is ingested once and asked with every variant.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from remem.bench import locomo
from remem.bench.runner import run_variants
from remem.embedders.minilm import MiniLMEmbedder
from remem.read.rank import DEFAULT
from remem.tokens import count_tokens

STRUCTURE_OFF = {
    "question_gives_up": 0.0, "question_hands_on": 0.0, "from_previous": 0.0,
    "from_following": 0.0, "passage": 0.0, "time_span": 0.0, "speaker": 0.0,
    "mentions_time": 0.0, "speaker_first_person": False, "sentences": 0.0,
}  # fmt: skip
VARIANTS: dict[str, dict[str, Any]] = {
    "default (all steps)": {},
    "- dense retriever": {"dense": 0.0},
    "- note-with-context retriever": {"text_in_context": 0.0},
    "- note-alone retriever": {"text": 0.0},
    "- best sentence": {"sentences": 0.0},
    "- question hands on to answer": {"question_gives_up": 0.0, "question_hands_on": 0.0},
    "- neighbours share score": {"from_previous": 0.0, "from_following": 0.0},
    "- passage boost": {"passage": 0.0},
    "- time span boost": {"time_span": 0.0},
    "- speaker boost": {"speaker": 0.0},
    "- question asked as the speaker": {"speaker_first_person": False},
    "- time mentions for 'when'": {"mentions_time": 0.0},
    "retrievers only": STRUCTURE_OFF,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="A LoCoMo-format file.")
    parser.add_argument("--samples", help="Comma-separated sample ids (default: all).")
    parser.add_argument("--json", action="store_true", help="Print JSON only.")
    args = parser.parse_args()
    samples = locomo.load(args.data, args.samples.split(",") if args.samples else None)
    embedder = MiniLMEmbedder()
    rankings = [replace(DEFAULT, **changes) for changes in VARIANTS.values()]
    reports = run_variants(samples, embedder, count_tokens, rankings)
    results = {}
    for name, report in zip(VARIANTS, reports, strict=True):
        summary = report.summary()
        results[name] = {
            half: summary["scores"][half]
            for half in ("overall", "tuning", "held-out")
            if half in summary["scores"]
        }
        results[name]["search_p50_ms"] = summary["search_p50_ms"]
        if not args.json:
            _row(name, results[name])
    if args.json:
        print(json.dumps(results, indent=2))


def _row(name: str, scores: dict[str, Any]) -> None:
    cells = "  ".join(
        f"{half} {scores[half]['R@5']:.3f}/{scores[half]['R@10']:.3f}"
        for half in ("overall", "tuning", "held-out")
        if half in scores
    )
    print(f"{name:<32} R@5/R@10  {cells}  p50 {scores['search_p50_ms']} ms", flush=True)


if __name__ == "__main__":
    main()
