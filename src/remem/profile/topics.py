"""Topics of a person's notes (Second Me's "shades"), found from their vectors without a
model, and kept up to date incrementally.

A new note joins the topic whose centroid is most similar, if similar enough; otherwise it
waits as an outlier in a small group of like outliers, which becomes a topic once it holds
`min_size` notes. Topics whose centroids drift together merge (the larger, then older id
survives). Centroids are running sums, so an update costs (new notes x clusters). A rebuild
runs the same steps over all notes in time order, then refines them as spherical k-means
with a threshold (notes reassigned to their best centroid, or left out), which only a
rebuild can do since the state keeps no vector per note.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from remem.errors import InvalidInputError
from remem.profile import keywords
from remem.profile.topic_render import topics_of
from remem.profile.topic_state import (
    Cluster,
    Mark,
    TopicInput,
    TopicState,
    pruned_marks,
    remember,
    topic_id,
)
from remem.profile.topic_vectors import Chunk, Pool, refined

__all__ = [
    "DEFAULT",
    "TopicInput",
    "TopicParams",
    "TopicState",
    "rebuild_topics",
    "topics_of",
    "update_topics",
]


@dataclass(frozen=True)
class TopicParams:
    """How topics are found. Similarities are cosines of unit sentence embeddings."""

    # Chosen on LoCoMo with all-MiniLM-L6-v2 (benchmarks/bench_topics.py): lower values
    # make fewer, broader topics that cover more notes; higher ones purer, smaller topics.
    join: float = 0.6  # a note joins the best topic whose centroid is at least this close
    pair: float = 0.55  # an outlier joins a waiting group at least this close
    merge: float = 0.75  # topics whose centroids come this close become one
    min_size: int = 3  # notes a topic needs; fewer and they wait as outliers
    # groups of outliers kept with a centroid; past a quarter more, the least recent let go
    max_waiting: int = 500
    chunk: int = 64  # notes placed between two consolidations
    refine_rounds: int = 2  # rebuild only: reassign-all rounds

    def __post_init__(self) -> None:
        for name in ("join", "pair", "merge"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise InvalidInputError(f"topic parameter {name} is a cosine: -1..1")
        if self.min_size < 1 or self.chunk < 1 or self.max_waiting < 0 or self.refine_rounds < 0:
            raise InvalidInputError(
                "topic parameters: min_size and chunk must be >= 1, max_waiting and "
                "refine_rounds >= 0"
            )


DEFAULT = TopicParams()
MAX_TERMS_PER_CLUSTER = 200
MAX_TERMS_OVERALL = 50_000
MARK_TEXT = 160
MARK_TERMS = 8


def update_topics(
    state: TopicState | None,
    added: Sequence[TopicInput],
    removed: Collection[str],
    now: datetime,
    params: TopicParams = DEFAULT,
) -> TopicState:
    """The state with `added` notes placed and `removed` ids gone; `state` is left as it was.

    A note added again (same id) is moved. Removal by id cannot subtract a vector or words
    the state does not keep: the cluster's sum and counts shrink in proportion instead (a
    rebuild makes them exact)."""
    _check_time(now, "now")
    if isinstance(removed, str):
        raise InvalidInputError("removed must be a collection of note ids, not one string")
    return _updated(state, _checked(added), removed, params, {})


def _updated(
    state: TopicState | None,
    items: Sequence[TopicInput],
    removed: Collection[str],
    params: TopicParams,
    words: dict[str, frozenset[str]],
    *,
    sketch: bool = False,
) -> TopicState:
    """`update_topics` on checked items in time order; `words` caches each note's terms."""
    dims = _dims_of(state, items)
    work = state.fork() if state is not None else TopicState(dims)
    work.dims = dims
    moved = {item.note_id for item in items if item.note_id in work.notes}
    dissolved = _remove(work, set(removed) | moved, params)
    run = _Run(work, params, words, sketch=sketch)
    run.touched |= dissolved
    run.settle()
    for start in range(0, len(items), params.chunk):
        run.place(items[start : start + params.chunk])
        run.settle()
        run.let_go_of_old_outliers()
    keywords.prune(work.terms, MAX_TERMS_OVERALL)
    return work


