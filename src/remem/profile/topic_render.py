"""Topics as the public records (`remem.types.Topic`): keywords against the rest of the
memory, a short dated timeline, and a confidence that comes from evidence only."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from remem.errors import InvalidInputError
from remem.profile import keywords
from remem.profile.topic_state import Cluster, Mark, TopicState
from remem.types import TimelineEntry, Topic

__all__ = ["confidence", "topics_of"]

KEYWORDS = 8
LABEL_WORDS = 3
TIMELINE = 6  # entries: the first, up to four bringing the topic's words, the latest
# evidence: about this many notes / sessions make a topic well attested (1 - 1/e of it)
NOTES_SCALE = 8.0
SESSIONS_SCALE = 3.0
HALF_LIFE_DAYS = 90.0  # a topic untouched this long counts for 3/4 of a current one
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def topics_of(state: TopicState, now: datetime) -> list[Topic]:
    """The topics of a state, most confident first (then largest, then by id)."""
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInputError("now must be an aware datetime (with a time zone)")
    found = [_topic(state, cluster, now) for cluster in state.topics()]
    found.sort(key=lambda topic: (-topic.confidence, -topic.size, topic.id))
    return found


def confidence(notes: int, sessions: int, last_at: datetime, now: datetime) -> float:
    """How well a topic is attested: more notes, more sessions and recent use raise it; it
    never depends on where the topic ranks. In [0, 1)."""
    amount = 1.0 - math.exp(-notes / NOTES_SCALE)
    spread = 1.0 - math.exp(-max(sessions, 1) / SESSIONS_SCALE)
    age_days = max((now - last_at).total_seconds() / 86_400.0, 0.0)
    recency = 0.5 ** (age_days / HALF_LIFE_DAYS)
    return float(round((0.6 * amount + 0.4 * spread) * (0.5 + 0.5 * recency), 4))


def _topic(state: TopicState, cluster: Cluster, now: datetime) -> Topic:
    placed = sorted((state.notes[note_id][1], note_id) for note_id in cluster.members)
    sessions = {state.notes[note_id][2] for note_id in cluster.members} - {-1}
    words = tuple(keywords.distinctive(cluster.terms, state.terms, limit=KEYWORDS))
    first_at, last_at = _time(placed[0][0]), _time(placed[-1][0])
    return Topic(
        id=cluster.id,
        label=_label(cluster, words),
        keywords=words,
        note_ids=tuple(note_id for _, note_id in placed),
        first_at=first_at,
        last_at=last_at,
        timeline=_timeline(cluster, words),
        confidence=confidence(len(placed), len(sessions), last_at, now),
        sessions=len(sessions),
    )


def _label(cluster: Cluster, words: tuple[str, ...]) -> str:
    if words:
        return ", ".join(words[:LABEL_WORDS])
    for mark in cluster.marks:
        if mark.text:
            return keywords.shortened(mark.text, 48)
    return "untitled topic"


def _timeline(cluster: Cluster, words: tuple[str, ...]) -> tuple[TimelineEntry, ...]:
    """The first note, notes that brought the topic's keywords, and the latest, by date."""
    marks = [mark for mark in cluster.marks if mark.note_id in cluster.members]
    chosen: dict[str, Mark] = {}
    if marks:
        chosen[marks[0].note_id] = marks[0]
    wanted = set(words)
    bringing = [mark for mark in marks[1:] if wanted.intersection(mark.new_terms)]
    bringing.sort(key=lambda mark: -len(wanted.intersection(mark.new_terms)))
    for mark in bringing[: TIMELINE - 2]:
        chosen[mark.note_id] = mark
    if cluster.latest is not None and cluster.latest.note_id in cluster.members:
        chosen[cluster.latest.note_id] = cluster.latest
    ordered = sorted(chosen.values(), key=lambda mark: (mark.at_ms, mark.note_id))
    return tuple(TimelineEntry(_time(mark.at_ms), mark.note_id, mark.text) for mark in ordered)


def _time(at_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=at_ms)
