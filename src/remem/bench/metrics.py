"""The dataset's own retrieval metric: recall@k over turns handed back, and NDCG@k."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def expand_to_turns(hits: Iterable[Sequence[str]], k: int) -> list[str]:
    """Each hit's turns in rank order, distinct, stopping after k turns."""
    turns: list[str] = []
    seen: set[str] = set()
    for hit_turns in hits:
        for turn in hit_turns:
            if turn not in seen:
                seen.add(turn)
                turns.append(turn)
                if len(turns) == k:
                    return turns
    return turns


def recall_at(turns: Sequence[str], gold: Sequence[str], k: int) -> float:
    """Share of gold turns among the first k turns; a question with no gold counts as 1."""
    if not gold:
        return 1.0
    return len(set(turns[:k]) & set(gold)) / len(set(gold))


def ndcg_at(turns: Sequence[str], gold: Sequence[str], k: int) -> float:
    """Binary-relevance NDCG over the first k turns; 1 when there is no gold."""
    if not gold:
        return 1.0
    relevant = set(gold)
    dcg = sum(1 / math.log2(rank + 2) for rank, turn in enumerate(turns[:k]) if turn in relevant)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return dcg / ideal


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]
