"""What topic clustering remembers between updates, and its saved (JSON) form.

Per note only its cluster, time and session are kept; per cluster a running sum of its
vectors (saved as the mean in float16), bounded term counts and a few timeline candidates.
Notes that wait as outliers sit in small clusters too ("waiting" ones, not topics yet), so
they can gather into a topic later without their vectors being kept one by one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from remem.errors import InvalidInputError

__all__ = [
    "Cluster",
    "Mark",
    "Slot",
    "TopicInput",
    "TopicState",
    "pruned_marks",
    "remember",
    "topic_id",
]

FORMAT = "remem.topics"
VERSION = 1
MAX_DIMS = 65_536
MAX_ID = 512  # characters of a note, session or topic id
MAX_TEXT = 400  # characters of a timeline text as saved
MAX_TERM = 64
MAX_COUNT = 1e12
# 1 Jan of year 1 .. 31 Dec 9999 in milliseconds since 1970 (what datetime can hold)
MIN_MS = -62_135_596_800_000
MAX_MS = 253_402_300_799_999

Vector = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True)
class TopicInput:
    """One live note as the clusterer sees it (vector: unit norm, the memory's embedder)."""

    note_id: str
    vector: npt.NDArray[np.float32]
    text: str
    occurred_at: datetime  # aware
    session: str | None = None


@dataclass(frozen=True)
class Mark:
    """A note that may stand in a topic's timeline: the first, one bringing new words, the
    latest. `new_terms` are the words it brought to its topic."""

    note_id: str
    at_ms: int
    text: str
    new_terms: tuple[str, ...] = ()


# a placed note: (cluster id, or None for an old outlier whose vector was let go;
# occurred_at in ms since 1970; session index, -1 for none)
Slot = tuple[str | None, int, int]


@dataclass(eq=False)
class Cluster:
    """A group of notes: a topic, or outliers waiting to become one."""

    id: str
    topic: bool
    total: npt.NDArray[np.float64]  # running sum of the members' unit vectors
    members: set[str] = field(default_factory=set)
    terms: dict[str, float] = field(default_factory=dict)
    marks: list[Mark] = field(default_factory=list)
    latest: Mark | None = None

    def copy(self) -> Cluster:
        return Cluster(
            self.id,
            self.topic,
            self.total.copy(),
            set(self.members),
            dict(self.terms),
            list(self.marks),
            self.latest,
        )

    def centroid(self) -> npt.NDArray[np.float32]:
        """The unit direction of the members (zero when they cancel out)."""
        norm = float(np.linalg.norm(self.total))
        if norm == 0.0 or not math.isfinite(norm):
            return np.zeros(self.total.shape, dtype=np.float32)
        return (self.total / norm).astype(np.float32)


class TopicState:
    """Everything needed to continue clustering a person's notes incrementally.

    An update works on a `fork`: dictionaries are copied, clusters only when first changed
    (`edit`), so an update costs what it touches and the state given to it stays as it was.
    """

    def __init__(
        self,
        dims: int | None,
        notes: dict[str, Slot] | None = None,
        clusters: dict[str, Cluster] | None = None,
        sessions: list[str] | None = None,
        terms: dict[str, float] | None = None,
    ) -> None:
        self.dims = dims
        self.notes: dict[str, Slot] = notes if notes is not None else {}
        self.clusters: dict[str, Cluster] = clusters if clusters is not None else {}
        self.sessions: list[str] = sessions if sessions is not None else []
        self.session_index = {session: index for index, session in enumerate(self.sessions)}
        self.terms: dict[str, float] = terms if terms is not None else {}
        self._owned: set[str] = set(self.clusters)

    @property
    def note_ids(self) -> frozenset[str]:
        """Every note placed: in a topic, or waiting as an outlier."""
        return frozenset(self.notes)

    def topics(self) -> Iterator[Cluster]:
        return (cluster for cluster in self.clusters.values() if cluster.topic)

    def fork(self) -> TopicState:
        """A copy to change; clusters are shared until `edit` copies them."""
        fork = TopicState(
            self.dims, dict(self.notes), dict(self.clusters), list(self.sessions), dict(self.terms)
        )
        fork._owned = set()
        return fork

    def edit(self, cluster_id: str) -> Cluster:
        """The cluster, made safe to change in this state."""
        if cluster_id not in self._owned:
            self.clusters[cluster_id] = self.clusters[cluster_id].copy()
            self._owned.add(cluster_id)
        return self.clusters[cluster_id]

    def add_cluster(self, cluster: Cluster) -> None:
        self.clusters[cluster.id] = cluster
        self._owned.add(cluster.id)

    def session_of(self, session: str | None) -> int:
        if session is None:
            return -1
        if session not in self.session_index:
            self.session_index[session] = len(self.sessions)
            self.sessions.append(session)
        return self.session_index[session]

    def to_json(self) -> dict[str, Any]:
        """The state as a JSON-compatible document (vectors as base64 float16 means)."""
        order = sorted(self.clusters)
        index = {cluster_id: position for position, cluster_id in enumerate(order)}
        note_ids = sorted(self.notes)
        slots = [self.notes[note_id] for note_id in note_ids]
        return {
            "format": FORMAT,
            "version": VERSION,
            "dims": self.dims,
            "sessions": list(self.sessions),
            "terms": _rounded(self.terms),
            "clusters": [_cluster_json(self.clusters[cluster_id]) for cluster_id in order],
            "notes": {
                "ids": note_ids,
                "cluster": [-1 if slot[0] is None else index[slot[0]] for slot in slots],
                "at": [slot[1] for slot in slots],
                "session": [slot[2] for slot in slots],
            },
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> TopicState:
        """A state from `to_json`; InvalidInputError (a ValueError) when the document is
        malformed, foreign or out of range."""
        if not isinstance(doc, Mapping):
            raise InvalidInputError("a topic state must be a JSON object")
        if doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise InvalidInputError(f"not a {FORMAT} document of version {VERSION}")
        dims = doc.get("dims")
        if dims is not None:
            dims = _integer(dims, "dims", 1, MAX_DIMS)
        raw_sessions = _list(doc.get("sessions"), "sessions")
        sessions = [_text(item, "session", MAX_ID) for item in raw_sessions]
        if len(set(sessions)) != len(sessions):
            raise InvalidInputError("topic state: sessions repeat")
        terms = _term_counts(doc.get("terms"), "terms")
        raw_clusters = _list(doc.get("clusters"), "clusters")
        if raw_clusters and dims is None:
            raise InvalidInputError("topic state: clusters without dims")
        clusters = [_cluster(item, dims or 0) for item in raw_clusters]
        by_id = {cluster.id: cluster for cluster in clusters}
        if len(by_id) != len(clusters):
            raise InvalidInputError("topic state: cluster ids repeat")
        notes = _notes(doc.get("notes"), clusters, len(sessions))
        return cls(dims, notes, by_id, sessions, terms)


# -- the saved form ------------------------------------------------------------------------


def _cluster_json(cluster: Cluster) -> dict[str, Any]:
    size = max(len(cluster.members), 1)
    mean = (cluster.total / size).astype("<f2")
    return {
        "id": cluster.id,
        "topic": cluster.topic,
        "mean": base64.b64encode(mean.tobytes()).decode("ascii"),
        "terms": _rounded(cluster.terms),
        "marks": [_mark_json(mark) for mark in cluster.marks],
        "latest": _latest_json(cluster),
    }


def _latest_json(cluster: Cluster) -> Any:
    """The latest note, or only its id when it is among the marks (it often is)."""
    latest = cluster.latest
    if latest is None:
        return None
    return latest.note_id if latest in cluster.marks else _mark_json(latest)


def _mark_json(mark: Mark) -> list[Any]:
    return [mark.note_id, mark.at_ms, mark.text, list(mark.new_terms)]


def _rounded(counts: Mapping[str, float]) -> dict[str, float]:
    """Counts to 3 decimals, whole ones written as integers (most are)."""
    return {term: _number(count) for term, count in sorted(counts.items())}


def _number(count: float) -> float:
    rounded = round(count, 3)
    return int(rounded) if rounded.is_integer() else rounded


def _cluster(raw: Any, dims: int) -> Cluster:
    if not isinstance(raw, Mapping):
        raise InvalidInputError("topic state: a cluster must be an object")
    topic = raw.get("topic")
    if not isinstance(topic, bool):
        raise InvalidInputError("topic state: cluster.topic must be true or false")
    marks = [_mark(item) for item in _list(raw.get("marks"), "cluster.marks")]
    latest = _latest(raw.get("latest"), marks)
    return Cluster(
        id=_text(raw.get("id"), "cluster.id", MAX_ID),
        topic=topic,
        total=_mean(raw.get("mean"), dims),  # scaled by the size once members are known
        terms=_term_counts(raw.get("terms"), "cluster.terms"),
        marks=marks,
        latest=latest,
    )


def _latest(raw: Any, marks: list[Mark]) -> Mark | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        found = [mark for mark in marks if mark.note_id == raw]
        if not found:
            raise InvalidInputError("topic state: cluster.latest names no mark")
        return found[0]
    return _mark(raw)


def _mean(raw: Any, dims: int) -> npt.NDArray[np.float64]:
    if not isinstance(raw, str) or len(raw) > 4 * MAX_DIMS:
        raise InvalidInputError("topic state: cluster.mean must be a base64 string")
    try:
        data = base64.b64decode(raw.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise InvalidInputError("topic state: cluster.mean is not base64") from error
    if len(data) != 2 * dims:
        raise InvalidInputError(f"topic state: cluster.mean does not have {dims} dimensions")
    mean = np.frombuffer(data, dtype="<f2").astype(np.float64)
    if not np.all(np.isfinite(mean)):
        raise InvalidInputError("topic state: cluster.mean has NaN or infinite values")
    return mean


def _mark(raw: Any) -> Mark:
    if not isinstance(raw, list) or len(raw) != 4:
        raise InvalidInputError("topic state: a timeline mark must be [id, at, text, terms]")
    note_id, at_ms, text, new_terms = raw
    return Mark(
        _text(note_id, "mark id", MAX_ID),
        _integer(at_ms, "mark time", MIN_MS, MAX_MS),
        _text(text, "mark text", MAX_TEXT, empty=True),
        tuple(_text(term, "mark term", MAX_TERM) for term in _list(new_terms, "mark terms")),
    )


def _notes(raw: Any, clusters: Sequence[Cluster], sessions: int) -> dict[str, Slot]:
    if not isinstance(raw, Mapping):
        raise InvalidInputError("topic state: notes must be an object")
    ids = [_text(item, "note id", MAX_ID) for item in _list(raw.get("ids"), "notes.ids")]
    last = len(clusters) - 1
    where = [_integer(i, "note cluster", -1, last) for i in _list(raw.get("cluster"), "cluster")]
    at = [_integer(ms, "note time", MIN_MS, MAX_MS) for ms in _list(raw.get("at"), "notes.at")]
    session_list = _list(raw.get("session"), "notes.session")
    in_session = [_integer(s, "note session", -1, sessions - 1) for s in session_list]
    if not len(ids) == len(where) == len(at) == len(in_session):
        raise InvalidInputError("topic state: notes arrays differ in length")
    if len(set(ids)) != len(ids):
        raise InvalidInputError("topic state: note ids repeat")
    notes: dict[str, Slot] = {}
    for note_id, position, ms, session in zip(ids, where, at, in_session, strict=True):
        cluster = clusters[position] if position >= 0 else None
        if cluster is not None:
            cluster.members.add(note_id)
        notes[note_id] = (cluster.id if cluster else None, ms, session)
    for cluster in clusters:
        if not cluster.members:
            raise InvalidInputError(f"topic state: cluster {cluster.id} has no notes")
        cluster.total *= len(cluster.members)
    return notes


def _list(raw: Any, name: str) -> list[Any]:
    if not isinstance(raw, list):
        raise InvalidInputError(f"topic state: {name} must be a list")
    return raw


def _text(raw: Any, name: str, limit: int, *, empty: bool = False) -> str:
    if not isinstance(raw, str) or len(raw) > limit or (not raw and not empty):
        raise InvalidInputError(f"topic state: {name} must be a string of 1..{limit} characters")
    return raw


def _integer(raw: Any, name: str, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise InvalidInputError(f"topic state: {name} must be an integer in {low}..{high}")
    return raw


def _term_counts(raw: Any, name: str) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"topic state: {name} must be an object")
    counts: dict[str, float] = {}
    for term, count in raw.items():
        if not isinstance(term, str) or not 0 < len(term) <= MAX_TERM:
            raise InvalidInputError(f"topic state: a key of {name} is not a word")
        if isinstance(count, bool) or not isinstance(count, int | float):
            raise InvalidInputError(f"topic state: {name} counts must be numbers")
        if not (math.isfinite(count) and 0 <= count <= MAX_COUNT):
            raise InvalidInputError(f"topic state: {name} counts must be in 0..{MAX_COUNT:g}")
        counts[term] = float(count)
    return counts


# -- what clusters hold ----------------------------------------------------------------------

MAX_MARKS = 8
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_SHIFTS = range(125, -1, -5)  # 26 base-32 digits of a 128-bit number, most significant first


def topic_id(note_id: str, at_ms: int, taken: Collection[str]) -> str:
    """ "tp_" + 26 Crockford base32 characters, as remem.ids: the note's time in ms, then
    bits of a hash of its id."""
    when = min(max(at_ms, 0), (1 << 48) - 1)
    salt = 0
    while True:
        digest = hashlib.sha256(f"{note_id}#{salt}".encode()).digest()
        value = when << 80 | int.from_bytes(digest[:10], "big")
        topic_id = "tp_" + "".join(_CROCKFORD[value >> shift & 31] for shift in _SHIFTS)
        if topic_id not in taken:
            return topic_id
        salt += 1


def remember(cluster: Cluster, mark: Mark, fresh: tuple[str, ...]) -> None:
    """Keep the note as a timeline candidate when it is the earliest or brings new words."""
    earliest = min((m.at_ms for m in cluster.marks), default=None)
    if earliest is None or mark.at_ms < earliest or fresh:
        candidate = Mark(mark.note_id, mark.at_ms, mark.text, fresh)
        cluster.marks = pruned_marks(cluster, [*cluster.marks, candidate])
    if cluster.latest is None or mark.at_ms >= cluster.latest.at_ms:
        cluster.latest = mark


def pruned_marks(cluster: Cluster, marks: list[Mark]) -> list[Mark]:
    """At most MAX_MARKS: the earliest stays; then those whose words the topic kept using."""
    if len(marks) <= MAX_MARKS:
        return sorted(marks, key=lambda m: (m.at_ms, m.note_id))
    ordered = sorted(marks, key=lambda m: (m.at_ms, m.note_id))
    first, rest = ordered[0], ordered[1:]

    def weight(mark: Mark) -> float:
        return sum(cluster.terms.get(term, 0.0) for term in mark.new_terms)

    rest.sort(key=lambda m: (-weight(m), m.at_ms, m.note_id))
    return sorted([first, *rest[: MAX_MARKS - 1]], key=lambda m: (m.at_ms, m.note_id))
