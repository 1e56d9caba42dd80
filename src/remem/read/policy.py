"""Ranking policies: named sets of weights, and the steps that weigh a memory's age, how it
has been recalled and how much it matters. All off by default.

A policy scales each candidate's score by (1 + weight * signal), the signal in [0, 1]: it
can favour a memory at most (1 + weight) times, so a relevant old memory is pushed down,
never out (a decay that hides what it suppresses is how a 242-day conversation lost all
its recall in one tester's hands). A pinned memory never decays: its recency and retention
signals are 1. `search(..., explain=True)` shows each policy's part of every hit's score.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from remem.config import Settings
from remem.errors import ConfigError
from remem.read.rank import DEFAULT, Scores, Weights
from remem.types import Note

Signal = Callable[[Note], float]
# what `Memory(ranking=...)` takes: weights, a preset's name, or None for the settings'
Ranking = Weights | str | None

# The named policies (`Memory(ranking="recent")`, REMEM_RANKING=recent). What each costs on
# LoCoMo's categories is in the README ("Ranking policies").
PRESETS: dict[str, Weights] = {
    "default": DEFAULT,
    # what was said lately counts up to twice what was said long ago
    "recent": Weights(recency=1.0, recency_half_life=timedelta(days=30)),
    # what the person recalls often (and lately) stays near the top
    "reinforced": Weights(access=1.0, access_half_life=timedelta(days=7)),
    # statements of facts, plans, dates and names before greetings
    "important": Weights(importance=1.0),
    # Generative Agents' recency x importance x relevance, each half as strong
    "balanced": Weights(recency=0.5, access=0.5, importance=0.5),
}


def weights_of(ranking: Ranking, settings: Settings | None = None) -> Weights:
    """The weights a ranking names: a `Weights`, a preset's name, or None (the settings'
    `ranking`, REMEM_RANKING; else the default)."""
    if ranking is None:
        ranking = settings.ranking if settings is not None else "default"
    if isinstance(ranking, Weights):
        return ranking
    if isinstance(ranking, str) and ranking.strip().lower() in PRESETS:
        return PRESETS[ranking.strip().lower()]
    raise ConfigError(
        f"unknown ranking {ranking!r}: use one of {', '.join(PRESETS)} (REMEM_RANKING) or a"
        " remem.read.rank.Weights"
    )


def favour_recent(
    scores: Scores, notes: Mapping[str, Note], weights: Weights, newest: datetime | None
) -> Scores:
    """Scale by 1 + weight * 0.5 ** (age / half-life), the age counted back from the newest
    candidate (a memory loaded from old conversations is weighed as of its latest turn,
    not decayed to nothing by the wall clock)."""
    if not weights.recency or newest is None:
        return scores

    def signal(note: Note) -> float:
        return 1.0 if note.pinned else _halved(newest - note.occurred_at, weights.recency_half_life)

    return _scaled(scores, notes, weights.recency, signal)


def favour_recalled(
    scores: Scores, notes: Mapping[str, Note], weights: Weights, now: datetime
) -> Scores:
    """Scale by 1 + weight * retention: retention halves every half-life * (1 + times the
    memory was recalled) since it was last recalled (or written). Recall strengthens a
    memory, so it decays more slowly; MemoryBank's code divides the other way."""
    if not weights.access:
        return scores

    def signal(note: Note) -> float:
        if note.pinned:
            return 1.0
        since = now - (note.last_accessed_at or note.created_at)
        return _halved(since, weights.access_half_life * (1 + max(note.access_count, 0)))

    return _scaled(scores, notes, weights.access, signal)


def favour_important(scores: Scores, notes: Mapping[str, Note], weights: Weights) -> Scores:
    """Scale by 1 + weight * importance (0-1, rated when the memory was written)."""
    if not weights.importance:
        return scores
    return _scaled(
        scores, notes, weights.importance, lambda note: min(max(note.importance, 0.0), 1.0)
    )


def _halved(age: timedelta, half_life: timedelta) -> float:
    """0.5 ** (age / half_life); a memory from the future (clock skew) counts as new."""
    return float(0.5 ** (max(age, timedelta(0)) / half_life))


def _scaled(scores: Scores, notes: Mapping[str, Note], weight: float, signal: Signal) -> Scores:
    return {
        item_id: score * (1 + weight * signal(notes[item_id])) if item_id in notes else score
        for item_id, score in scores.items()
    }
