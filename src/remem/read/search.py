"""Hybrid, context-aware search over the scope's notes.

Three retrievers propose candidates (BM25 on the note, BM25 on the note with the one it
replies to, dense vectors); their scores are fused, the candidates are scored again by
their best-matching sentence, then re-weighted by what a conversation's structure says
(questions and answers, neighbouring notes, the passage a note sits in, the time and the
speaker the query names). See `rank` for each step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from remem import clock
from remem.embedders.base import Embedder, Vectors
from remem.read import policy, rank
from remem.read.dense import Dense
from remem.read.explain import Trace
from remem.read.query import as_said_by, search_terms
from remem.read.rank import Scores
from remem.read.relevance import CALIBRATED_MODELS, UNKNOWN_COSINE, coverage, relevance
from remem.read.timespan import find_span
from remem.read.updates import asks_about_now, prefer_replacements
from remem.stores.base import NoteFacts, Retrieval, SearchStore
from remem.types import Hit, Note, Scope

# Each retriever proposes this many candidates at least (more for large limits), so the
# fused ranking has overlap to work with and neighbours to promote.
MIN_CANDIDATES = 100
CANDIDATE_FACTOR = 4
# The sentence step scores at least this many candidates (as many as the search returns if
# more), so the first hits' order does not depend on how many are asked for (up to 25, where
# the pool starts to grow): scoring only `limit` of them made `limit=10` rank worse than
# `limit=50` (LoCoMo R@10 0.841 vs 0.848).
SENTENCE_DEPTH = 50


def search(
    store: SearchStore,
    embedder: Embedder,
    query: str,
    scope: Scope,
    limit: int,
    filters: Mapping[str, Any] | None = None,
    weights: rank.Weights = rank.DEFAULT,
    include_superseded: bool = False,
    min_score: float = 0.0,
    explain: bool = False,
) -> list[Hit]:
    """The `limit` best notes for the query in the scope, best first, each scored by its
    relevance (see `read/relevance`) and only those of at least `min_score`; notes a later
    fact superseded only when `include_superseded`; with `explain`, each hit carries its
    score parts (see `read/explain`)."""
    pool = max(MIN_CANDIDATES, CANDIDATE_FACTOR * limit)
    if filters:
        pool *= 10  # filters apply after ranking, so look deeper
    terms = search_terms(query)
    named = store.speakers_named(terms, scope)
    speaker = named[0] if len(named) == 1 else None
    as_asked = as_said_by(query, speaker) if speaker and weights.speaker_first_person else query
    dense = Dense(store, embedder, as_asked, scope, pool)
    matches = store.search_text(terms, scope, pool, dense.ids)
    # (most candidates are known now: what ranking needs of them is read while the query
    # is still being embedded)
    described = store.describe([item_id for item_id, _ in matches.in_context])
    vector = dense.vector()
    trace = Trace(explain, weights.policy)
    scores = trace.fuse(matches.note, matches.in_context, dense.hits(), weights)
    sentences = store.sentence_scores(vector, list(scores)) if vector is not None else {}
    if weights.sentences:
        depth = max(limit, SENTENCE_DEPTH)
        scores = trace.run("sentence", rank.add_sentences, scores, sentences, depth, weights)
    facts = _facts_with_neighbours(store, scores, described)
    scores = trace.run("question", rank.hand_off_questions, scores, facts, weights)
    scores = trace.run("neighbours", rank.spread_to_neighbours, scores, facts, weights)
    passages = store.search_passages(terms, scope, pool, lambda: _passages_of(facts))
    scores = trace.run("passage", rank.boost_passages, scores, facts, passages, weights)
    span = find_span(query, lambda: _newest(facts))
    scores = trace.run("time", rank.boost_time, scores, facts, span, weights)
    scores = trace.run("speaker", rank.boost_speaker, scores, facts, speaker, weights)
    scores = trace.run("time_mention", rank.boost_time_mentions, scores, facts, query, weights)
    if asks_about_now(query, lambda: _newest(facts)):
        replaced = store.replaced_turns(list(scores))
        scores = trace.run("update", prefer_replacements, scores, replaced)
    if weights.policy:
        scores = _apply_policy(store, scores, weights, _newest(facts), trace)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    calibrated = vector is not None and embedder.model_id in CALIBRATED_MODELS
    owner = [scope.user_id] if scope.user_id else []  # "what does Ana like?" in Ana's memory
    judge = Judge(store, vector if calibrated else None, sentences, _content(terms, named + owner))
    hits = _hits(store, ranked, limit, Wanted(filters, include_superseded, min_score), judge)
    return trace.explain(hits, scores, judge.inputs)


def _apply_policy(
    store: SearchStore, scores: Scores, weights: rank.Weights, newest: datetime | None, trace: Trace
) -> Scores:
    """The ranking policy's steps (`read/policy`), over the candidates' lifecycle fields."""
    notes = store.get_notes(list(scores))
    scores = trace.run("recency", policy.favour_recent, scores, notes, weights, newest)
    scores = trace.run("access", policy.favour_recalled, scores, notes, weights, clock.now())
    return trace.run("importance", policy.favour_important, scores, notes, weights)


@dataclass
class Judge:
    """The relevance of the notes a search returns (cosines of candidates known already)."""

    store: SearchStore
    vector: Vectors | None  # None: cosines do not count (see `relevance.CALIBRATED_MODELS`)
    cosines: dict[str, float]
    content: list[str]  # the query's content words, less the speaker it names

    def scores(self, notes: Sequence[Note]) -> dict[str, float]:
        if self.vector is not None:
            missing = [note.id for note in notes if note.id not in self.cosines]
            self.cosines.update(self.store.sentence_scores(self.vector, missing))
        return {note.id: round(relevance(*self.inputs(note)), 4) for note in notes}

    def inputs(self, note: Note | Hit) -> tuple[float, float]:
        """What a note's relevance is judged by: its best sentence's cosine (a typical
        relevant one when cosines do not count) and its share of the query's words."""
        cosine = self.cosines.get(note.id, 0.0) if self.vector is not None else UNKNOWN_COSINE
        return cosine, coverage(self.content, note.text)


