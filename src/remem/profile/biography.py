"""Who the person is and what is going on now, sentence by sentence with evidence.

Without a model, `summary_biography` renders what is known (current attributes, the main
topics, recent activity) as short sentences, so the profile is never empty when there are
notes. With a model, `model_biography` asks for a biography of at most 200 words and a
status of the last days, and keeps only sentences that cite evidence it was shown.
`profile_block` is the few lines `context()` puts first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from remem.llms.base import LLM, Usage
from remem.profile import prompts
from remem.profile.attributes import SLOTS, current
from remem.read.speakers import DAY
from remem.types import Attribute, Biography, Note, Profile, Statement, Topic

__all__ = [
    "MAX_BIOGRAPHY_WORDS",
    "model_biography",
    "profile_block",
    "summary_biography",
]

MAX_BIOGRAPHY_WORDS = 200
STATUS_DAYS = 7  # "the last days"
TOP_TOPICS = 5
EVIDENCE_PER_SENTENCE = 10  # ids a summary sentence cites at most (the latest ones)
SNIPPET_CHARS = 160
SHOWN_PER_TOPIC = 5  # timeline entries a model sees per topic
# the order attributes are told in, and how each reads
_SENTENCES = {
    "name": "Their name is {values}.",
    "home": "Lives in {values}.",
    "origin": "Comes from {values}.",
    "work": "Works as {values}.",
    "employer": "Works at {values}.",
    "education": "Studied at {values}.",
    "partner": "Partner: {values}.",
    "child": "Children: {values}.",
    "family": "Family: {values}.",
    "pet": "Pets: {values}.",
    "likes": "Likes {values}.",
    "dislikes": "Dislikes {values}.",
    "health": "Health: {values}.",
    "birthday": "Birthday: {values}.",
    "date": "Important dates: {values}.",
    "email": "Email: {values}.",
    "phone": "Phone: {values}.",
    "website": "Website: {values}.",
}
VALUES_PER_SENTENCE = 6

# -- without a model -------------------------------------------------------------------------


def summary_biography(
    topics: Sequence[Topic],
    attributes: Sequence[Attribute],
    recent: Sequence[Note],
    *,
    version: int,
    now: datetime,
    is_person: Callable[[Note], bool] | None = None,
) -> Biography:
    """A structured summary as sentences: current attributes, the main topics, and what
    the latest notes were about (the status: the person's own notes when `is_person`
    tells them apart and they said any, else all)."""
    own = [note for note in recent if is_person(note)] if is_person else []
    sentences = [*_attribute_sentences(attributes), *_topic_sentences(topics)]
    status = _status_sentences(own or recent, now)
    if not sentences and status:  # only recent notes are known: say so in the biography too
        sentences = [status[0]]
    return Biography(
        text=" ".join(s.text for s in sentences),
        sentences=tuple(sentences),
        status=tuple(status),
        by="summary",
        version=version,
        updated_at=now,
    )


def _attribute_sentences(attributes: Sequence[Attribute]) -> list[Statement]:
    held: dict[str, list[Attribute]] = {}
    for attribute in current(attributes):
        if attribute.slot in _SENTENCES and attribute.value.strip():
            held.setdefault(attribute.slot, []).append(attribute)
    sentences = []
    for slot, shape in _SENTENCES.items():
        if slot not in held:
            continue
        chosen = sorted(held[slot], key=lambda a: (-a.confidence, -len(a.note_ids), a.value))
        chosen = chosen[:VALUES_PER_SENTENCE]
        values = ", ".join(attribute.value for attribute in chosen)
        evidence = [note_id for attribute in chosen for note_id in attribute.note_ids]
        sentences.append(Statement(shape.format(values=values), _latest_ids(evidence)))
    return sentences


def _topic_sentences(topics: Sequence[Topic]) -> list[Statement]:
    top = sorted(topics, key=lambda t: (-t.confidence, -t.size, t.id))[:TOP_TOPICS]
    sentences = []
    for topic in top:
        if not topic.note_ids:
            continue
        title = topic.name or topic.label
        span = (
            f"{topic.first_at:%b %Y}"
            if topic.first_at.date() == topic.last_at.date()
            else (f"{topic.first_at:%b %Y} to {topic.last_at:%b %Y}")
        )
        text = f"Often talks about {title} ({topic.size} notes, {span})."
        sentences.append(Statement(text, _latest_ids(topic.note_ids)))
    return sentences


def _status_sentences(recent: Sequence[Note], now: datetime) -> list[Statement]:
    """The notes of the last days (else of the last day with notes), newest first."""
    live = sorted((n for n in recent if n.deleted_at is None), key=lambda n: n.occurred_at)
    if not live:
        return []
    since = now - timedelta(days=STATUS_DAYS)
    window = [n for n in live if n.occurred_at >= since]
    if not window:
        last_day = live[-1].occurred_at - timedelta(days=1)
        window = [n for n in live if n.occurred_at >= last_day]
    return [
        Statement(f"On {note.occurred_at:{DAY}}: {_snippet(note.text)}", (note.id,))
        for note in reversed(window[-TOP_TOPICS:])
    ]


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= SNIPPET_CHARS:
        return flat
    return flat[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"


def _latest_ids(note_ids: Sequence[str]) -> tuple[str, ...]:
    """At most EVIDENCE_PER_SENTENCE ids, each once; remem's ids sort by time, so the
    largest are the latest."""
    return tuple(sorted(set(note_ids))[-EVIDENCE_PER_SENTENCE:])


# -- with a model ----------------------------------------------------------------------------


def model_biography(
    llm: LLM,
    topics: Sequence[Topic],
    attributes: Sequence[Attribute],
    recent: Sequence[Note],
    *,
    person: str | None,
    version: int,
    now: datetime,
    speaker_of: Callable[[Note], str] | None = None,
) -> tuple[Biography, Usage]:
    """A biography (at most 200 words) and a status a model writes from the evidence
    shown. A sentence citing an id not shown loses that id; one left citing nothing is
    dropped. When no biography sentence survives, the summary is returned instead (with
    the model's cost). Raises LLMError when the model gives no valid answer."""
    evidence, shown = _evidence(topics, attributes, recent, speaker_of)
    if not shown:
        return summary_biography(topics, attributes, recent, version=version, now=now), Usage()
    who = f"The person is {person}." if person else "The person is the user."
    user = f"{who} Today is {now:{DAY}}.\nEvidence:\n{json.dumps(evidence, ensure_ascii=False)}"
    generation = llm.generate("biography", prompts.BIOGRAPHY, user, prompts.BiographyAnswer)
    sentences = _within_words(prompts.cited(generation.value.biography, shown), MAX_BIOGRAPHY_WORDS)
    status = prompts.cited(generation.value.status, shown)
    if not sentences:
        summary = summary_biography(topics, attributes, recent, version=version, now=now)
        return summary, generation.usage
    biography = Biography(
        text=" ".join(s.text for s in sentences),
        sentences=tuple(sentences),
        status=tuple(status),
        by="model",
        version=version,
        updated_at=now,
    )
    return biography, generation.usage


def _evidence(
    topics: Sequence[Topic],
    attributes: Sequence[Attribute],
    recent: Sequence[Note],
    speaker_of: Callable[[Note], str] | None,
) -> tuple[dict[str, Any], set[str]]:
    """What the model is shown, and the ids in it."""
    top = sorted(topics, key=lambda t: (-t.confidence, -t.size, t.id))[: TOP_TOPICS * 2]
    topic_items = [
        {
            "topic": topic.name or topic.label,
            "keywords": list(topic.keywords[:8]),
            "notes": topic.size,
            "from": f"{topic.first_at:{DAY}}",
            "to": f"{topic.last_at:{DAY}}",
            "timeline": [
                {"id": e.note_id, "date": f"{e.occurred_at:{DAY}}", "text": _snippet(e.text)}
                for e in topic.timeline[-SHOWN_PER_TOPIC:]
            ],
        }
        for topic in top
    ]
    attribute_items = [
        {"slot": a.slot, "value": a.value, "note_ids": list(_latest_ids(a.note_ids))}
        for a in current(attributes)
    ]
    notes = [prompts.note_item(note, speaker_of) for note in recent]
    shown = {e.note_id for topic in top for e in topic.timeline[-SHOWN_PER_TOPIC:]}
    shown |= {i for a in current(attributes) for i in _latest_ids(a.note_ids)}
    shown |= {note.id for note in recent}
    evidence = {"topics": topic_items, "attributes": attribute_items, "recent_notes": notes}
    return evidence, shown


def _within_words(sentences: Sequence[Statement], limit: int) -> list[Statement]:
    kept, words = [], 0
    for sentence in sentences:
        words += len(sentence.text.split())
        if words > limit:
            break
        kept.append(sentence)
    return kept


# -- in every context ------------------------------------------------------------------------

_BLOCK_SLOTS = ("name", "home", "work", "employer", "partner", "child", "pet")


def profile_block(
    profile: Profile, budget_tokens: int, count_tokens: Callable[[Sequence[str]], list[int]]
) -> str:
    """A few lines on who this is (name, home, work, family, main topics, status), most
    telling first, as many as fit in `budget_tokens`; "" when nothing is known."""
    lines = _block_lines(profile)
    if not lines or budget_tokens <= 0:
        return ""
    header = "About the person:"
    costs = count_tokens([header, *lines])
    used, kept = costs[0], []
    for line, cost in zip(lines, costs[1:], strict=True):
        if used + cost + 1 <= budget_tokens:  # +1: the line break
            kept.append(line)
            used += cost + 1
    return "\n".join([header, *kept]) if kept else ""


def _block_lines(profile: Profile) -> list[str]:
    held: dict[str, list[str]] = {}
    for attribute in current(profile.attributes):
        held.setdefault(attribute.slot, []).append(attribute.value)
    lines = [
        f"{SLOTS[slot].label.capitalize()}: {', '.join(held[slot][:VALUES_PER_SENTENCE])}"
        for slot in _BLOCK_SLOTS
        if slot in held
    ]
    top = sorted(profile.topics, key=lambda t: (-t.confidence, -t.size, t.id))[:TOP_TOPICS]
    if top:
        lines.append("Main topics: " + ", ".join(t.name or t.label for t in top))
    status = profile.biography.status[:2]
    if status:
        lines.append("Lately: " + " ".join(s.text for s in status))
    return lines
