"""Topics: found from vectors without a model, kept incrementally, saved and loaded; and
named by a (scripted) model with every sentence citing the topic's notes."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remem.errors import InvalidInputError, LLMError
from remem.llms import OpenAICompatibleLLM
from remem.profile.keywords import distinctive, note_terms
from remem.profile.topic_names import name_topics
from remem.profile.topic_render import confidence
from remem.profile.topics import (
    TopicInput,
    TopicParams,
    TopicState,
    rebuild_topics,
    topics_of,
    update_topics,
)
from remem.testing import ScriptedOpenAIServer
from remem.types import Note, Scope, Topic

DIMS = 384
START = datetime(2024, 1, 1, tzinfo=UTC)
NOW = datetime(2024, 6, 1, tzinfo=UTC)
WORDS = {
    "pottery": ["pottery", "clay", "kiln", "glaze", "wheel"],
    "running": ["running", "marathon", "sneakers", "pace", "trail"],
    "adoption": ["adoption", "agency", "paperwork", "orphanage", "caseworker"],
    "guitar": ["guitar", "chords", "concert", "amplifier", "strings"],
}


class Person:
    """A synthetic memory: a few well-separated directions, notes near them, topic words."""

    def __init__(self, dims: int = DIMS, seed: int = 1) -> None:
        self.rng = np.random.default_rng(seed)
        self.dims = dims
        self.directions = {name: self._unit(self.rng.normal(size=dims)) for name in WORDS}
        self.count = 0

    def _unit(self, vector: np.ndarray) -> np.ndarray:
        return (vector / np.linalg.norm(vector)).astype(np.float32)

    def near(self, direction: np.ndarray, noise: float = 0.5) -> np.ndarray:
        return self._unit(
            direction + noise * self.rng.normal(size=self.dims) / math.sqrt(self.dims)
        )

    def note(
        self,
        subject: str,
        *,
        text: str | None = None,
        vector: np.ndarray | None = None,
        session: str | None = None,
        at: datetime | None = None,
    ) -> TopicInput:
        self.count += 1
        if text is None:
            picked = self.rng.choice(WORDS[subject], 2, replace=False) if subject in WORDS else []
            text = f"Today the weather was fine and I talked about {' and '.join(picked)}."
        if vector is None:
            vector = self.near(self.directions[subject])
        return TopicInput(
            note_id=f"nt_{self.count:05d}",
            vector=vector,
            text=text,
            occurred_at=at or START + timedelta(hours=self.count),
            session=session if session is not None else f"s{self.count // 7}",
        )

    def notes(self, subject: str, count: int, **extra: Any) -> list[TopicInput]:
        return [self.note(subject, **extra) for _ in range(count)]

    def outlier(self, text: str = "A stray thought about nothing in particular.") -> TopicInput:
        return self.note("", text=text, vector=self._unit(self.rng.normal(size=self.dims)))


def interleaved(person: Person, per_subject: int) -> list[TopicInput]:
    batches = {name: person.notes(name, per_subject) for name in WORDS}
    return [batch[i] for i in range(per_subject) for batch in batches.values()]


def topic_with(topics: list[Topic], note_id: str) -> Topic:
    return next(topic for topic in topics if note_id in topic.note_ids)


def groups(topics: list[Topic]) -> set[frozenset[str]]:
    return {frozenset(topic.note_ids) for topic in topics}


def by_subject(items: list[TopicInput], person: Person) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for item in items:
        sims = {name: float(item.vector @ d) for name, d in person.directions.items()}
        found.setdefault(max(sims, key=lambda name: sims[name]), set()).add(item.note_id)
    return found


# -- finding topics ------------------------------------------------------------------------


@pytest.mark.parametrize("build", ["rebuild", "incremental"])
def test_topics_are_found_without_being_told_how_many(build: str) -> None:
    person = Person()
    items = interleaved(person, 12)
    if build == "rebuild":
        state = rebuild_topics(items, NOW)
    else:
        state = None
        for start in range(0, len(items), 5):
            state = update_topics(state, items[start : start + 5], (), NOW)
        assert state is not None
    topics = topics_of(state, NOW)
    assert groups(topics) == {frozenset(ids) for ids in by_subject(items, person).values()}
    for topic in topics:
        subject = next(name for name, words in WORDS.items() if topic.keywords[0] in words)
        assert set(topic.keywords) <= set(WORDS[subject])
        assert topic.label.split(", ")[0] == topic.keywords[0]
        assert topic.id.startswith("tp_") and len(topic.id) == 29


def test_outliers_are_left_out_but_placed() -> None:
    person = Person()
    items = interleaved(person, 6)
    strays = [person.outlier() for _ in range(8)]
    state = rebuild_topics(items + strays, NOW)
    in_topics = {note_id for topic in topics_of(state, NOW) for note_id in topic.note_ids}
    assert in_topics == {item.note_id for item in items}
    assert state.note_ids == {item.note_id for item in items + strays}


def test_new_notes_join_the_right_topic_and_ids_stay() -> None:
    person = Person()
    state = update_topics(None, interleaved(person, 5), (), NOW)
    before = {topic.id: set(topic.note_ids) for topic in topics_of(state, NOW)}
    new = person.notes("running", 3) + person.notes("guitar", 2)
    after = topics_of(update_topics(state, new, (), NOW), NOW)
    assert {topic.id for topic in after} == set(before)
    running = topic_with(after, new[0].note_id)
    assert set(running.note_ids) == before[running.id] | {n.note_id for n in new[:3]}
    guitar = topic_with(after, new[3].note_id)
    assert set(guitar.note_ids) == before[guitar.id] | {n.note_id for n in new[3:]}


def test_the_state_given_to_an_update_is_left_as_it_was() -> None:
    person = Person()
    state = update_topics(None, interleaved(person, 4), (), NOW)
    saved = json.dumps(state.to_json(), sort_keys=True)
    update_topics(state, person.notes("pottery", 4), [state.notes and next(iter(state.notes))], NOW)
    assert json.dumps(state.to_json(), sort_keys=True) == saved


def test_outliers_become_a_topic_once_enough_gather() -> None:
    person = Person()
    state = update_topics(None, interleaved(person, 4), (), NOW)
    fresh = person._unit(person.rng.normal(size=DIMS))
    first = [
        person.note("", text="chess opening gambit", vector=person.near(fresh)) for _ in range(2)
    ]
    state = update_topics(state, first, (), NOW)
    assert len(topics_of(state, NOW)) == 4
    assert {n.note_id for n in first} <= state.note_ids
    third = person.note("", text="chess endgame gambit", vector=person.near(fresh))
    state = update_topics(state, [third], (), NOW)
    topics = topics_of(state, NOW)
    assert len(topics) == 5
    chess = topic_with(topics, third.note_id)
    assert set(chess.note_ids) == {n.note_id for n in [*first, third]}
    assert "chess" in chess.keywords and "gambit" in chess.keywords


def test_removed_notes_shrink_and_then_dissolve_a_topic() -> None:
    person = Person()
    running = person.notes("running", 5)
    state = update_topics(None, running + person.notes("pottery", 5), (), NOW)
    topic = topic_with(topics_of(state, NOW), running[0].note_id)
    state = update_topics(state, (), {running[0].note_id, running[1].note_id, "nt_unknown"}, NOW)
    shrunk = topic_with(topics_of(state, NOW), running[2].note_id)
    assert shrunk.id == topic.id and shrunk.size == 3
    assert running[0].note_id not in state.note_ids
    assert all(entry.note_id in shrunk.note_ids for entry in shrunk.timeline)
    state = update_topics(state, (), {running[2].note_id}, NOW)
    assert all(running[3].note_id not in t.note_ids for t in topics_of(state, NOW))
    assert {running[3].note_id, running[4].note_id} <= state.note_ids  # waiting as outliers
    state = update_topics(state, person.notes("running", 1), (), NOW)
    back = topic_with(topics_of(state, NOW), running[3].note_id)
    assert back.id == topic.id and back.size == 3


def test_removing_every_note_leaves_an_empty_state() -> None:
    person = Person()
    items = [*interleaved(person, 3), person.outlier()]
    state = update_topics(rebuild_topics(items, NOW), (), {i.note_id for i in items}, NOW)
    assert state.note_ids == frozenset() and topics_of(state, NOW) == []
    assert state.clusters == {}


def test_topics_that_drift_together_merge_and_the_larger_keeps_its_id() -> None:
    person = Person()
    params = TopicParams(join=0.85, pair=0.85, merge=0.7)
    a, b = person.directions["pottery"], person.directions["running"]

    def at(degrees: float) -> np.ndarray:  # a direction between "pottery" (0) and "running" (90)
        angle = math.radians(degrees)
        return person.near(person._unit(math.cos(angle) * a + math.sin(angle) * b), 0.05)

    big = [person.note("pottery", vector=at(0)) for _ in range(8)]
    small = [person.note("running", vector=at(60)) for _ in range(5)]  # cosine 0.5 apart
    state = update_topics(None, big + small, (), NOW, params)
    first = topics_of(state, NOW)
    assert len(first) == 2
    big_id = topic_with(first, big[0].note_id).id
    for _ in range(20):  # notes near the larger topic drag it towards the smaller one
        state = update_topics(state, [person.note("pottery", vector=at(25))], (), NOW, params)
        assert len(topics_of(state, NOW)) in (1, 2)
    topics = topics_of(state, NOW)
    assert len(topics) == 1
    assert topics[0].id == big_id and topics[0].size == 8 + 5 + 20


def test_a_note_added_again_is_moved() -> None:
    person = Person()
    items = interleaved(person, 4)
    state = rebuild_topics(items, NOW)
    moved = TopicInput(
        items[0].note_id, person.near(person.directions["guitar"]), "guitar chords", NOW
    )
    state = update_topics(state, [moved], (), NOW)
    guitar = topic_with(topics_of(state, NOW), items[3].note_id)
    assert moved.note_id in guitar.note_ids and len(state.note_ids) == len(items)


def test_rebuild_and_incremental_agree_on_clear_data_and_share_ids() -> None:
    person = Person()
    items = interleaved(person, 10)
    incremental = None
    for item in items:
        incremental = update_topics(incremental, [item], (), NOW)
    assert incremental is not None
    rebuilt = topics_of(rebuild_topics(items, NOW), NOW)
    assert {(t.id, t.note_ids) for t in topics_of(incremental, NOW)} == {
        (t.id, t.note_ids) for t in rebuilt
    }


def test_old_outliers_let_go_of_their_vectors_but_stay_placed() -> None:
    person = Person()
    params = TopicParams(max_waiting=5)
    strays = [person.outlier() for _ in range(30)]
    state = update_topics(None, strays, (), NOW, params)
    assert len(state.clusters) == 5 and state.note_ids == {s.note_id for s in strays}
    kept = {next(iter(c.members)) for c in state.clusters.values()}
    assert kept == {s.note_id for s in strays[-5:]}  # the most recent wait on
    state = update_topics(state, (), {strays[0].note_id}, NOW, params)
    assert strays[0].note_id not in state.note_ids


# -- words, timeline, confidence -----------------------------------------------------------


def test_keywords_are_distinctive_not_common() -> None:
    person = Person()
    state = rebuild_topics(interleaved(person, 10), NOW)
    for topic in topics_of(state, NOW):
        assert "weather" not in topic.keywords and "talked" not in topic.keywords
        assert len(topic.keywords) >= 3


def test_distinctive_words_against_the_rest() -> None:
    inside = {"kiln": 5.0, "weather": 5.0, "clay": 3.0, "rare": 1.0}
    everywhere = {"kiln": 5.0, "weather": 50.0, "clay": 3.0, "rare": 1.0, "other": 40.0}
    assert distinctive(inside, everywhere) == ["kiln", "clay"]
    assert distinctive({}, everywhere) == []
    assert distinctive({"dogs": 4.0, "dog": 4.0}, {"dogs": 4.0, "dog": 4.0, "x": 90.0}) == ["dog"]


def test_note_terms_handle_odd_texts() -> None:
    assert note_terms("") == frozenset()
    assert note_terms("I'm so 😀😀 happy!!! 2024-05-01 🎉") == {"happy"}
    assert note_terms("It\u2019s Caroline\u2019s pottery") == {"caroline", "pottery"}
    assert note_terms("the and of it was") == frozenset()
    assert len(note_terms(" ".join(f"w{chr(97 + i % 26)}{i:x}xx" for i in range(10_000)))) <= 64


def test_the_timeline_is_dated_ordered_and_marks_changes() -> None:
    person = Person()
    early = person.notes("guitar", 4, text="guitar chords practice")
    late = person.notes("guitar", 4, text="guitar concert amplifier tour")
    noise = interleaved(person, 4)
    state = rebuild_topics(early + late + noise, NOW)
    topic = topic_with(topics_of(state, NOW), early[0].note_id)
    times = [entry.occurred_at for entry in topic.timeline]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    assert topic.timeline[0].note_id == early[0].note_id
    assert topic.timeline[0].occurred_at == early[0].occurred_at
    assert topic.timeline[-1].note_id == topic.note_ids[-1]
    assert late[0].note_id in {entry.note_id for entry in topic.timeline}  # brought "concert"
    assert 2 <= len(topic.timeline) <= 6
    assert topic.first_at == early[0].occurred_at and topic.last_at == times[-1]


def test_confidence_grows_with_evidence_and_fades_with_age() -> None:
    assert confidence(3, 1, NOW, NOW) < confidence(10, 1, NOW, NOW) < confidence(30, 1, NOW, NOW)
    assert confidence(10, 1, NOW, NOW) < confidence(10, 5, NOW, NOW)
    old = NOW - timedelta(days=365)
    assert confidence(10, 5, old, NOW) < confidence(10, 5, NOW - timedelta(days=30), NOW)
    assert 0 < confidence(10_000, 10_000, old, NOW) < 1
    person = Person()
    many = person.notes("pottery", 12, session="a") + person.notes("running", 4, session="b")
    topics = topics_of(rebuild_topics(many, NOW), NOW)
    assert [t.size for t in topics] == [12, 4] and topics[0].confidence > topics[1].confidence
    assert [t.sessions for t in topics] == [1, 1]
    later = topics_of(rebuild_topics(many, NOW), NOW + timedelta(days=400))
    assert all(b.confidence < a.confidence for a, b in zip(topics, later, strict=True))


# -- saving and loading --------------------------------------------------------------------


def test_the_state_round_trips_through_json_and_continues_alike() -> None:
    person = Person()
    state = rebuild_topics([*interleaved(person, 6), person.outlier()], NOW)
    loaded = TopicState.from_json(json.loads(json.dumps(state.to_json())))
    assert loaded.note_ids == state.note_ids
    assert _public(topics_of(loaded, NOW)) == _public(topics_of(state, NOW))
    more = person.notes("adoption", 3) + person.notes("pottery", 2) + [person.outlier()]
    assert _public(topics_of(update_topics(loaded, more, (), NOW), NOW)) == _public(
        topics_of(update_topics(state, more, (), NOW), NOW)
    )
    assert loaded.to_json() == TopicState.from_json(loaded.to_json()).to_json()


def _public(topics: list[Topic]) -> list[tuple[Any, ...]]:
    return [(t.id, t.note_ids, t.keywords, t.timeline, t.confidence, t.sessions) for t in topics]


def test_the_saved_state_keeps_no_vector_per_note() -> None:
    person = Person()
    items = [person.note(name) for _ in range(150) for name in WORDS]  # 600 notes
    document = json.dumps(rebuild_topics(items, NOW).to_json())
    assert len(document) / len(items) < 150  # bytes per note: an id and a few numbers


def _mutations() -> Iterator[tuple[str, Any]]:
    yield "not an object", lambda doc: [doc]
    yield "foreign format", lambda doc: {**doc, "format": "other"}
    yield "newer version", lambda doc: {**doc, "version": 2}
    for key in ("dims", "sessions", "terms", "clusters", "notes"):
        yield f"missing {key}", lambda doc, key=key: {k: v for k, v in doc.items() if k != key}
    yield "dims as text", lambda doc: {**doc, "dims": "384"}
    yield "dims huge", lambda doc: {**doc, "dims": 10**30}
    yield "NaN count", lambda doc: {**doc, "terms": {"kiln": math.nan}}
    yield "infinite count", lambda doc: {**doc, "terms": {"kiln": math.inf}}
    yield "huge count", lambda doc: {**doc, "terms": {"kiln": 1e300}}
    yield "negative count", lambda doc: {**doc, "terms": {"kiln": -1}}
    yield "count as bool", lambda doc: {**doc, "terms": {"kiln": True}}
    yield "empty term", lambda doc: {**doc, "terms": {"": 1}}
    yield "cluster not an object", lambda doc: {**doc, "clusters": ["x"]}
    yield "mean not base64", lambda doc: _cluster(doc, mean="@@@@")
    yield "mean too short", lambda doc: _cluster(doc, mean="AAAA")
    yield "mean with NaN", lambda doc: _cluster(doc, mean=_nan_mean(doc["dims"]))
    yield "topic flag as int", lambda doc: _cluster(doc, topic=1)
    yield "mark too short", lambda doc: _cluster(doc, marks=[["nt_1", 0]])
    yield "mark time huge", lambda doc: _cluster(doc, marks=[["nt_1", 10**20, "x", []]])
    yield "cluster id repeated", lambda doc: {**doc, "clusters": doc["clusters"][:1] * 2}
    yield "note cluster out of range", lambda doc: _notes(doc, cluster=[10**6])
    yield "note time as float", lambda doc: _notes(doc, at=[1.5])
    yield "note session out of range", lambda doc: _notes(doc, session=[999])
    yield "note ids repeated", lambda doc: _notes(doc, ids=[doc["notes"]["ids"][0]] * 2)
    yield "note arrays differ", lambda doc: _notes(doc, at=[])
    yield "cluster without notes", lambda doc: _notes(doc, cluster=[-1] * len(doc["notes"]["ids"]))
    yield "id far too long", lambda doc: _notes(doc, ids=["n" * 10_000])


def _cluster(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**doc, "clusters": [{**doc["clusters"][0], **changes}, *doc["clusters"][1:]]}


def _notes(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    notes = {**doc["notes"]}
    for key, value in changes.items():
        notes[key] = value + notes[key][len(value) :] if key != "at" or value else value
    return {**doc, "notes": notes}


def _nan_mean(dims: int) -> str:
    import base64

    return base64.b64encode(np.full(dims, np.nan, dtype="<f2").tobytes()).decode()


@pytest.mark.parametrize(("name", "mutate"), list(_mutations()), ids=[n for n, _ in _mutations()])
def test_a_malformed_state_is_refused(name: str, mutate: Any) -> None:
    person = Person(dims=8)
    doc = rebuild_topics(interleaved(person, 3), NOW).to_json()
    TopicState.from_json(doc)  # the unchanged document loads
    with pytest.raises(ValueError, match="topic state|remem.topics|JSON object"):
        TopicState.from_json(mutate(doc))


# -- edges ---------------------------------------------------------------------------------


def test_no_notes_at_all() -> None:
    for state in (rebuild_topics([], NOW), update_topics(None, [], [], NOW)):
        assert state.note_ids == frozenset() and topics_of(state, NOW) == []
        assert TopicState.from_json(json.loads(json.dumps(state.to_json()))).note_ids == set()
        grown = update_topics(state, Person(dims=16).notes("pottery", 3), (), NOW)
        assert len(topics_of(grown, NOW)) == 1


def test_a_single_note_waits_as_an_outlier() -> None:
    person = Person()
    only = person.note("pottery")
    state = rebuild_topics([only], NOW)
    assert state.note_ids == {only.note_id} and topics_of(state, NOW) == []


@pytest.mark.parametrize("dims", [2, 8, 1536])
def test_vectors_of_any_size(dims: int) -> None:
    person = Person(dims=dims, seed=3)
    items = [
        person.note(name, vector=person.near(d, 0.05))
        for name, d in list(person.directions.items())[:2]
        for _ in range(4)
    ]
    topics = topics_of(rebuild_topics(items, NOW), NOW)
    assert sum(t.size for t in topics) == 8
    state = TopicState.from_json(rebuild_topics(items, NOW).to_json())
    assert state.dims == dims


def test_vectors_of_mixed_sizes_are_refused() -> None:
    small, large = Person(dims=8), Person(dims=16)
    large.count = 100  # ids of its notes differ from the small one's
    with pytest.raises(InvalidInputError, match="different sizes"):
        rebuild_topics([small.note("pottery"), large.note("pottery")], NOW)
    state = rebuild_topics(small.notes("pottery", 3), NOW)
    with pytest.raises(InvalidInputError, match="rebuild the topics"):
        update_topics(state, [large.note("pottery")], (), NOW)


@pytest.mark.parametrize(
    ("problem", "change"),
    [
        ("aware", {"occurred_at": datetime(2024, 1, 1)}),
        ("NaN", {"vector": np.full(DIMS, np.nan, dtype=np.float32)}),
        ("1-d", {"vector": np.ones((2, 2), dtype=np.float32)}),
        ("1-d", {"vector": np.array([], dtype=np.float32)}),
        ("text", {"text": None}),
        ("session", {"session": ""}),
        ("note id", {"note_id": ""}),
    ],
)
def test_bad_inputs_are_named(problem: str, change: dict[str, Any]) -> None:
    good = Person().note("pottery")
    bad = TopicInput(**{**good.__dict__, **change})
    with pytest.raises(InvalidInputError, match=problem):
        update_topics(None, [bad], (), NOW)


def test_a_note_given_twice_and_a_naive_now_are_refused() -> None:
    note = Person().note("pottery")
    with pytest.raises(InvalidInputError, match="twice"):
        rebuild_topics([note, note], NOW)
    with pytest.raises(InvalidInputError, match="aware"):
        topics_of(rebuild_topics([note], NOW), datetime(2024, 1, 1))


def test_nonsense_parameters_and_a_bare_string_of_ids_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="cosine"):
        TopicParams(join=1.5)
    with pytest.raises(InvalidInputError, match="min_size"):
        TopicParams(chunk=0)
    with pytest.raises(InvalidInputError, match="not one string"):
        update_topics(None, [], "nt_00001", NOW)


def test_odd_texts_still_make_topics() -> None:
    person = Person()
    emoji = person.notes("pottery", 3, text="😀🎉🙏")
    empty = person.notes("running", 3, text="")
    stop = person.notes("adoption", 3, text="it was the and of")
    long = person.notes("guitar", 3, text="guitar " * 200_000)
    zero = person.note("", text="nothing", vector=np.zeros(DIMS, dtype=np.float32))
    state = rebuild_topics(emoji + empty + stop + long + [zero], NOW)
    topics = topics_of(state, NOW)
    assert len(topics) == 4 and zero.note_id in state.note_ids
    assert topic_with(topics, emoji[0].note_id).label == "😀🎉🙏"
    assert topic_with(topics, empty[0].note_id).label == "untitled topic"
    guitar = topic_with(topics, long[0].note_id)
    assert guitar.keywords == ("guitar",) and all(len(e.text) <= 200 for e in guitar.timeline)
    assert len(json.dumps(state.to_json())) < 40_000


# -- with a model: names and cited descriptions --------------------------------------------


def _as_notes(items: list[TopicInput]) -> dict[str, Note]:
    return {
        item.note_id: Note(
            id=item.note_id,
            scope=Scope(user_id="ana"),
            text=item.text,
            metadata={},
            occurred_at=item.occurred_at,
            created_at=item.occurred_at,
            updated_at=item.occurred_at,
            version=1,
            episode_ids=(),
        )
        for item in items
    }


def _shown_ids(body: dict[str, Any]) -> list[str]:
    shown = json.loads(body["messages"][-1]["content"])
    return [note["id"] for note in shown["notes"]]


def _answer_citing(extra: str) -> Callable[[dict[str, Any]], str]:
    """An answer citing the first notes shown, plus an id that is not the topic's."""

    def answer(body: dict[str, Any]) -> str:
        ids = _shown_ids(body)
        return json.dumps(
            {
                "name": "  Pottery\n and   clay ",
                "description": [
                    {"text": "They took up  pottery.", "note_ids": [ids[0], extra]},
                    {"text": "They fired a kiln.", "note_ids": [extra]},
                    {"text": "It became a habit.", "note_ids": ids[1:3]},
                ],
            }
        )

    return answer


