"""Ranking candidates: pure functions over {note id: score}, applied in order by search.

Each step encodes one observation about conversational memory; its weight says how much
that observation is trusted against the retrievers' own evidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import TypeVar

from remem.errors import ConfigError
from remem.read.timespan import Span, asks_when, mentions_time
from remem.stores.base import NoteFacts

Scores = dict[str, float]
K = TypeVar("K")


@dataclass(frozen=True)
class Weights:
    """How much each ranking step is trusted. Zero turns a step off (for ablations)."""

    # Fusion weights of the three retrievers, each scaled to [0, 1] first. A note matched
    # together with the note it replies to is the strongest lexical evidence; the note
    # alone is weaker; dense similarity from the small bundled model is as strong.
    text: float = 0.5
    text_in_context: float = 1.0
    dense: float = 1.0
    # A turn that says several things matches a question about one of them by that sentence
    # better than by its blurred whole: the candidates are scored again by their best
    # sentence (a note of one sentence by itself), and the best of them
    # (`search.SENTENCE_DEPTH`) add this much (tuning half R@10 0.841 -> 0.862; before
    # boosting only `limit` of them, 1.0 and 2.0 gave 0.855 and 0.854 against 0.857 for 1.5).
    sentences: float = 1.5
    # A question ("...?") rarely holds the fact; the answer that follows it does: it
    # gives up 30% of its score and hands 50% on.
    question_gives_up: float = 0.3
    question_hands_on: float = 0.5
    # Neighbours in a session share their topic: each note takes a share of its neighbours'.
    # (Lowered from 0.3 / 0.2 as later steps found more answers directly: with the
    # first-person dense query to 0.15 / 0.1, tuning half R@5 0.754 -> 0.764; with the
    # first version of the best-sentence step to 0.1 / 0.05, R@10 0.857 -> 0.859.)
    from_previous: float = 0.1
    from_following: float = 0.05
    # Coarse-to-fine: notes inside the best-matching passage are up to 60% more likely.
    passage: float = 0.6
    # An explicit date names when something was said or happened; it may be told up to two
    # weeks later ("last week I..."). Inside the span counts five times as much.
    time_span: float = 4.0
    time_slack: timedelta = timedelta(days=14)
    # A question naming one speaker is usually about what that speaker said, in the first
    # person: the dense retriever is asked the question as that speaker would put it.
    speaker: float = 0.4
    speaker_first_person: bool = True
    # A question asking "when" is answered by a note that mentions a time.
    mentions_time: float = 0.5
    # Policies, all off (0) by default: on LoCoMo, where a question asks about any moment
    # of a long history, `recent` costs R@5 0.779 -> 0.746 (README, "Ranking policies"; the
    # presets are in `read/policy`). Each scales a candidate by (1 + weight * signal), the
    # signal in [0, 1], so it favours a memory at most (1 + weight) times, never hides one.
    # Recency of the event (Generative Agents): the signal halves every `recency_half_life`
    # back from the newest candidate; for assistants whose users' lives move on.
    recency: float = 0.0
    recency_half_life: timedelta = timedelta(days=30)
    # Recency and count of access (Ebbinghaus, as in MemoryBank but the right way round): a
    # memory's retention halves every `access_half_life` * (1 + times recalled) since it
    # was last returned (or written), so a memory recalled often decays SLOWER.
    access: float = 0.0
    access_half_life: timedelta = timedelta(days=7)
    # Importance (0-1, rated when written): what matters to the person outranks small talk.
    importance: float = 0.0

    def __post_init__(self) -> None:
        for item in fields(self):
            _check_weight(item.name, getattr(self, item.name), item.default)

    @property
    def policy(self) -> bool:
        """Whether a policy (recency, access, importance) is on."""
        return self.recency > 0 or self.access > 0 or self.importance > 0


def _check_weight(name: str, value: object, default: object) -> None:
    """Refuse a weight a ranking cannot use: negative, not a number, of the wrong type."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"ranking weight {name} must be true or false, got {value!r}")
    elif isinstance(default, timedelta):
        least = timedelta(0) if name == "time_slack" else timedelta.resolution
        if not isinstance(value, timedelta) or value < least:
            raise ConfigError(
                f"ranking weight {name} must be a timedelta"
                f" {'>= 0' if name == 'time_slack' else '> 0'}, got {value!r}"
            )
    elif (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigError(f"ranking weight {name} must be a finite number >= 0, got {value!r}")


DEFAULT = Weights()
# A small embedding model cannot tell notes apart by a few hundredths of cosine; in a memory
# of a handful of notes, scaling such a gap to [0, 1] would let it outweigh every word that
# matched. (On LoCoMo's candidate pools the range is wider: no change there.)
MIN_COSINE_SPREAD = 0.2


def fuse(
    text: Sequence[tuple[str, float]],
    text_in_context: Sequence[tuple[str, float]],
    dense: Sequence[tuple[str, float]],
    weights: Weights,
) -> Scores:
    """Weighted sum of the retrievers' scores, each scaled to [0, 1] over its candidates."""
    scores: Scores = {}
    for ranking, weight, scale in (
        (text, weights.text, _by_max),
        (text_in_context, weights.text_in_context, _by_max),
        (dense, weights.dense, _by_range),
    ):
        for item_id, value in scale(ranking).items():
            scores[item_id] = scores.get(item_id, 0.0) + weight * value
    return scores


def add_sentences(
    scores: Scores, sentences: Mapping[str, float], count: int, weights: Weights
) -> Scores:
    """Add the best-sentence similarity of the `count` best candidates, scaled over them."""
    best = sorted(sentences.items(), key=lambda item: (-item[1], item[0]))[:count]
    result = dict(scores)
    for item_id, value in _by_range(best).items():
        result[item_id] = result.get(item_id, 0.0) + weights.sentences * value
    return result


def hand_off_questions(scores: Scores, facts: Mapping[str, NoteFacts], weights: Weights) -> Scores:
    """Move part of a question's score to the note that answers it."""
    result = dict(scores)
    for item_id, score in scores.items():
        fact = facts.get(item_id)
        if fact is None or not fact.text.rstrip().endswith("?"):
            continue
        result[item_id] -= weights.question_gives_up * score
        if fact.following is not None:
            result[fact.following] = (
                result.get(fact.following, 0.0) + weights.question_hands_on * score
            )
    return result


def spread_to_neighbours(
    scores: Scores, facts: Mapping[str, NoteFacts], weights: Weights
) -> Scores:
    """Each note gains a share of the scores of the notes just before and after it."""
    result = dict(scores)
    for item_id, score in scores.items():
        fact = facts.get(item_id)
        if fact is None:
            continue
        if fact.following is not None:
            result[fact.following] = result.get(fact.following, 0.0) + weights.from_previous * score
        if fact.previous is not None:
            result[fact.previous] = result.get(fact.previous, 0.0) + weights.from_following * score
    return result


def boost_passages(
    scores: Scores,
    facts: Mapping[str, NoteFacts],
    passages: Sequence[tuple[int, float]],
    weights: Weights,
) -> Scores:
    """Scale each note by how well its passage matches, relative to the best passage."""
    strength: dict[int | None, float] = dict(_by_max(passages))
    return {
        item_id: score * (1 + weights.passage * strength.get(_passage(facts, item_id), 0.0))
        for item_id, score in scores.items()
    }


def boost_time(
    scores: Scores, facts: Mapping[str, NoteFacts], span: Span | None, weights: Weights
) -> Scores:
    """Favour notes from the span the query names, when any candidate falls inside it."""
    if span is None:
        return scores
    start, end = span[0], span[1] + weights.time_slack

    def inside(fact: NoteFacts) -> bool:
        return start <= fact.occurred_at < end

    if not any(inside(facts[item_id]) for item_id in scores if item_id in facts):
        return scores
    return _boost(scores, facts, weights.time_span, inside)


def boost_speaker(
    scores: Scores, facts: Mapping[str, NoteFacts], speaker: str | None, weights: Weights
) -> Scores:
    """Favour notes by the one speaker the query names."""
    if speaker is None:
        return scores
    return _boost(
        scores, facts, weights.speaker, lambda fact: (fact.speaker or "").lower() == speaker.lower()
    )


def boost_time_mentions(
    scores: Scores, facts: Mapping[str, NoteFacts], query: str, weights: Weights
) -> Scores:
    """For a question asking for a time, favour notes that mention one."""
    if not asks_when(query):
        return scores
    return _boost(scores, facts, weights.mentions_time, lambda fact: mentions_time(fact.text))


def _passage(facts: Mapping[str, NoteFacts], item_id: str) -> int | None:
    fact = facts.get(item_id)
    return fact.passage if fact else None


def _boost(
    scores: Scores,
    facts: Mapping[str, NoteFacts],
    weight: float,
    applies: Callable[[NoteFacts], bool],
) -> Scores:
    """Scale by (1 + weight) the scores of the notes whose facts satisfy `applies`."""
    return {
        item_id: score * (1 + weight) if item_id in facts and applies(facts[item_id]) else score
        for item_id, score in scores.items()
    }


def _by_max(ranking: Sequence[tuple[K, float]]) -> dict[K, float]:
    top = max((score for _, score in ranking), default=0.0)
    return {item: score / top for item, score in ranking} if top > 0 else {}


def _by_range(ranking: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Cosines scaled to [0, 1] over their range, a range under MIN_COSINE_SPREAD counting
    as that much."""
    if not ranking:
        return {}
    low = min(score for _, score in ranking)
    high = max(score for _, score in ranking)
    spread = max(high - low, MIN_COSINE_SPREAD)
    return {item: (score - low) / spread for item, score in ranking}
