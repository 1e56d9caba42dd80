"""The read path's techniques, each on a small synthetic memory or as a pure function."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import PythonRun
from remem import Memory
from remem.embedders.base import Vectors
from remem.read import rank
from remem.read.timespan import find_span
from remem.stores.base import NoteFacts
from remem.testing import HashEmbedder
from remem.types import Hit

REF = datetime(2024, 8, 20, tzinfo=UTC)
W = rank.DEFAULT

WAIT = 10  # seconds a test waits for another thread before it fails


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("What did she cook on 9 November, 2022?", _utc(2022, 11, 9), _utc(2022, 11, 10)),
        ("Who called on May 3, 2023?", _utc(2023, 5, 3), _utc(2023, 5, 4)),
        ("what happened on the 3rd of May 2023", _utc(2023, 5, 3), _utc(2023, 5, 4)),
        ("plans for 2023-02-28", _utc(2023, 2, 28), _utc(2023, 3, 1)),
        ("anything in July 2023?", _utc(2023, 7, 1), _utc(2023, 8, 1)),
        ("the trip in Dec 2023", _utc(2023, 12, 1), _utc(2024, 1, 1)),
        ("where did we go in June?", _utc(2024, 6, 1), _utc(2024, 7, 1)),
        ("what did we do in October?", _utc(2023, 10, 1), _utc(2023, 11, 1)),
        ("books read in 2022", _utc(2022, 1, 1), _utc(2023, 1, 1)),
    ],
)
def test_find_span_reads_explicit_dates(query: str, start: datetime, end: datetime) -> None:
    assert find_span(query, lambda: REF) == (start, end)


@pytest.mark.parametrize("query", ["what is her name?", "in May", "room 2023"])
def test_find_span_ignores_what_is_not_a_usable_date(query: str) -> None:
    assert find_span(query, lambda: None) is None


def test_an_impossible_day_still_names_its_month() -> None:
    assert find_span("31 February 2023", lambda: None) == (_utc(2023, 2, 1), _utc(2023, 3, 1))


def _fact(
    item_id: str,
    *,
    text: str = "text",
    speaker: str | None = None,
    when: datetime = REF,
    passage: int | None = None,
    previous: str | None = None,
    following: str | None = None,
) -> NoteFacts:
    return NoteFacts(item_id, text, speaker, when, passage, previous, following)


def test_fuse_scales_each_retriever_before_weighting() -> None:
    scores = rank.fuse([("a", 10.0), ("b", 5.0)], [("b", 2.0)], [("a", 0.9), ("c", 0.5)], W)
    assert scores["a"] == pytest.approx(W.text + W.dense)
    assert scores["b"] == pytest.approx(W.text / 2 + W.text_in_context)
    assert scores["c"] == pytest.approx(0.0)


def test_a_tiny_cosine_gap_does_not_count_as_a_whole_one() -> None:
    scores = rank.fuse([], [], [("a", 0.81), ("b", 0.80)], W)
    assert scores["a"] == pytest.approx(W.dense * 0.01 / rank.MIN_COSINE_SPREAD)
    assert scores["b"] == pytest.approx(0.0)


def test_a_question_hands_its_score_to_the_answer() -> None:
    facts = {
        "q": _fact("q", text="Do you have pets?", following="a"),
        "a": _fact("a", text="Two cats.", previous="q"),
    }
    scores = rank.hand_off_questions({"q": 1.0}, facts, W)
    assert scores["q"] == pytest.approx(1 - W.question_gives_up)
    assert scores["a"] == pytest.approx(W.question_hands_on)


def test_neighbours_share_scores_both_ways() -> None:
    facts = {"b": _fact("b", previous="a", following="c")}
    scores = rank.spread_to_neighbours({"b": 1.0}, facts, W)
    assert scores == pytest.approx({"b": 1.0, "c": W.from_previous, "a": W.from_following})


def test_passage_time_and_speaker_boosts() -> None:
    facts = {
        "x": _fact("x", passage=1, speaker="Ana", when=_utc(2024, 3, 5)),
        "y": _fact("y", passage=2, speaker="Bo", when=_utc(2024, 5, 5)),
    }
    even = {"x": 1.0, "y": 1.0}
    by_passage = rank.boost_passages(even, facts, [(1, 4.0), (2, 2.0)], W)
    assert by_passage["x"] == pytest.approx(1 + W.passage)
    assert by_passage["y"] == pytest.approx(1 + W.passage / 2)
    by_time = rank.boost_time(even, facts, (_utc(2024, 3, 1), _utc(2024, 4, 1)), W)
    assert by_time == {"x": 1 + W.time_span, "y": 1.0}
    assert rank.boost_time(even, facts, (_utc(2020, 1, 1), _utc(2020, 2, 1)), W) == even
    assert rank.boost_speaker(even, facts, "ana", W)["x"] == 1 + W.speaker
    assert rank.boost_speaker(even, facts, None, W) == even


def _conversation(
    memory: Memory, turns: list[tuple[str, str]], session: str, when: str = "2024-03-01T10:00:00Z"
) -> list[str]:
    messages = [{"role": "user", "name": name, "content": text} for name, text in turns]
    return list(memory.add(messages, user_id="u", session_id=session, occurred_at=when).note_ids)


def test_an_answer_is_found_through_the_question_it_replies_to(memory: Memory) -> None:
    ids = _conversation(
        memory,
        [
            ("Bo", "Do you have any pets at home?"),
            ("Ana", "Yes, two cats called Tom and Jerry."),
            ("Bo", "Lovely. How was work today?"),
            ("Ana", "Busy, the quarterly report is due."),
        ],
        "s1",
    )
    _conversation(memory, [("Bo", "The weather is nice."), ("Ana", "Sunny all week.")], "s2")
    top = [hit.id for hit in memory.search("Ana pets", user_id="u", limit=2)]
    assert ids[1] in top


def test_an_explicit_date_prefers_what_was_said_then(memory: Memory) -> None:
    march = _conversation(
        memory, [("Ana", "We went hiking by the lake.")], "s1", "2024-03-10T10:00:00Z"
    )
    _conversation(
        memory, [("Ana", "We went hiking by the lake again.")], "s2", "2024-07-10T10:00:00Z"
    )
    hits = memory.search("Where did Ana go hiking in March 2024?", user_id="u", limit=2)
    assert hits[0].id == march[0]


def test_the_named_speaker_comes_first(memory: Memory) -> None:
    said = [("Ana", "I adopted a puppy, not a kitten."), ("Bo", "I adopted a kitten, not a puppy.")]
    ids = _conversation(memory, said, "s1")  # (the same words: only who said them differs)
    for query, theirs in (("What did Bo adopt?", ids[1]), ("What did Ana adopt?", ids[0])):
        hits = memory.search(query, user_id="u", limit=2, explain=True)
        assert hits[0].id == theirs
        boosted = {hit.id for hit in hits if hit.explanation and hit.explanation["speaker"] > 0}
        assert boosted == {theirs}


def test_passages_follow_deletes(memory: Memory) -> None:
    ids = _conversation(memory, [("Ana", "zebra crossing"), ("Ana", "giraffe neck")], "s1")
    scope = memory.get(ids[0]).scope
    assert memory.store.search_passages(["zebra"], scope, 5)
    memory.delete(ids[0])
    assert memory.store.search_passages(["zebra"], scope, 5) == []
    assert memory.store.search_passages(["giraffe"], scope, 5)


def test_context_holds_the_previous_note_of_the_session(memory: Memory) -> None:
    ids = _conversation(memory, [("Bo", "Favourite colour?"), ("Ana", "Blue, always.")], "s1")
    scope = memory.get(ids[0]).scope
    matches = memory.store.search_text(["colour"], scope, 5)
    assert {item for item, _ in matches.in_context} == set(ids)
    assert [item for item, _ in matches.note] == [ids[0]]
    facts = memory.store.describe(ids)
    assert facts[ids[0]].following == ids[1] and facts[ids[1]].previous == ids[0]
    assert facts[ids[1]].speaker == "Ana"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I went there last Saturday.", True),
        ("Back in 2019 it was cold", True),
        ("We met in June", True),
        ("Two weeks ago", True),
        ("I like tea", False),
        ("Room 1234", False),
        ("The lastest news", False),
    ],
)
def test_mentions_time(text: str, expected: bool) -> None:
    from remem.read.timespan import mentions_time

    assert mentions_time(text) is expected


def test_asks_when() -> None:
    from remem.read.timespan import asks_when

    assert asks_when("When did Ana move?") and asks_when("How long has she played?")
    assert not asks_when("What did Ana say when she moved?")


def test_long_sessions_split_into_passages(memory: Memory) -> None:
    from remem.stores.base import PASSAGE_NOTES

    first = _conversation(
        memory, [("Ana", f"line {i} alpha") for i in range(PASSAGE_NOTES - 2)], "s1"
    )
    rest = _conversation(memory, [("Ana", f"line {i} omega") for i in range(5)], "s1")
    facts = memory.store.describe(first + rest)
    passages = [facts[item].passage for item in first + rest]
    assert len(set(passages[:PASSAGE_NOTES])) == 1
    assert len(set(passages[PASSAGE_NOTES:])) == 1 and passages[-1] != passages[0]
    scope = memory.get(first[0]).scope
    found = dict(memory.store.search_passages(["omega"], scope, 5))
    assert set(found) == {passages[0], passages[-1]}  # omega lines sit in both passages


def test_ranking_weights_are_passed_in(db_path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from remem.testing import HashEmbedder

    turns = [("Ana", "I adopted a puppy."), ("Bo", "I adopted a kitten.")]
    # with the speaker weight at zero, the named speaker's note gains nothing from it
    # (weights below zero are refused: see tests/test_explain.py)
    off = replace(rank.DEFAULT, speaker=0.0)
    with Memory(db_path, embedder=HashEmbedder(), ranking=off) as memory:
        ids = _conversation(memory, turns, "s1")
        plain = memory.search("What did Bo adopt?", user_id="u", explain=True)
    with Memory(db_path, embedder=HashEmbedder()) as memory:
        boosted = memory.search("What did Bo adopt?", user_id="u", explain=True)
    assert [h.id for h in boosted] == [ids[1], ids[0]]
    assert boosted[0].explanation and boosted[0].explanation["speaker"] > 0
    assert all(h.explanation and h.explanation["speaker"] == 0 for h in plain)


def test_speakers_named_and_first_person(memory: Memory) -> None:
    from remem.read.query import as_said_by

    _conversation(memory, [("Ana", "hello"), ("Bo", "hi")], "s1")
    scope = memory.get(memory.list(user_id="u").items[0].id).scope
    assert memory.store.speakers_named(["banana", "ana", "bo", "cy"], scope) == ["ana", "bo"]
    assert memory.store.speakers_named(["ana"], type(scope)(user_id="other")) == []
    assert as_said_by("What is Ana's job and where does ana live?", "ana") == (
        "What is my job and where does I live?"
    )
    assert as_said_by("What did Banana say?", "ana") == "What did Banana say?"


class CrashingEmbedder(HashEmbedder):
    """A model that breaks in a way remem does not expect (not an EmbedderError)."""

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        raise RuntimeError("the model crashed")


def test_a_crash_while_embedding_the_query_reaches_the_caller(memory: Memory) -> None:
    # The query is embedded on a thread of its own: what goes wrong there is still raised
    # by search, not lost with the thread (an EmbedderError means keywords alone instead).
    memory.add("Ana keeps her bike in the garage.", user_id="ana")
    memory.embedder = CrashingEmbedder()
    with pytest.raises(RuntimeError, match="the model crashed"):
        memory.search("where is the bike?", user_id="ana")


def test_searches_from_many_threads_find_what_one_at_a_time_finds(memory: Memory) -> None:
    for day in range(30):
        memory.add(f"Day {day}: Ana talked about her garden and the weather.", user_id="ana")
    memory.add("Ana keeps her bike in the garage.", user_id="ana")
    queries = ["where is the bike?", "what about the garden?", "weather on day 7", "garage"]
    alone = {query: [hit.id for hit in memory.search(query, user_id="ana")] for query in queries}
    found: dict[int, list[str]] = {}

    def search(index: int) -> None:
        query = queries[index % len(queries)]
        found[index] = [hit.id for hit in memory.search(query, user_id="ana")]

    threads = [threading.Thread(target=search, args=(index,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {index: alone[queries[index % len(queries)]] for index in range(16)} == found


class HeldEmbedder(HashEmbedder):
    """A model that answers only once the test opens its gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.entered = threading.Event(), threading.Event()

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        self.entered.set()
        assert self.gate.wait(WAIT), "the test never opened the gate"
        return super().embed_batch(texts)


