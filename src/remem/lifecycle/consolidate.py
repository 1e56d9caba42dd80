"""Consolidation: near-duplicate notes of one owner (the same thing said again, a fact
extracted twice) merged into one.

Finding them: each note's nearest notes of its owner (the store's own vector search, so a
pass costs one lookup per note at any size) give the candidate pairs. Without a model a
pair is merged only when it is plainly the same statement: the same words in the same
order once case, punctuation and a few fillers ("oh", "so", "the") are set aside - a
changed date, number, name, unit, role, "before" for "after", an emoji or a negation keeps
them apart - said on the same day (the same sentence on two days may be two events: a
model tells), of the same kind and, for turns, by the same speaker (a reply that repeats
what the other person said is not the same memory). A note that says nothing to remember
- fewer than MIN_WORDS content words, or rated no higher than a plain line of conversation
by `write/importance` ("thanks!", "take care, bye!") - is conversation, not a memory, and is
left alone. With a model, pairs from ASK_VECTOR on are shown to it, with the day each was
said, and it decides; the rules of kind, speaker, owner and expiry still hold.

Merging (see `write/merges`): the oldest note of a group survives (a pinned one first),
with the highest importance, any pin and the others' metadata keys it lacks; the others
are superseded by it without `valid_to` (they still hold), keep their own sources and are
linked `merged_into` it, and the thoughts resting on them rest on it too. Every note gets a
new version and an event ("consolidate" on the survivor, "merge" on each merged note), and
a merge commits only while every note is at the version that was compared.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from pydantic import BaseModel, Field

from remem import clock, ids
from remem.llms.base import LLM
from remem.read.query import search_terms
from remem.stores.base import Changes, RecordsWithRetrieval
from remem.types import Link, Note, Scope
from remem.write import importance
from remem.write.importance import rate
from remem.write.merges import MERGED_INTO
from remem.write.thoughts import RESTS_ON
from remem.write.versions import event, link_event, snapshot

# Cosine from which two notes may say the same thing, without a model (a guard: the
# wording decides, see `plainly_same`).
SAME_VECTOR = 0.95
ASK_VECTOR = 0.85  # with a model: pairs from this cosine on are shown to it
MIN_WORDS = 2
NEAREST = 8  # neighbours of each note looked at
ASK_BATCH = 20  # pairs per model call
PAGE = 500
KINDS = ("turn", "fact")
# words whose presence or absence does not change what a statement says
FILLERS = frozenset("a an the oh ah well so actually really just anyway also and um uh".split())  # noqa: SIM905
Speaker = tuple[str | None, str | None]  # an episode's role and name
Age = tuple[datetime, datetime, str]  # when said, when added, id: older first
_TOKEN = re.compile(r"\w+|[^\w\s]")
_PUNCTUATION = frozenset(
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00a1\u00bf"
)

ASK = """You are shown pairs of memories one person's assistant kept, each with the day it
was said. For each pair, say whether the two state the same thing: the same fact or the
same event, with nothing true in one that the other denies or lacks (different dates,
numbers, people, places, roles or a negation make them different; the same kind of event
told on two days is two events unless the text shows it is one). Answer with the numbers
of the pairs that are the same."""


class SamePairs(BaseModel):
    same: list[int] = Field(default_factory=list, max_length=ASK_BATCH)


@dataclass(frozen=True)
class _Pair:
    first: Note  # the older one
    second: Note
    cosine: float


def candidate_pairs(
    notes: Sequence[Note], store: RecordsWithRetrieval, floor: float
) -> list[_Pair]:
    """Pairs of eligible notes of one owner whose vectors are at least `floor` close, each
    once, closest first (the notes' neighbours may be outside `notes`)."""
    mine = {note.id: note for note in notes if _eligible(note)}
    vectors = store.vectors_of(list(mine))
    close: dict[tuple[str, str], float] = {}
    for note_id, vector in vectors.items():
        owner = mine[note_id].scope.across_sessions()
        for other_id, cosine in store.search_vector(vector, owner, NEAREST + 1):
            if other_id != note_id and cosine >= floor:
                key = (min(note_id, other_id), max(note_id, other_id))
                close[key] = max(cosine, close.get(key, 0.0))
    found = {**store.get_notes([i for pair in close for i in pair if i not in mine]), **mine}
    speakers = _speakers(found.values(), store)
    pairs = []
    for (a, b), cosine in sorted(close.items(), key=lambda item: -item[1]):
        if a not in found or b not in found:
            continue
        first, second = sorted((found[a], found[b]), key=_age)
        if _comparable(first, second, speakers):
            pairs.append(_Pair(first, second, cosine))
    return pairs


def plainly_same(pair: _Pair) -> bool:
    """Whether a pair is the same statement by the model-free rules (see the module)."""
    return (
        pair.cosine >= SAME_VECTOR
        and pair.first.occurred_at.date() == pair.second.occurred_at.date()
        and _wording(pair.first.text) == _wording(pair.second.text)
    )


def ask_model(pairs: Sequence[_Pair], llm: LLM) -> list[_Pair]:
    """The pairs the model says state the same thing."""
    same: list[_Pair] = []
    for start in range(0, len(pairs), ASK_BATCH):
        batch = pairs[start : start + ASK_BATCH]
        shown = "\n\n".join(
            f"{index}.\nA ({_day(p.first)}): {p.first.text}\nB ({_day(p.second)}): {p.second.text}"
            for index, p in enumerate(batch)
        )
        answer = llm.generate("consolidate", ASK, shown, SamePairs)
        same += [batch[i] for i in sorted(set(answer.value.same)) if 0 <= i < len(batch)]
    return same


def groups(
    pairs: Iterable[_Pair], *, same_words: bool = False
) -> list[tuple[Note, list[tuple[Note, float]]]]:
    """Merge groups from confirmed pairs: each note joins the group of the note it pairs
    with only while that note survives its group, so a group is never chained through a
    member (A like B, B like C, but A unlike C) - what is left waits for the next pass.
    Pairs are taken closest first, and among equally close ones the older notes' first:
    the same sentence said three times pairs (1, 2), (1, 3) and (2, 3), and taking (2, 3)
    first left note 1 out (which came first had followed the order the database returned
    rows in). Pairs confirmed by `same_words` are alike all together (the same words are
    the same words), so they are taken by survivor instead - a pinned one, else the
    oldest, first - and a group of one statement merges whole in one pass, a pinned copy
    or a comma apart."""
    order = _by_survivor if same_words else _closest_then_oldest
    survivor_of: dict[str, str] = {}
    members: dict[str, tuple[Note, list[tuple[Note, float]]]] = {}
    for pair in sorted(pairs, key=order):
        keep, drop = _ranked(pair.first, pair.second)
        if (
            drop.id in survivor_of
            or drop.id in members
            or survivor_of.get(keep.id, keep.id) != keep.id
        ):
            continue
        survivor_of[drop.id] = keep.id
        members.setdefault(keep.id, (keep, []))[1].append((drop, pair.cosine))
    return list(members.values())


def merge_changes(
    survivor: Note,
    merged: Sequence[tuple[Note, float]],
    store: RecordsWithRetrieval,
    actor: str,
    decided_by: str,
) -> Changes:
    """One group merged into its survivor, as the module says."""
    moment = clock.now()
    others = [note for note, _ in merged]
    metadata = {k: v for note in reversed(others) for k, v in note.metadata.items()}
    kept = replace(
        survivor,
        metadata={**metadata, **survivor.metadata},
        importance=max(note.importance for note in [survivor, *others]),
        pinned=any(note.pinned for note in [survivor, *others]),
        version=survivor.version + 1,
        updated_at=moment,
    )
    gone = [
        replace(n, superseded_by=survivor.id, version=n.version + 1, updated_at=moment)
        for n in others
    ]
    links = [_link(note.id, survivor.id, cosine, moment) for note, cosine in merged]
    links += _thoughts_moved(others, survivor, store, moment)
    how = {"decided_by": decided_by}
    after = {**snapshot(kept), "merged": [n.id for n in others], **how}
    changes = Changes(notes=[kept, *gone], links=links)
    changes.events = [event("consolidate", kept.id, kept.scope, actor, snapshot(survivor), after)]
    changes.events += [
        event(
            "merge",
            n.id,
            n.scope,
            actor,
            snapshot(old),
            {**snapshot(n), "merged_into": survivor.id, **how},
        )
        for old, n in zip(others, gone, strict=True)
    ]
    changes.events += [link_event(link, kept.scope, actor) for link in links]
    changes.expect = {note.id: note.version for note in [survivor, *others]}
    return changes


def still_mergeable(found: Mapping[str, Note], compared: Mapping[str, int]) -> bool:
    """Whether a group found earlier can still be merged as found: every note still
    eligible and at the version that was compared (a write since may have changed what it
    says; a delete keeps the version)."""
    return all(
        i in found and found[i].version == v and _eligible(found[i]) for i, v in compared.items()
    )


def notes_of(store: RecordsWithRetrieval, scope: Scope, since: datetime | None) -> list[Note]:
    """The live, visible notes of a scope that may be merged (added or changed since
    `since`, when given)."""
    notes: list[Note] = []
    cursor: str | None = None
    while True:
        page, cursor = store.list_notes(scope, PAGE, cursor, order="added")
        notes += [
            n
            for n in page
            if _eligible(n) and (since is None or max(n.created_at, n.updated_at) >= since)
        ]
        if cursor is None:
            return notes


# -- helpers -------------------------------------------------------------------------------


def _eligible(note: Note) -> bool:
    return (
        note.kind in KINDS
        and note.deleted_at is None
        and note.superseded_by is None
        and note.archived_at is None
        and len(search_terms(note.text, None)) >= MIN_WORDS
        and rate(note.text) > importance.BASE
    )


def _speakers(notes: Iterable[Note], store: RecordsWithRetrieval) -> dict[str, Speaker]:
    """Who said each turn among `notes`: its first episode's role and name."""
    turns = {n.id: n.episode_ids[0] for n in notes if n.kind == "turn" and n.episode_ids}
    episodes = store.get_episodes(list(set(turns.values())))
    return {
        note_id: (found.role, found.name)
        for note_id, episode_id in turns.items()
        if (found := episodes.get(episode_id)) is not None
    }


def _comparable(one: Note, two: Note, speakers: Mapping[str, Speaker]) -> bool:
    """Two notes that could be one memory: eligible, of one owner and kind, expiring
    together, and, for turns, said by the same speaker."""
    return (
        _eligible(one)
        and _eligible(two)
        and one.kind == two.kind
        and (one.scope.tenant, one.scope.user_id, one.scope.agent_id)
        == (two.scope.tenant, two.scope.user_id, two.scope.agent_id)
        and one.expires_at == two.expires_at
        and (one.kind != "turn" or speakers.get(one.id) == speakers.get(two.id))
    )


def _age(note: Note) -> Age:
    return note.occurred_at, note.created_at, note.id


def _closest_then_oldest(pair: _Pair) -> tuple[float, Age, Age]:
    # cosines of one text said again differ in the last bits of a float: equal to 6 places
    return (-round(pair.cosine, 6), _age(pair.first), _age(pair.second))


def _by_survivor(pair: _Pair) -> tuple[bool, Age, float, Age]:
    keep, drop = _ranked(pair.first, pair.second)
    return (not keep.pinned, _age(keep), -pair.cosine, _age(drop))


def _ranked(one: Note, two: Note) -> tuple[Note, Note]:
    """(survivor, merged): a pinned note survives, else the older one."""
    if two.pinned and not one.pinned:
        return two, one
    return one, two


def _wording(text: str) -> list[str]:
    """A text's words and symbols in order, case, punctuation and fillers aside."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return [t for t in _TOKEN.findall(folded) if t not in _PUNCTUATION and t not in FILLERS]


def _day(note: Note) -> str:
    return clock.to_text(note.occurred_at)[:10]


def _link(merged_id: str, survivor_id: str, cosine: float, moment: datetime) -> Link:
    reason = "said the same thing; merged by consolidation"
    return Link(
        ids.new_id(ids.LINK), merged_id, survivor_id, MERGED_INTO, round(cosine, 4), reason, moment
    )


def _thoughts_moved(
    others: Sequence[Note], survivor: Note, store: RecordsWithRetrieval, moment: datetime
) -> list[Link]:
    """Links making the thoughts that rest on merged notes rest on the survivor too, so
    they go when it goes."""
    resting = store.links_to([n.id for n in others], RESTS_ON, survivor.scope)
    already = {link.source_id for link in store.links_to([survivor.id], RESTS_ON, survivor.scope)}
    thoughts = dict.fromkeys(link.source_id for link in resting if link.source_id not in already)
    reason = "a conclusion resting on a memory merged into this one"
    return [
        Link(ids.new_id(ids.LINK), t, survivor.id, RESTS_ON, 1.0, reason, moment) for t in thoughts
    ]