@dataclass(frozen=True)
class Wanted:
    """Which ranked notes a caller wants back."""

    filters: Mapping[str, Any] | None
    include_superseded: bool
    min_score: float

    def keeps(self, note: Note) -> bool:
        if note.deleted_at is not None or not _matches(note, self.filters):
            return False
        if note.archived_at is not None or (note.expires_at and note.expires_at <= clock.now()):
            return False  # archived or expired: out of search (a neighbour may bring it)
        return note.superseded_by is None or self.include_superseded


def _content(terms: Sequence[str], speakers: Sequence[str]) -> list[str]:
    """The query's words that say what it is about: not the names of the speakers (or of
    the memory's owner)."""
    names = {name.lower() for name in speakers}
    return [term for term in terms if term not in names]


def _facts_with_neighbours(
    store: Retrieval, scores: Mapping[str, float], described: Mapping[str, NoteFacts]
) -> dict[str, NoteFacts]:
    """Facts of every candidate and of the notes just before and after each (those of the
    `described` candidates are known)."""
    facts = {item_id: described[item_id] for item_id in scores if item_id in described}
    facts.update(store.describe([item_id for item_id in scores if item_id not in described]))
    neighbours = {
        other
        for fact in facts.values()
        for other in (fact.previous, fact.following)
        if other is not None and other not in facts
    }
    # (their own neighbours are not needed: only candidates share score)
    facts.update(store.describe(list(neighbours), neighbours=False))
    return facts


def _passages_of(facts: Mapping[str, NoteFacts]) -> list[int]:
    return sorted({fact.passage for fact in facts.values() if fact.passage is not None})


def _newest(facts: Mapping[str, NoteFacts]) -> datetime | None:
    """When the newest candidate was said: the reference for dates without a year."""
    return max((fact.occurred_at for fact in facts.values()), default=None)


def _hits(
    store: SearchStore, ranked: list[tuple[str, float]], limit: int, wanted: Wanted, judge: Judge
) -> list[Hit]:
    hits: list[Hit] = []
    # Load notes a page at a time: without filters the first page is nearly always enough.
    for start in range(0, len(ranked), limit):
        page = ranked[start : start + limit]
        found = store.get_notes([item_id for item_id, _ in page])
        notes = [note for item_id, _ in page if (note := found.get(item_id)) and wanted.keeps(note)]
        scores = judge.scores(notes)
        for note in notes:
            if scores[note.id] < wanted.min_score and not note.pinned:
                continue  # (a pinned note is always eligible: no floor drops it)
            hits.append(to_hit(note, scores[note.id]))
            if len(hits) == limit:
                return hits
    return hits


def _matches(note: Note, filters: Mapping[str, Any] | None) -> bool:
    """Metadata equality on every filter key."""
    return not filters or all(note.metadata.get(key) == value for key, value in filters.items())


def to_hit(note: Note, score: float) -> Hit:
    return Hit(
        id=note.id,
        kind="note",
        text=note.text,
        score=score,
        metadata=note.metadata,
        occurred_at=note.occurred_at,
        episode_ids=note.episode_ids,
        scope=note.scope,
        thread=note.thread,
    )