def test_a_model_names_topics_and_every_sentence_cites_the_topic_s_notes() -> None:
    person = Person()
    pottery, running = person.notes("pottery", 40), person.notes("running", 5)
    topics = topics_of(rebuild_topics(pottery + running, NOW), NOW)
    notes = _as_notes(pottery + running)
    with ScriptedOpenAIServer() as server:
        server.reply(_answer_citing(running[0].note_id), when="topic_name", times=None)
        llm = OpenAICompatibleLLM(server.base_url, "scripted", backoff=0.01)
        named = name_topics(llm, topics, notes)
        asked = server.chat_requests()
    assert set(named) == {t.id for t in topics} and len(asked) == 2
    for topic in topics:
        name, description = named[topic.id]
        assert name == "Pottery and clay"
        cited = ["They took up pottery.", "They fired a kiln.", "It became a habit."]
        if running[0].note_id not in topic.note_ids:  # cited from another topic: dropped
            cited.remove("They fired a kiln.")
        assert [s.text for s in description] == cited
        assert all(set(s.note_ids) <= set(topic.note_ids) and s.note_ids for s in description)
    big = topic_with(topics, pottery[0].note_id)
    shown = next(_shown_ids(body) for body in asked if pottery[0].note_id in _shown_ids(body))
    assert len(shown) == 24 and set(shown) <= set(big.note_ids)
    assert {e.note_id for e in big.timeline} <= set(shown)
    assert shown == sorted(shown, key=big.note_ids.index)


