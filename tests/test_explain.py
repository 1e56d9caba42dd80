"""`search(..., explain=True)`: each hit's score parts, on every store and every surface;
and the ranking policies (recency, access, importance), off by default."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner
from mcp import Client as MCPClient

from remem import AsyncMemory, Client, ConfigError, Memory
from remem.cli.main import cli
from remem.config import Settings
from remem.read import policy, rank
from remem.read.explain import PARTS, POLICY_PARTS
from remem.server.app import create_app
from remem.server.mcp_tools import create_mcp_server
from remem.stores.base import Changes
from remem.testing import FailingEmbedder, HashEmbedder
from remem.testing.http import running
from remem.types import Hit, Note, Scope

INPUTS = ("rank", "cosine", "coverage", "relevance")
QUERIES = [
    "What did Bo adopt?",
    "pets at home",
    "When did Ana go hiking?",
    "Where did Ana go hiking in March 2024?",
    "what is the weather like",
]


def _say(memory: Memory, turns: list[tuple[str, str]], session: str, when: str) -> list[str]:
    messages = [{"role": "user", "name": name, "content": text} for name, text in turns]
    added = memory.add(messages, user_id="u", session_id=session, occurred_at=when)
    return list(added.note_ids)


def _fill(memory: Memory) -> list[str]:
    ids = _say(
        memory,
        [
            ("Bo", "Do you have any pets at home?"),
            ("Ana", "Yes, two cats called Tom and Jerry."),
            ("Bo", "I adopted a puppy last week."),
            ("Ana", "We went hiking by the lake on Sunday."),
        ],
        "s1",
        "2024-03-10T10:00:00Z",
    )
    ids += _say(
        memory,
        [("Bo", "The weather is nice."), ("Ana", "Sunny all week, we went hiking again.")],
        "s2",
        "2024-07-10T10:00:00Z",
    )
    return ids


def _parts(hit: Hit) -> dict[str, float]:
    assert hit.explanation is not None
    return hit.explanation


def test_each_hit_has_finite_parts_that_sum_to_its_rank(memory: Memory) -> None:
    _fill(memory)
    for query in QUERIES:
        hits = memory.search(query, user_id="u", explain=True)
        assert hits
        ranks = []
        for hit in hits:
            parts = _parts(hit)
            assert tuple(parts) == PARTS + INPUTS  # no policy parts: no policy is on
            assert all(math.isfinite(value) for value in parts.values())
            assert sum(parts[name] for name in PARTS) == pytest.approx(parts["rank"], abs=1e-9)
            assert parts["relevance"] == hit.score
            assert 0 <= parts["coverage"] <= 1 and -1 <= parts["cosine"] <= 1
            ranks.append(parts["rank"])
        assert ranks == sorted(ranks, reverse=True)  # the rank score is what orders the hits


def test_explain_changes_nothing_but_the_explanation(memory: Memory) -> None:
    _fill(memory)
    for query in QUERIES:
        for options in ({}, {"limit": 2}, {"min_score": 0.1}, {"include_superseded": True}):
            plain = memory.search(query, user_id="u", **options)  # type: ignore[arg-type]
            explained = memory.search(query, user_id="u", explain=True, **options)  # type: ignore[arg-type]
            assert all(hit.explanation is None for hit in plain)
            assert [replace(hit, explanation=None) for hit in explained] == plain


def test_the_speaker_part_counts_only_when_a_speaker_is_named(memory: Memory) -> None:
    ids = _fill(memory)
    named = memory.search("What did Bo adopt?", user_id="u", explain=True)
    by_bo = {ids[0], ids[2], ids[4]}
    assert any(_parts(hit)["speaker"] > 0 for hit in named)
    assert all((_parts(hit)["speaker"] > 0) == (hit.id in by_bo) for hit in named)
    unnamed = memory.search("adopt a puppy", user_id="u", explain=True)
    assert all(_parts(hit)["speaker"] == 0 for hit in unnamed)


def test_a_hit_found_by_keyword_alone_has_no_dense_part(location: str) -> None:
    embedder = FailingEmbedder(HashEmbedder(), failing=False)
    with Memory(location, embedder=embedder, llm=None) as memory:
        _fill(memory)
        embedder.failing = True  # the query cannot be embedded: words alone find the notes
        hits = memory.search("hiking lake", user_id="u", explain=True)
    assert hits
    for hit in hits:
        parts = _parts(hit)
        assert parts["dense"] == 0 and parts["sentence"] == 0
        assert parts["lexical"] + parts["lexical_in_context"] + parts["neighbours"] > 0


def test_a_question_hands_its_score_to_its_answer(memory: Memory) -> None:
    ids = _fill(memory)
    hits = {hit.id: _parts(hit) for hit in memory.search("pets at home", user_id="u", explain=True)}
    assert hits[ids[0]]["question"] < 0 < hits[ids[1]]["question"]


# -- policies --------------------------------------------------------------------------------


def test_no_policy_by_default_and_a_zero_policy_changes_nothing(location: str) -> None:
    zero = rank.Weights(recency=0.0, access=0.0, importance=0.0)
    orders = []
    for ranking in (None, "default", zero, rank.DEFAULT):
        with Memory(location, embedder=HashEmbedder(), llm=None, ranking=ranking) as memory:
            if not orders:
                _fill(memory)
            assert memory.ranking == rank.DEFAULT and not memory.ranking.policy
            orders.append([memory.search(query, user_id="u") for query in QUERIES])
    assert all(order == orders[0] for order in orders)


def test_a_recency_policy_puts_the_newer_of_two_equal_memories_first(location: str) -> None:
    with Memory(location, embedder=HashEmbedder(), llm=None) as memory:
        old = _say(memory, [("Ana", "I bought a red kayak.")], "s1", "2023-01-05T09:00:00Z")[0]
        new = _say(memory, [("Ana", "I bought a red kayak.")], "s2", "2024-01-05T09:00:00Z")[0]
        plain = memory.search("red kayak", user_id="u", explain=True)
    assert _parts(plain[0])["rank"] == _parts(plain[1])["rank"]  # as relevant: a tie
    assert [hit.id for hit in plain] == sorted([old, new])  # broken by id
    with Memory(location, embedder=HashEmbedder(), llm=None, ranking="recent") as memory:
        hits = memory.search("red kayak", user_id="u", explain=True)
    assert [hit.id for hit in hits] == [new, old]
    newer, older = _parts(hits[0]), _parts(hits[1])
    assert tuple(newer) == PARTS + POLICY_PARTS + INPUTS
    before = sum(newer[name] for name in PARTS)
    assert newer["recency"] == pytest.approx(before)  # the newest: (1 + 1.0 * 1)
    assert 0 < older["recency"] < before * 0.01  # a year back: 2 ** -12 of that
    assert newer["access"] == newer["importance"] == 0  # those policies are off
    assert [replace(hit, explanation=None) for hit in hits] == _kayaks(location, "recent")


def _kayaks(location: str, ranking: str) -> list[Hit]:
    with Memory(location, embedder=HashEmbedder(), llm=None, ranking=ranking) as memory:
        return memory.search("red kayak", user_id="u")


def test_a_pinned_memory_does_not_decay(location: str) -> None:
    with Memory(location, embedder=HashEmbedder(), llm=None, ranking="recent") as memory:
        old = _say(memory, [("Ana", "My blood type is O negative.")], "s1", "2022-01-01T00:00Z")
        _say(memory, [("Ana", "My blood type test is next week.")], "s2", "2024-01-01T00:00Z")
        assert memory.pin(old[0]).pinned
        hits = memory.search("blood type", user_id="u", explain=True)
    pinned = _parts(next(hit for hit in hits if hit.id == old[0]))
    assert pinned["recency"] == pytest.approx(sum(pinned[name] for name in PARTS))


def test_an_importance_policy_puts_the_more_important_memory_first(location: str) -> None:
    with Memory(location, embedder=HashEmbedder(), llm=None, ranking="important") as memory:
        first = _say(memory, [("Ana", "the green door")], "s1", "2024-01-05T09:00:00Z")[0]
        second = _say(memory, [("Ana", "the green door")], "s2", "2024-01-05T09:00:00Z")[0]
        for note_id, importance in ((first, 0.1), (second, 0.9)):
            note = memory.get(note_id)
            memory.store.apply(Changes(notes=[replace(note, importance=importance)]))
        hits = memory.search("green door", user_id="u", explain=True)
    assert [hit.id for hit in hits] == [second, first]
    assert _parts(hits[0])["importance"] > _parts(hits[1])["importance"] > 0


def _note(**fields: Any) -> Note:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    values: dict[str, Any] = {
        "id": "nt_x",
        "scope": Scope(user_id="u"),
        "text": "x",
        "metadata": {},
        "occurred_at": at,
        "created_at": at,
        "updated_at": at,
        "version": 1,
        "episode_ids": (),
    }
    return Note(**(values | fields))


def test_recall_strengthens_a_memory_so_it_decays_more_slowly() -> None:
    now = datetime(2024, 3, 1, tzinfo=UTC)
    seen = now - timedelta(days=14)
    notes = {
        "never": _note(id="never", last_accessed_at=seen, access_count=0),
        "often": _note(id="often", last_accessed_at=seen, access_count=5),
        "pinned": _note(id="pinned", last_accessed_at=seen, pinned=True),
        "written": _note(id="written", created_at=now - timedelta(days=7)),  # never read
        "future": _note(id="future", last_accessed_at=now + timedelta(days=3)),  # clock skew
    }
    weights = rank.Weights(access=1.0, access_half_life=timedelta(days=7))
    scores = policy.favour_recalled(dict.fromkeys(notes, 1.0), notes, weights, now)
    assert scores["never"] == pytest.approx(1.25)  # two half-lives
    assert scores["often"] == pytest.approx(1 + 0.5 ** (14 / 42))  # six times as stable
    assert scores["pinned"] == scores["future"] == 2.0
    assert scores["written"] == pytest.approx(1.5)
    assert scores["never"] < scores["often"] < scores["pinned"]


def test_recency_counts_back_from_the_newest_candidate() -> None:
    newest = datetime(2024, 3, 1, tzinfo=UTC)
    notes = {
        "new": _note(id="new", occurred_at=newest),
        "month": _note(id="month", occurred_at=newest - timedelta(days=30)),
        "pinned": _note(id="pinned", occurred_at=newest - timedelta(days=900), pinned=True),
    }
    scores = policy.favour_recent(
        dict.fromkeys(notes, 2.0), notes, policy.PRESETS["recent"], newest
    )
    assert scores == {"new": 4.0, "month": pytest.approx(3.0), "pinned": 4.0}
    assert policy.favour_recent({"gone": 1.0}, {}, policy.PRESETS["recent"], newest) == {
        "gone": 1.0
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"recency": -0.5}, "recency must be a finite number >= 0"),
        ({"importance": math.nan}, "importance must be a finite number >= 0"),
        ({"access": math.inf}, "access must be a finite number >= 0"),
        ({"speaker": -0.9}, "speaker must be a finite number >= 0"),
        ({"dense": True}, "dense must be a finite number"),
        ({"text": "1"}, "text must be a finite number"),
        ({"recency_half_life": timedelta(0)}, "recency_half_life must be a timedelta > 0"),
        ({"access_half_life": 7}, "access_half_life must be a timedelta > 0"),
        ({"time_slack": timedelta(days=-1)}, "time_slack must be a timedelta >= 0"),
        ({"speaker_first_person": 1}, "speaker_first_person must be true or false"),
    ],
)
def test_unusable_weights_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        rank.Weights(**changes)
    with pytest.raises(ConfigError, match=message):
        replace(rank.DEFAULT, **changes)


def test_a_policy_is_named_in_the_arguments_or_the_settings(db_path: Path) -> None:
    assert all(weights.policy for name, weights in policy.PRESETS.items() if name != "default")
    with pytest.raises(ConfigError, match="unknown ranking 'fresh': use one of default, recent"):
        Memory(db_path, embedder=HashEmbedder(), llm=None, ranking="fresh")
    settings = Settings.resolve(environ={"REMEM_RANKING": "Recent", "REMEM_CONFIG": ""})
    with Memory(db_path, embedder=HashEmbedder(), llm=None, settings=settings) as memory:
        assert memory.ranking == policy.PRESETS["recent"]
    with Memory(
        db_path, embedder=HashEmbedder(), llm=None, settings=settings, ranking="important"
    ) as memory:
        assert memory.ranking == policy.PRESETS["important"]  # an argument wins
    bad = Settings.resolve(environ={"REMEM_RANKING": "0.5", "REMEM_CONFIG": ""})
    with pytest.raises(ConfigError, match="REMEM_RANKING"):
        Memory(db_path, embedder=HashEmbedder(), llm=None, settings=bad)


# -- surfaces --------------------------------------------------------------------------------


def test_cli_search_explain(tmp_path: Path) -> None:
    env = {"REMEM_DB": str(tmp_path / "cli.db"), "REMEM_EMBEDDER": "hash", "REMEM_CONFIG": ""}

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, list(args), env=env)
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result.output

    run("add", "I adopted a puppy called Rex.", "--user", "ana", "--name", "Ana")
    run("add", "Bo bought a new bike.", "--user", "ana", "--name", "Bo")
    shown = run("search", "What did Ana adopt?", "--user", "ana", "--explain")
    first = shown.split("\n\n")[0]
    assert first.startswith("#1  ") and "I adopted a puppy called Rex." in first
    assert "speaker" in first and "lexical" in first and "(the sum: the hits' order)" in first
    assert "relevance" in first and "of the query's words" in first
    assert "nothing from:" in first
    data = json.loads(run("search", "What did Ana adopt?", "--user", "ana", "--explain", "--json"))
    assert {"rank", "speaker", "relevance"} <= set(data[0]["explanation"])
    plain = json.loads(run("search", "What did Ana adopt?", "--user", "ana", "--json"))
    assert plain[0]["explanation"] is None and plain[0]["id"] == data[0]["id"]
    assert "(nothing)" in run("search", "zzz qqq", "--user", "nobody", "--explain")
    ranked = run("bench", "locomo", "--help")
    assert "--ranking" in ranked and "recent" in ranked


@pytest.fixture
def served(memory: Memory) -> Iterator[tuple[Memory, str]]:
    _fill(memory)
    with running(create_app(memory)) as url:
        yield memory, url


def test_rest_and_client_explain(served: tuple[Memory, str]) -> None:
    memory, url = served
    local = memory.search("What did Bo adopt?", user_id="u", explain=True)
    with httpx.Client(base_url=url, timeout=10) as http:
        body = {"query": "What did Bo adopt?", "user_id": "u"}
        explained = http.post("/v1/search", json=body | {"explain": True}).json()
        plain = http.post("/v1/search", json=body).json()
        wrong = http.post("/v1/search", json=body | {"explain": "perhaps"})
    assert [hit["id"] for hit in explained] == [hit.id for hit in local]
    assert explained[0]["explanation"] == pytest.approx(local[0].explanation)
    assert all(hit["explanation"] is None for hit in plain)
    assert [hit["id"] for hit in plain] == [hit["id"] for hit in explained]
    assert wrong.status_code == 422 and "explain" in wrong.text
    with Client(url) as client:
        remote = client.search("What did Bo adopt?", user_id="u", explain=True)
    assert [hit.id for hit in remote] == [hit.id for hit in local]
    assert remote[0].explanation == pytest.approx(local[0].explanation)


def test_async_memory_explains(db_path: Path) -> None:
    async def main() -> list[Hit]:
        async with AsyncMemory(db_path, embedder=HashEmbedder(), llm=None) as memory:
            await memory.add("Ana keeps bees on the roof.", user_id="u")
            return await memory.search("bees", user_id="u", explain=True)

    hits = anyio.run(main)
    assert hits and _parts(hits[0])["lexical"] > 0


def test_mcp_search_memory_explains(served: tuple[Memory, str]) -> None:
    memory, _ = served
    app = create_mcp_server(memory, "u").streamable_http_app()

    async def search(client: MCPClient, **arguments: Any) -> Any:
        result = await client.call_tool(
            "search_memory", {"query": "What did Bo adopt?"} | arguments
        )
        assert not result.is_error, result.content
        data = result.structured_content
        assert isinstance(data, dict)
        return data["result"]

    with running(app) as url:

        async def main() -> tuple[Any, Any]:
            async with MCPClient(f"{url}/mcp") as client:
                return await search(client, explain=True), await search(client)

        explained, plain = anyio.run(main)
    assert [hit["id"] for hit in explained] == [hit["id"] for hit in plain]
    assert {"rank", "speaker", "dense"} <= set(explained[0]["explanation"])
    assert all("explanation" not in hit for hit in plain)  # tokens matter to the model
