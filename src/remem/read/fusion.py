"""Rank fusion: combine ranked lists from different retrievers into one."""

from __future__ import annotations

from collections.abc import Sequence

# The usual RRF constant (Cormack et al., 2009): damps the influence of top ranks.
RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[tuple[str, float]]],
) -> list[tuple[str, float]]:
    """Sum 1 / (RRF_K + rank) over every ranking an id appears in; best first."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, (item_id, _) in enumerate(ranking, start=1):
            scores[item_id] = scores.get(item_id, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