def test_a_slow_query_embedding_holds_up_no_other_search(tmp_path: Path) -> None:
    with (
        Memory(str(tmp_path / "slow.db"), embedder=HashEmbedder()) as slow,
        Memory(str(tmp_path / "quick.db"), embedder=HashEmbedder()) as quick,
    ):
        for memory in (slow, quick):
            memory.add("Ana keeps her bike in the garage.", user_id="ana")
        held = HeldEmbedder()
        slow.embedder = held
        waiting = threading.Thread(target=slow.search, args=("bike",), kwargs={"user_id": "ana"})
        waiting.start()
        found: list[Hit] = []
        other = threading.Thread(target=lambda: found.extend(quick.search("bike", user_id="ana")))
        assert held.entered.wait(WAIT)
        other.start()
        other.join(WAIT)  # (on Python 3.11 a `cached_property` lock made it wait for the gate)
        answered_alone = bool(found)
        held.gate.set()
        waiting.join()
        other.join()
        assert answered_alone, "a search waited for another search's query embedding"


CRASHING_STORE = """
import sys
from remem import Memory
from remem.errors import StoreError
from remem.stores.sqlite import SQLiteStore

class Failing(SQLiteStore):
    def search_text(self, *args, **kwargs):
        raise StoreError("database is locked")

with Memory(sys.argv[1]) as memory:
    memory.add("Ana keeps her bike in the garage.", user_id="ana")
memory = Memory(store=Failing(sys.argv[1]))
try:
    memory.search("where does Ana keep her bike? " * 20, user_id="ana")
except StoreError:
    sys.exit(3)
"""