def rebuild_topics(
    items: Sequence[TopicInput], now: datetime, params: TopicParams = DEFAULT
) -> TopicState:
    """Topics of all `items` from scratch, with the same parameters as `update_topics`."""
    _check_time(now, "now")
    ordered = _checked(items)
    words: dict[str, frozenset[str]] = {}
    first = _updated(None, ordered, (), params, words, sketch=True)
    if not ordered:
        return first
    live = [item for item in ordered if np.any(np.asarray(item.vector))]
    centroids = [cluster.centroid() for cluster in first.topics()]
    if not live or not centroids:
        return _updated(TopicState(first.dims), ordered, (), params, words)
    matrix = np.stack([_unit(item.vector) for item in live])
    labels = refined(
        matrix, centroids, params.join, params.merge, params.min_size, params.refine_rounds
    )
    work = TopicState(first.dims)
    run = _Run(work, params, words)
    groups: dict[int, list[int]] = {}
    for position, label in enumerate(labels):
        if label >= 0:
            groups.setdefault(int(label), []).append(position)
    for members in sorted(groups.values()):  # positions are in time order
        cluster = run.found(live[members[0]], matrix[members[0]], topic=True)
        for position in members[1:]:
            run.add_to(cluster.id, live[position], matrix[position])
    grouped = {live[position].note_id for members in groups.values() for position in members}
    outliers = [item for item in ordered if item.note_id not in grouped]
    return _updated(work, outliers, (), params, words)


# -- checks --------------------------------------------------------------------------------


def _check_time(value: datetime, name: str) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{name} must be an aware datetime (with a time zone)")


def _checked(items: Sequence[TopicInput]) -> list[TopicInput]:
    """The items in time order (then id), each checked; duplicates are an error."""
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, TopicInput):
            raise InvalidInputError("topics take TopicInput items")
        if not isinstance(item.note_id, str) or not 0 < len(item.note_id) <= 512:
            raise InvalidInputError("a topic input needs a note id of 1..512 characters")
        if item.note_id in seen:
            raise InvalidInputError(f"note {item.note_id!r} is given twice")
        seen.add(item.note_id)
        if not isinstance(item.text, str):
            raise InvalidInputError(f"note {item.note_id!r}: text must be a string")
        if item.session is not None and not (isinstance(item.session, str) and item.session):
            raise InvalidInputError(f"note {item.note_id!r}: session must be a string or None")
        if item.session is not None and len(item.session) > 512:
            raise InvalidInputError(f"note {item.note_id!r}: session id is too long")
        _check_time(item.occurred_at, f"note {item.note_id!r}: occurred_at")
        vector = np.asarray(item.vector)
        if vector.ndim != 1 or vector.size == 0 or not np.issubdtype(vector.dtype, np.number):
            raise InvalidInputError(f"note {item.note_id!r}: vector must be 1-d and numeric")
        if not np.all(np.isfinite(vector)):
            raise InvalidInputError(f"note {item.note_id!r}: vector has NaN or infinite values")
    return sorted(items, key=_order)


def _order(item: TopicInput) -> tuple[int, str]:
    return _ms(item.occurred_at), item.note_id


def _dims_of(state: TopicState | None, items: Sequence[TopicInput]) -> int | None:
    sizes = {int(np.asarray(item.vector).size) for item in items}
    known = state.dims if state is not None else None
    if known is not None:
        sizes.add(known)
    if len(sizes) > 1:
        raise InvalidInputError(
            f"vectors of different sizes {sorted(sizes)}: topics need one embedder's vectors "
            "(rebuild the topics after changing the embedder)"
        )
    return sizes.pop() if sizes else known


def _ms(moment: datetime) -> int:
    return math.floor(moment.timestamp() * 1000)


def _unit(vector: npt.ArrayLike) -> npt.NDArray[np.float32]:
    array = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(array))
    return (array / norm).astype(np.float32) if norm > 0 else array.astype(np.float32)


# -- removal -------------------------------------------------------------------------------


def _remove(work: TopicState, gone: set[str], params: TopicParams) -> set[str]:
    """Forget the notes; returns the topics they dissolved (now waiting groups)."""
    before = len(work.notes)
    touched: set[str] = set()
    for note_id in gone:
        slot = work.notes.pop(note_id, None)
        if slot is None or slot[0] is None:
            continue
        cluster = work.edit(slot[0])
        _shrink(cluster, note_id)
        touched.add(cluster.id)
    left = len(work.notes)
    if left < before:
        share = left / before
        for term in list(work.terms):
            work.terms[term] *= share
    dissolved = set()
    for cluster_id in touched:
        cluster = work.clusters[cluster_id]
        if not cluster.members:
            del work.clusters[cluster_id]
        elif cluster.topic and len(cluster.members) < params.min_size:
            cluster.topic = False  # dissolved: its notes wait as outliers again
            dissolved.add(cluster_id)
    return dissolved


