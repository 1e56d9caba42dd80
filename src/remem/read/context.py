"""Context assembly: the prompt block a model needs now, within a token budget.

Two kinds of memory, as in SCM's memory controller: flash memory (the latest turns of the
current session, which keep a conversation coherent) and activated memory (what search
finds relevant among everything remembered, across sessions). Both sections write a line
the same way, so a model cannot misread who said what and when: a turn carries its date,
time and speaker (a name, else "the user" or "the assistant"); an extracted fact is marked
`fact` with its source turn's date and no speaker, since it is not anyone's words, and a
conclusion (`Memory.think`) `thought (inferred)` with the day it was drawn. Over
budget, the least relevant lines go first: the oldest recent turns and the lowest-ranked
memories; the line on the edge is shortened at a word boundary when enough of its text
fits to say something, else dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from remem.embedders.base import Embedder
from remem.read import rank
from remem.read.relevance import CONTEXT_FLOOR
from remem.read.search import search
from remem.read.speakers import DAY, FACT_LABEL, THOUGHT_LABEL, TURN_TIME, speaker_of
from remem.read.updates import outdated_note
from remem.stores.base import ContextStore, Replacement
from remem.types import Context, ContextItem, Episode, Hit, Scope

TokenCounter = Callable[[Sequence[str]], list[int]]

# Recent turns may take at most this share of the budget: they keep the exchange coherent,
# but the reason to have a memory is everything else. Room they leave goes to memories.
RECENT_SHARE = 1 / 3
# A line shortened to fewer words of text than this (after its label) says too little to
# be worth its date and speaker: it is dropped instead.
MIN_SHORTENED_WORDS = 8
PROFILE_HEADER = "Who this is (from memory):"
RECENT_HEADER = "Recent conversation:"
MEMORY_HEADER = "Relevant memories, most relevant first:"
ELLIPSIS = " …"
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Candidate:
    """A line that may go into the context, before the budget is applied."""

    id: str
    kind: Literal["profile", "recent", "memory"]
    text: str
    occurred_at: datetime
    score: float | None = None
    label: str = ""  # the start of `text` that says when and who; shortening keeps it whole


def build_context(
    store: ContextStore,
    embedder: Embedder,
    weights: rank.Weights,
    query: str,
    scope: Scope,
    budget: int,
    recent_turns: int,
    memories: int,
    count: TokenCounter,
    profile: Sequence[Candidate] = (),
    profile_share: float = 0.0,
    min_score: float = CONTEXT_FLOOR,
    min_top_score: float = 0.0,
) -> Context:
    """Who the person is (`profile` lines, in at most `profile_share` of the budget), the
    recent turns of the scope's session, then the memories most relevant to `query` (of a
    relevance of at least `min_score`: unrelated memories would only mislead a model; and
    none but pinned ones when no memory reaches `min_top_score`: the memory has nothing on
    the question)."""
    recent = store.recent_episodes(scope, recent_turns) if scope.session_id else []
    owner = scope.across_sessions()  # long-term memory spans the owner's sessions
    hits = (
        search(store, embedder, query, owner, memories, None, weights, min_score=min_score)
        if memories
        else []
    )
    said = {episode.id for episode in recent}
    hits = [hit for hit in hits if not said.intersection(hit.episode_ids)]
    notes = store.get_notes([hit.id for hit in hits])
    if not any(hit.score >= min_top_score for hit in hits):
        hits = [hit for hit in hits if hit.id in notes and notes[hit.id].pinned]
    first_sources = store.get_episodes([hit.episode_ids[0] for hit in hits if hit.episode_ids])
    kinds = {i: note.kind for i, note in notes.items()}
    replaced = store.replaced_turns([hit.id for hit in hits])
    return assemble(
        [_recent_line(episode) for episode in recent],
        [_memory_line(hit, first_sources, kinds.get(hit.id), replaced.get(hit.id)) for hit in hits],
        budget,
        count,
        _fit(PROFILE_HEADER, profile, int(budget * profile_share), count),
    )


def assemble(
    recent: Sequence[Candidate],
    memories: Sequence[Candidate],
    budget: int,
    count: TokenCounter,
    profile_items: Sequence[ContextItem] = (),
) -> Context:
    """After the profile lines already fitted, recent turns (newest first) and memories
    (best first) into what is left of `budget` tokens."""
    used = _cost(PROFILE_HEADER, profile_items, count)
    room = min(int(budget * RECENT_SHARE), budget - used)
    recent_items = _fit(RECENT_HEADER, recent, room, count)
    used += _cost(RECENT_HEADER, recent_items, count)
    memory_items = _fit(MEMORY_HEADER, memories, budget - used, count)
    sections = [
        "\n".join([header, *(item.text for item in items)])
        for header, items in (
            (PROFILE_HEADER, profile_items),
            (RECENT_HEADER, recent_items[::-1]),  # read in the order it was said
            (MEMORY_HEADER, memory_items),
        )
        if items
    ]
    return Context(
        text="\n\n".join(sections),
        items=(*profile_items, *recent_items[::-1], *memory_items),
        tokens=used + _cost(MEMORY_HEADER, memory_items, count),
        budget=budget,
    )


def profile_lines(profile_id: str, text: str, when: datetime) -> list[Candidate]:
    """The lines of a profile block, in the order they are written (the first say most)."""
    return [
        Candidate(profile_id, "profile", line, when)
        for line in (raw.strip() for raw in text.splitlines())
        if line
    ]


def _fit(
    header: str, candidates: Sequence[Candidate], room: int, count: TokenCounter
) -> list[ContextItem]:
    """Candidates in order while they fit in `room` (header included); the first that does
    not fit is shortened when enough of it does, and the rest are dropped."""
    if not candidates:
        return []
    header_tokens, *sizes = count([header, *(candidate.text for candidate in candidates)])
    room -= header_tokens
    items: list[ContextItem] = []
    for candidate, size in zip(candidates, sizes, strict=True):
        if size <= room:
            items.append(_item(candidate, candidate.text, size, shortened=False))
            room -= size
            continue
        text, size = _shorten(candidate, room, count)
        if text:
            items.append(_item(candidate, text, size, shortened=True))
        break
    return items


def _shorten(candidate: Candidate, room: int, count: TokenCounter) -> tuple[str, int]:
    """The label and the longest run of whole leading words of the text after it, plus an
    ellipsis, within `room`; ("", 0) when fewer than MIN_SHORTENED_WORDS would fit."""
    label = candidate.label if candidate.text.startswith(candidate.label) else ""
    words = candidate.text[len(label) :].split(" ")
    best, best_size = "", 0
    low, high = MIN_SHORTENED_WORDS, len(words) - 1
    while low <= high:  # binary search on the number of words kept
        middle = (low + high) // 2
        attempt = label + " ".join(words[:middle]) + ELLIPSIS
        (size,) = count([attempt])
        if size <= room:
            best, best_size, low = attempt, size, middle + 1
        else:
            high = middle - 1
    return best, best_size


def _cost(header: str, items: Sequence[ContextItem], count: TokenCounter) -> int:
    return count([header])[0] + sum(item.tokens for item in items) if items else 0


def _item(candidate: Candidate, text: str, tokens: int, *, shortened: bool) -> ContextItem:
    return ContextItem(
        id=candidate.id,
        kind=candidate.kind,
        text=text,
        occurred_at=candidate.occurred_at,
        tokens=tokens,
        score=candidate.score,
        shortened=shortened,
    )


def _recent_line(episode: Episode) -> Candidate:
    label = _turn_label(episode, episode.occurred_at)
    return Candidate(
        episode.id, "recent", label + _one_line(episode.text), episode.occurred_at, label=label
    )


def _memory_line(
    hit: Hit, sources: dict[str, Episode], kind: str | None, replaced: Replacement | None
) -> Candidate:
    source = sources.get(hit.episode_ids[0]) if hit.episode_ids else None
    if kind == "fact":  # not anyone's words: marked as a fact, dated by its source turn
        said_on = source.occurred_at if source is not None else hit.occurred_at
        label = f"- [{said_on.strftime(DAY)}] {FACT_LABEL}: "
    elif kind == "thought":  # a conclusion drawn from memories, dated when it was drawn
        label = f"- [{hit.occurred_at.strftime(DAY)}] {THOUGHT_LABEL}: "
    else:
        label = _turn_label(source, hit.occurred_at)
    text = _one_line(hit.text) + (outdated_note(replaced, DAY) if replaced else "")
    return Candidate(hit.id, "memory", label + text, hit.occurred_at, hit.score, label)


def _turn_label(source: Episode | None, when: datetime) -> str:
    """`- [2024-05-01 12:00] Ana: `, the same in both sections."""
    return f"- [{when.strftime(TURN_TIME)}] {speaker_of(source)}: "


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()  # one line per item