def test_a_search_that_fails_while_the_query_embeds_exits_cleanly(
    tmp_path: Path, run_python: PythonRun
) -> None:
    # The bundled model is still embedding the query when the search fails and the process
    # exits: it must finish first, not be torn down under its thread (an abort, exit 134).
    ran = run_python(CRASHING_STORE, str(tmp_path / "m.db"))
    assert ran.returncode == 3, ran.stderr


NO_THREADS = """
import sys
from remem import Memory
from remem.testing import HashEmbedder
from remem.testing.threads import forbid_new_threads

with Memory(sys.argv[1], embedder=HashEmbedder()) as memory:
    note_id = memory.add("Ana keeps her bike in the garage.", user_id="ana").note_ids[0]
    if not forbid_new_threads():
        sys.exit(77)  # (NOT_HERE)
    assert memory.search("where is the bike?", user_id="ana")[0].id == note_id
    assert memory.store.get_notes([note_id])[note_id].access_count == 1  # by the reader
    memory.search("where is the bike?", user_id="ana")
with Memory(sys.argv[1], embedder=HashEmbedder()) as memory:  # the last read, at close at most
    assert memory.get(note_id).access_count == 2
"""


def test_search_works_where_no_thread_can_be_started(tmp_path: Path, run_python: PythonRun) -> None:
    # The query is embedded, and reads are counted, on threads of their own only where
    # one can be had (before, the search failed, and so did closing the memory).
    ran = run_python(NO_THREADS, str(tmp_path / "m.db"))
    assert ran.returncode == 0, ran.stderr
