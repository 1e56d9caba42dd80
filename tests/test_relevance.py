"""Hit scores are relevances in [0, 1] that mean the same for every query and memory size;
`min_score` and the context's floor keep unrelated memories away from a model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from remem import Context, Memory
from remem.embedders.minilm import MiniLMEmbedder
from remem.errors import InvalidInputError
from remem.read.relevance import ANSWERABLE, CONTEXT_FLOOR, coverage, relevance
from remem.server.app import create_app

ANA = [
    "I live in Lisbon, near the river.",
    "My sister Marta visits every summer.",
    "I work as a nurse at the city hospital.",
    "I go running by the water every morning.",
]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture
def ana(tmp_path: Path, minilm: MiniLMEmbedder) -> Iterator[Memory]:
    with Memory(str(tmp_path / "ana.db"), embedder=minilm) as memory:
        for text in ANA:
            memory.add(text, user_id="ana")
        yield memory


def test_scores_are_probabilities(memory: Memory) -> None:
    for text in ANA:
        memory.add(text, user_id="ana")
    hits = memory.search("Where does Ana live?", user_id="ana", limit=10)
    assert hits and all(0.0 <= hit.score <= 1.0 for hit in hits)


def test_a_memory_of_one_note_scores_what_it_matches(memory: Memory) -> None:
    memory.add("I live in Lisbon.", user_id="solo")
    (hit,) = memory.search("live in Lisbon", user_id="solo")
    assert hit.score > CONTEXT_FLOOR  # a lone note is not scaled to nothing


def test_min_score_keeps_only_hits_that_reach_it(memory: Memory) -> None:
    for text in ANA:
        memory.add(text, user_id="ana")
    every = memory.search("Lisbon river", user_id="ana", limit=10)
    floor = sorted(hit.score for hit in every)[len(every) // 2]
    kept = memory.search("Lisbon river", user_id="ana", limit=10, min_score=floor)
    assert kept and all(hit.score >= floor for hit in kept)
    assert {hit.id for hit in kept} == {hit.id for hit in every if hit.score >= floor}
    assert memory.search("Lisbon river", user_id="ana", min_score=1.0) == [] or all(
        hit.score == 1.0 for hit in memory.search("Lisbon river", user_id="ana", min_score=1.0)
    )


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "high", True, None])
def test_a_bad_min_score_is_refused(memory: Memory, bad: object) -> None:
    with pytest.raises(InvalidInputError, match="min_score"):
        memory.search("x", user_id="ana", min_score=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="min_score"):
        memory.context("x", user_id="ana", min_score=bad)  # type: ignore[arg-type]


def test_the_answer_is_the_most_relevant_hit(ana: Memory) -> None:
    hits = ana.search("Where does Ana live?", user_id="ana")
    best = max(hits, key=lambda hit: hit.score)
    assert best.text == ANA[0]
    jazz = ana.search("What jazz albums does Ana like?", user_id="ana")
    assert best.score > max(hit.score for hit in jazz)  # comparable across queries


def _memories(context: Context) -> list[str]:
    return [item.text for item in context.items if item.kind == "memory"]


def test_the_context_floor_leaves_out_what_is_far_from_the_question(ana: Memory) -> None:
    jazz = "What jazz albums does Ana like?"
    unrelated = _memories(ana.context(jazz, user_id="ana", profile_share=0))
    everything = _memories(ana.context(jazz, user_id="ana", profile_share=0, min_score=0))
    assert len(everything) == len(ANA) and len(unrelated) < len(everything)
    related = _memories(ana.context("Which city does Ana live in?", user_id="ana", profile_share=0))
    assert any("Lisbon" in text for text in related)


def test_a_question_the_memory_has_nothing_on_gets_no_memory_but_pinned_ones(
    ana: Memory,
) -> None:
    jazz = "What jazz albums does Ana like?"
    best = max(hit.score for hit in ana.search(jazz, user_id="ana"))
    assert best < ANSWERABLE  # nothing on jazz: the gate's case
    gate = {"user_id": "ana", "profile_share": 0, "min_top_score": ANSWERABLE}
    assert _memories(ana.context(jazz, **gate)) == []
    assert _memories(ana.context(jazz, user_id="ana", profile_share=0))  # off by default
    lisbon = _memories(ana.context("Where does Ana live?", **gate))
    assert any("Lisbon" in text for text in lisbon)  # the owner's own name is no content word
    nurse = next(n for n in ana.list(user_id="ana").items if "nurse" in n.text)
    ana.pin(nurse.id)
    pinned = _memories(ana.context(jazz, **gate))
    assert len(pinned) == 1 and pinned[0].endswith(nurse.text)
    with pytest.raises(InvalidInputError, match="min_top_score"):
        ana.context(jazz, user_id="ana", min_top_score=2)
    client = TestClient(create_app(ana), base_url="http://127.0.0.1")
    body = {"query": jazz, "user_id": "ana", "profile_share": 0, "min_top_score": ANSWERABLE}
    gated = client.post("/v1/context", json=body).json()
    shown = [item["text"] for item in gated["items"] if item["kind"] == "memory"]
    assert len(shown) == 1 and shown[0].endswith(nurse.text)
    every = client.post("/v1/context", json={**body, "min_top_score": 0, "min_score": 0}).json()
    assert len([item for item in every["items"] if item["kind"] == "memory"]) == len(ANA)
    assert client.post("/v1/context", json={**body, "min_top_score": -1}).status_code == 422


def test_rest_takes_min_score_and_refuses_a_bad_one(ana: Memory) -> None:
    client = TestClient(create_app(ana), base_url="http://127.0.0.1")
    ok = client.post(
        "/v1/search", json={"query": "jazz albums", "user_id": "ana", "min_score": 0.5}
    )
    assert ok.status_code == 200 and ok.json() == []
    assert client.post(
        "/v1/search", json={"query": "Lisbon", "user_id": "ana", "min_score": 0}
    ).json()
    for bad in (-1, 2, "x"):
        response = client.post(
            "/v1/search", json={"query": "q", "user_id": "ana", "min_score": bad}
        )
        assert response.status_code == 422 and "min_score" in response.text


def test_relevance_grows_with_meaning_and_words() -> None:
    assert 0 < relevance(0.1, 0.0) < relevance(0.6, 0.0) < relevance(0.6, 1.0) < 1
    assert coverage(["paint", "sunset"], "I was painting the sunsets") == 1.0
    assert coverage(["jazz"], "I like rock") == 0.0
    assert coverage([], "anything") == 0.0


def test_answers_are_kept_for_short_texts_only() -> None:
    from remem.read.text_cache import SHORT_TEXT, per_short_text

    seen: list[int] = []

    @per_short_text
    def length(text: str) -> int:
        seen.append(len(text))
        return len(text)

    short, long = "a note", "x" * (SHORT_TEXT + 1)
    assert [length(short), length(short), length(long), length(long)] == [6, 6, 2001, 2001]
    assert seen == [6, 2001, 2001]  # the short one computed once, the long one each time