def test_a_topic_without_notes_at_hand_is_not_asked_and_a_failing_model_is_reported() -> None:
    person = Person()
    items = person.notes("pottery", 4)
    topics = topics_of(rebuild_topics(items, NOW), NOW)
    with ScriptedOpenAIServer() as server:
        llm = OpenAICompatibleLLM(server.base_url, "scripted", backoff=0.01)
        assert name_topics(llm, topics, {}) == {}
        assert server.chat_requests() == []
        server.fail_next(500, times=3)  # every attempt the client makes
        with pytest.raises(LLMError):
            name_topics(llm, topics, _as_notes(items))
        server.reply('{"name": "   ", "description": []}', when="topic_name")
        assert name_topics(llm, topics, _as_notes(items)) == {}


# -- any sequence of updates keeps the state whole -----------------------------------------

_STEPS = st.lists(
    st.tuples(
        st.lists(st.sampled_from([*WORDS, "stray"]), max_size=12),  # notes to add
        st.lists(st.integers(0, 200), max_size=6),  # earlier notes to remove (by position)
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_STEPS)
def test_any_sequence_of_updates_keeps_the_state_whole(
    steps: list[tuple[list[str], list[int]]],
) -> None:
    person = Person(dims=16, seed=5)
    params = TopicParams(max_waiting=4)
    state: TopicState | None = None
    live: dict[str, TopicInput] = {}
    made: list[TopicInput] = []
    for subjects, gone in steps:
        added = [person.outlier() if s == "stray" else person.note(s) for s in subjects]
        removed = {made[i].note_id for i in gone if i < len(made)}
        state = update_topics(state, added, removed, NOW, params)
        made.extend(added)
        live.update((item.note_id, item) for item in added)
        for note_id in removed:
            live.pop(note_id, None)
        assert state.note_ids == set(live)
        topics = topics_of(state, NOW)
        in_topics = [note_id for topic in topics for note_id in topic.note_ids]
        assert len(in_topics) == len(set(in_topics)) and set(in_topics) <= set(live)
        assert all(topic.size >= params.min_size for topic in topics)
        assert all(0 < topic.confidence < 1 for topic in topics)
        assert len({topic.id for topic in topics}) == len(topics)
        saved = json.loads(json.dumps(state.to_json(), allow_nan=False))
        assert TopicState.from_json(saved).to_json() == saved
        assert sum(not c.topic for c in state.clusters.values()) <= params.max_waiting * 5 // 4