def _shrink(cluster: Cluster, note_id: str) -> None:
    """One member fewer: the sum and term counts shrink in proportion (no vector is kept)."""
    size = len(cluster.members)
    share = (size - 1) / size if size else 0.0
    cluster.total *= share
    for term in list(cluster.terms):
        cluster.terms[term] *= share
    cluster.members.discard(note_id)
    cluster.marks = [mark for mark in cluster.marks if mark.note_id != note_id]
    if cluster.latest is not None and cluster.latest.note_id == note_id:
        cluster.latest = max(cluster.marks, key=lambda mark: mark.at_ms, default=None)


def _last_ms(cluster: Cluster) -> int:
    if cluster.latest is not None:
        return cluster.latest.at_ms
    return max((mark.at_ms for mark in cluster.marks), default=0)


# -- placing notes -------------------------------------------------------------------------


class _Run:
    """One update: places notes, then consolidates the clusters it touched."""

    def __init__(
        self,
        work: TopicState,
        params: TopicParams,
        words: dict[str, frozenset[str]],
        *,
        sketch: bool = False,
    ) -> None:
        self.work = work
        self.params = params
        self.words = words
        # a sketch only groups vectors (a rebuild's first pass): no words, marks or real ids
        self.sketch = sketch
        dims = work.dims or 1
        self.topics = Pool(dims)
        self.waiting = Pool(dims)
        self.topics.fill([c for c in work.clusters.values() if c.topic])
        self.waiting.fill([c for c in work.clusters.values() if not c.topic])
        self.touched: set[str] = set()
        self.founded: set[str] = set()  # waiting groups begun by this chunk's notes

    def place(self, items: Sequence[TopicInput]) -> None:
        if not items:
            return
        matrix = np.stack([_unit(item.vector) for item in items])
        nearest: list[str | None] = [None] * len(items)
        if len(self.topics):
            sims = self.topics.similarities(matrix)
            rows = sims.argmax(axis=1)
            for index, row in enumerate(rows):
                if sims[index, row] >= self.params.join:
                    nearest[index] = self.topics.ids[int(row)]
        waiting = Chunk(self.waiting, matrix)
        for index, item in enumerate(items):
            topic_id = nearest[index]
            if topic_id is not None:
                self.add_to(topic_id, item, matrix[index])
            elif np.any(matrix[index]):
                self._wait(item, waiting, index)
            else:  # no direction (an empty text): an outlier with nothing to match
                self.work.notes[item.note_id] = (None, _ms(item.occurred_at), self._session(item))
        for cluster_id in self.touched:
            if cluster_id in self.work.clusters and self.work.clusters[cluster_id].topic:
                self.topics.put(self.work.clusters[cluster_id])

    def _wait(self, item: TopicInput, chunk: Chunk, index: int) -> None:
        group, similarity = chunk.best(index)
        if similarity >= self.params.pair:
            self.add_to(group, item, chunk.matrix[index])
        else:
            group = self.found(item, chunk.matrix[index], topic=False).id
            self.founded.add(group)
        self.waiting.put(self.work.clusters[group])
        chunk.changed(group)

    def _session(self, item: TopicInput) -> int:
        return self.work.session_of(item.session)

    def found(self, item: TopicInput, vector: npt.NDArray[np.float32], *, topic: bool) -> Cluster:
        """A new cluster of one note, its id taken from that note (so a rebuild that finds
        the same topic gives it the same id)."""
        if self.sketch:
            cluster_id = f"sketch_{len(self.work.notes):012d}"  # in order of creation
        else:
            cluster_id = topic_id(item.note_id, _ms(item.occurred_at), self.work.clusters)
        dims = self.work.dims or 1
        cluster = Cluster(cluster_id, topic, np.zeros(dims, dtype=np.float64))
        self.work.add_cluster(cluster)
        self.add_to(cluster_id, item, vector)
        return cluster

    def add_to(self, cluster_id: str, item: TopicInput, vector: npt.NDArray[np.float32]) -> None:
        """Place a note (`vector`: its unit vector) in a cluster."""
        cluster = self.work.edit(cluster_id)
        at_ms = _ms(item.occurred_at)
        self.work.notes[item.note_id] = (cluster_id, at_ms, self._session(item))
        cluster.total += vector
        cluster.members.add(item.note_id)
        self.touched.add(cluster_id)
        if self.sketch:
            return
        terms = self.words.get(item.note_id)
        if terms is None:
            terms = self.words[item.note_id] = keywords.note_terms(item.text)
        fresh = sorted((t for t in terms if t not in cluster.terms), key=lambda t: (-len(t), t))
        for term in terms:
            cluster.terms[term] = cluster.terms.get(term, 0.0) + 1.0
            self.work.terms[term] = self.work.terms.get(term, 0.0) + 1.0
        keywords.prune(cluster.terms, MAX_TERMS_PER_CLUSTER)
        mark = Mark(item.note_id, at_ms, keywords.shortened(item.text, MARK_TEXT), ())
        remember(cluster, mark, tuple(fresh[:MARK_TERMS]))

    def let_go_of_old_outliers(self) -> None:
        """Past `max_waiting` groups of outliers, the least recent lose their centroid: their
        notes stay placed as outliers, and only a rebuild looks at them again."""
        if len(self.waiting) <= self.params.max_waiting * 5 // 4:
            return  # in steps of a quarter, not a sort on every call
        waiting = [self.work.clusters[cluster_id] for cluster_id in self.waiting.ids]
        waiting.sort(key=lambda cluster: (_last_ms(cluster), cluster.id))
        for cluster in waiting[: len(waiting) - self.params.max_waiting]:
            for note_id in cluster.members:
                _, at_ms, session = self.work.notes[note_id]
                self.work.notes[note_id] = (None, at_ms, session)
            del self.work.clusters[cluster.id]
            self.waiting.drop(cluster.id)
            self.touched.discard(cluster.id)

    def settle(self) -> None:
        """Waiting groups near a topic join it, big enough ones become topics, and topics
        that came close merge."""
        for cluster_id in sorted(self.touched):
            cluster = self.work.clusters.get(cluster_id)
            if cluster is None or cluster.topic:
                continue
            alone = cluster_id in self.founded and len(cluster.members) == 1
            if alone and self.params.min_size > 1:
                continue  # its one note was just compared with every group and topic
            self._settle_waiting(cluster)
        for cluster_id in sorted(self.touched):
            cluster = self.work.clusters.get(cluster_id)
            if cluster is not None and cluster.topic:
                self._merge_close(cluster)
        self.touched.clear()
        self.founded.clear()

    def _settle_waiting(self, cluster: Cluster) -> None:
        centroid = cluster.centroid()
        topic_id, similarity = self.topics.best(centroid)
        if similarity >= self.params.join:
            self._merge(cluster.id, topic_id)
            return
        other, closeness = self.waiting.best(centroid, skip=cluster.id)
        if closeness >= self.params.pair:
            cluster = self.work.clusters[self._merge(cluster.id, other)]
        if len(cluster.members) >= self.params.min_size:
            self.work.edit(cluster.id).topic = True
            self.waiting.drop(cluster.id)
            self.topics.put(self.work.clusters[cluster.id])

    def _merge_close(self, cluster: Cluster) -> None:
        while cluster.id in self.work.clusters:
            other, similarity = self.topics.best(cluster.centroid(), skip=cluster.id)
            if similarity < self.params.merge:
                return
            cluster = self.work.clusters[self._merge(cluster.id, other)]

    def _merge(self, one: str, other: str) -> str:
        """Merge two clusters; the larger survives (the older id among equals), and is a
        topic if either was. Returns the survivor's id."""
        first, second = self.work.clusters[one], self.work.clusters[other]
        keep, gone = sorted((first, second), key=lambda c: (-len(c.members), c.id))
        survivor = self.work.edit(keep.id)
        survivor.topic = first.topic or second.topic
        survivor.total = survivor.total + gone.total
        survivor.members |= gone.members
        for note_id in gone.members:
            _, at_ms, session = self.work.notes[note_id]
            self.work.notes[note_id] = (survivor.id, at_ms, session)
        for term, count in gone.terms.items():
            survivor.terms[term] = survivor.terms.get(term, 0.0) + count
        keywords.prune(survivor.terms, MAX_TERMS_PER_CLUSTER)
        survivor.marks = pruned_marks(survivor, [*survivor.marks, *gone.marks])
        latest = [mark for mark in (survivor.latest, gone.latest) if mark is not None]
        survivor.latest = max(latest, key=lambda mark: mark.at_ms, default=None)
        del self.work.clusters[gone.id]
        for pool in (self.topics, self.waiting):
            pool.drop(gone.id)
            pool.drop(survivor.id)
        (self.topics if survivor.topic else self.waiting).put(survivor)
        self.touched.add(survivor.id)
        return survivor.id
