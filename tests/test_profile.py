"""The person layer through `Memory`: the profile kept current with the notes (added,
deleted, purged), its versions in history, tenants, the profile block of a context, and the
REST, MCP-facing and CLI surfaces. The parts (topics, attributes, biography, fill) have their
own tests; here they are seen working together on both stores."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from remem import Memory
from remem.cli.main import cli
from remem.errors import InvalidInputError, ScopeRequiredError
from remem.keys import create_key
from remem.llms.openai import OpenAICompatibleLLM
from remem.profile import state
from remem.serialize import to_data
from remem.server.app import create_app
from remem.stores.base import Changes
from remem.testing import HashEmbedder, ScriptedOpenAIServer
from remem.testing.http import running
from remem.types import Scope

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
HOME_TURNS = [
    "I live in Lisbon with my partner.",
    "You can reach me at ana.silva@example.org any time.",
    "Our cat Miso knocked the plant over again this morning.",
    "Miso the cat loves sleeping on the warm laptop keyboard.",
    "The cat Miso learned to open the kitchen door.",
]

# near-duplicates, so that even the hash embedder puts them in one topic
CAT_TURNS = [
    "Miso the cat sleeps on the laptop.",
    "Miso the cat sleeps on the laptop again.",
    "Miso the cat sleeps on the warm laptop.",
]


def _say(memory: Memory, texts: list[str], *, user: str = "ana", start: datetime = START) -> None:
    for step, text in enumerate(texts):
        memory.add(
            [{"role": "user", "name": "Ana", "content": text}],
            user_id=user,
            session_id=f"s{step // 3}",
            occurred_at=start + timedelta(hours=step),
        )


def _slots(memory: Memory, **owner: str) -> dict[str, str]:
    return {a.slot: a.value for a in memory.profile(**owner, person="Ana").attributes}


def test_a_profile_follows_the_notes(memory: Memory) -> None:
    empty = memory.profile(user_id="ana")
    assert empty.topics == () and empty.attributes == ()
    _say(memory, HOME_TURNS)
    profile = memory.profile(user_id="ana", person="Ana")
    assert profile.person == "Ana" and profile.notes_seen == len(HOME_TURNS)
    slots = {a.slot: a for a in profile.attributes}
    assert "Lisbon" in slots["home"].value
    assert slots["email"].value == "ana.silva@example.org"
    note_ids = {note.id for note in memory.list(user_id="ana").items}
    assert set(slots["home"].note_ids) <= note_ids
    assert profile.biography.text  # without a model: a summary, never empty
    for sentence in (*profile.biography.sentences, *profile.biography.status):
        assert set(sentence.note_ids) <= note_ids
    # asked again with nothing new: the same version, nothing written
    assert memory.profile(user_id="ana").version == profile.version


def test_a_new_value_closes_the_old_one_and_history_keeps_both(memory: Memory) -> None:
    _say(memory, HOME_TURNS[:1])
    first = memory.profile(user_id="ana", person="Ana")
    _say(memory, ["I moved to Porto last month."], start=START + timedelta(days=30))
    second = memory.profile(user_id="ana")
    assert second.version > first.version
    assert "Porto" in {a.slot: a.value for a in second.attributes}["home"]
    closed = [a for a in second.attribute_history if a.slot == "home" and a.valid_to]
    assert closed and "Lisbon" in closed[0].value
    events = memory.history(second.id)
    assert [event.action for event in events] == ["profile"] * len(events)
    assert events[0].before is None and events[-1].after is not None
    assert events[-1].after["version"] == second.version
    assert any("Lisbon" in json.dumps(event.after) for event in events)


def test_deleted_evidence_leaves_the_profile(memory: Memory) -> None:
    _say(memory, HOME_TURNS[:2])
    profile = memory.profile(user_id="ana", person="Ana")
    email = next(a for a in profile.attributes if a.slot == "email")
    memory.delete(email.note_ids[0])
    assert "email" not in _slots(memory, user_id="ana")


def test_a_purge_leaves_nothing_of_its_text_in_the_profile(memory: Memory) -> None:
    _say(memory, HOME_TURNS)
    profile = memory.profile(user_id="ana", person="Ana")
    email = next(a for a in profile.attributes if a.slot == "email")
    memory.purge(email.note_ids[0])
    again = memory.profile(user_id="ana", person="Ana")
    assert "ana.silva" not in json.dumps(to_data(again))
    for event in memory.history(profile.id):
        assert "ana.silva" not in json.dumps(to_data(event))
    assert "home" in {a.slot for a in again.attributes}  # the rest is rebuilt


def test_profiles_are_per_owner_and_per_tenant(memory: Memory) -> None:
    _say(memory, HOME_TURNS[:2])
    other = memory.as_tenant("acme")
    _say(other, ["I live in Oslo."])
    assert "Oslo" in _slots(other, user_id="ana")["home"]
    assert "Lisbon" in _slots(memory, user_id="ana")["home"]
    assert _slots(memory, user_id="bob") == {}
    with pytest.raises(ScopeRequiredError):
        memory.profile()


def test_a_damaged_saved_profile_is_rebuilt(memory: Memory) -> None:
    _say(memory, HOME_TURNS[:1])
    key = state.key_of(Scope(user_id="ana"))
    for damaged in ("{not json", '{"format": 1}', '{"format": 1, "id": 3, "version": "x"}', "[]"):
        memory.store.apply(Changes(meta={key: damaged}))
        assert "Lisbon" in _slots(memory, user_id="ana")["home"]


def test_racing_refreshes_and_adds_lose_no_note(memory: Memory) -> None:
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            for _ in range(5):
                memory.profile(user_id="ana", person="Ana")
        except BaseException as error:  # a failure in a thread must fail the test
            errors.append(error)

    threads = [threading.Thread(target=refresh) for _ in range(3)]
    for thread in threads:
        thread.start()
    _say(memory, HOME_TURNS)
    for thread in threads:
        thread.join()
    assert not errors
    assert memory.profile(user_id="ana").notes_seen == len(HOME_TURNS)


def test_context_starts_with_who_this_is(memory: Memory) -> None:
    _say(memory, HOME_TURNS)
    memory.profile(user_id="ana", person="Ana")
    context = memory.context("where does Ana live?", user_id="ana", budget_tokens=400)
    assert context.items[0].kind == "profile"
    assert context.text.startswith("Who this is")
    profile_tokens = sum(item.tokens for item in context.items if item.kind == "profile")
    assert profile_tokens <= 0.15 * 400
    without = memory.context("where does Ana live?", user_id="ana", profile_share=0)
    assert all(item.kind != "profile" for item in without.items)
    for bad in (-0.1, 1.5, float("nan"), "0.2", True):
        with pytest.raises(InvalidInputError, match="profile_share"):
            memory.context("x", user_id="ana", profile_share=bad)


def test_context_of_a_session_only_scope_has_no_profile(memory: Memory) -> None:
    memory.add("I live in Lisbon.", session_id="lonely")
    context = memory.context("where?", session_id="lonely")
    assert all(item.kind != "profile" for item in context.items)


@pytest.fixture
def server(memory: Memory) -> Iterator[str]:
    with running(create_app(memory)) as url:
        yield url


def test_the_person_over_http(memory: Memory, server: str) -> None:
    _say(memory, HOME_TURNS)
    with httpx.Client(base_url=server, timeout=30) as client:
        profile = client.get("/v1/profile", params={"user_id": "ana", "person": "Ana"})
        assert profile.status_code == 200, profile.text
        assert any(a["slot"] == "home" for a in profile.json()["attributes"])
        assert client.get("/v1/topics", params={"user_id": "ana"}).status_code == 200
        form = {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}}
        filled = client.post("/v1/fill", json={"form": form, "user_id": "ana"})
        assert filled.status_code == 200, filled.text
        assert filled.json()["value"]["email"] == "ana.silva@example.org"
        assert client.get("/v1/profile").status_code == 422  # no owner
        assert client.post("/v1/fill", json={"form": "no", "user_id": "ana"}).status_code == 422
        _, secret = create_key(memory.store, "acme")
        other = client.get(
            "/v1/profile",
            params={"user_id": "ana"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert other.status_code == 200 and other.json()["attributes"] == []


def test_the_person_on_the_command_line(tmp_path: Path) -> None:
    db = f"{tmp_path}/memory.db"
    with Memory(db, embedder=HashEmbedder()) as memory:
        _say(memory, HOME_TURNS)
    runner = CliRunner()
    env = {"REMEM_DB": db, "REMEM_EMBEDDER": "hash"}
    shown = runner.invoke(cli, ["profile", "--user", "ana", "--person", "Ana"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "Lisbon" in shown.output and "Topics" in shown.output
    as_json = runner.invoke(cli, ["profile", "--user", "ana", "--json"], env=env)
    assert json.loads(as_json.output)["person"] == "Ana"
    form = f"{tmp_path}/form.json"
    with open(form, "w", encoding="utf-8") as file:
        json.dump({"type": "object", "properties": {"email": {"type": "string"}}}, file)
    filled = runner.invoke(cli, ["fill", form, "--user", "ana", "--json"], env=env)
    assert filled.exit_code == 0, filled.output
    assert json.loads(filled.output)["value"]["email"] == "ana.silva@example.org"
    broken = f"{tmp_path}/broken.json"
    with open(broken, "wb") as file:
        file.write(b"\xff{")
    failed = runner.invoke(cli, ["fill", broken, "--user", "ana"], env=env)
    assert failed.exit_code == 1 and "not a JSON document" in failed.output


# -- with a model (the scripted OpenAI-compatible server, over real HTTP) ---------------------

NOTE_ID = re.compile(r"nt_[0-9A-Z]{26}")


def _cite_first(answer: Callable[[str], dict[str, Any]]) -> Callable[[dict[str, Any]], str]:
    """A scripted reply that cites the first note id the request shows."""

    def reply(body: dict[str, Any]) -> str:
        shown = NOTE_ID.findall(json.dumps(body))
        return json.dumps(answer(shown[0] if shown else "nt_none"))

    return reply


def test_with_a_model_the_profile_is_written_by_it_with_evidence(
    location: str, tmp_path: Path
) -> None:
    with ScriptedOpenAIServer() as model:
        model.reply(
            _cite_first(
                lambda i: {"attributes": [{"slot": "work", "value": "potter", "note_ids": [i]}]}
            ),
            when='"name": "attributes"',
            times=None,
        )
        model.reply(
            _cite_first(
                lambda i: {"name": "Home life", "description": [{"text": "Cats.", "note_ids": [i]}]}
            ),
            when='"name": "topic_name"',
            times=None,
        )
        model.reply(
            _cite_first(
                lambda i: {
                    "biography": [{"text": "Ana lives with a cat.", "note_ids": [i]}],
                    "status": [{"text": "The cat is busy.", "note_ids": ["nt_invented"]}],
                }
            ),
            when='"name": "biography"',
            times=None,
        )
        llm = OpenAICompatibleLLM(model.base_url, "scripted", timeout=5.0, backoff=0.01)
        with Memory(location, embedder=HashEmbedder(), llm=llm, jobs="worker") as memory:
            _say(memory, HOME_TURNS + CAT_TURNS)
            profile = memory.profile(user_id="ana", person="Ana")
            notes = {note.id for note in memory.list(user_id="ana").items}
            work = [a for a in profile.attributes if a.slot == "work"]
            assert work and work[0].source == "model" and set(work[0].note_ids) <= notes
            assert profile.biography.by == "model"
            assert profile.biography.text == "Ana lives with a cat."
            assert profile.biography.status == ()  # it cited a note it was not shown
            named = [topic for topic in profile.topics if topic.name == "Home life"]
            assert named and set(named[0].description[0].note_ids) <= set(named[0].note_ids)
            calls = {row[0] for row in memory.store.llm_totals()}
            assert "profile" in calls
            # nothing new: asked again, the model is not called again
            asked = len(model.chat_requests())
            assert memory.profile(user_id="ana").version == profile.version
            assert len(model.chat_requests()) == asked
            # the note the biography rests on is forgotten: the biography does not keep it
            cited = profile.biography.sentences[0].note_ids[0]
            memory.delete(cited)
            after = memory.profile(user_id="ana")
            for sentence in (*after.biography.sentences, *after.biography.status):
                assert cited not in sentence.note_ids


def test_a_failing_model_leaves_a_summary_and_says_so(
    location: str, caplog: pytest.LogCaptureFixture
) -> None:
    with ScriptedOpenAIServer() as model:
        model.fail_next(500, times=100)
        llm = OpenAICompatibleLLM(model.base_url, "scripted", timeout=5.0, backoff=0.01)
        with Memory(location, embedder=HashEmbedder(), llm=llm, jobs="worker") as memory:
            _say(memory, HOME_TURNS[:2])
            with caplog.at_level(logging.WARNING, logger="remem"):
                profile = memory.profile(user_id="ana", person="Ana")
            assert profile.biography.by == "summary" and profile.biography.text
            assert "Lisbon" in {a.slot: a.value for a in profile.attributes}["home"]
            assert "model step failed" in caplog.text


def test_a_form_is_filled_from_the_persons_own_words_only(memory: Memory) -> None:
    for name, text in (
        ("Bo", "Write to me at bo@example.org, my address."),
        ("Ana", "I live in Lisbon."),
    ):
        memory.add([{"role": "user", "name": name, "content": text}], user_id="u")
    memory.profile(user_id="u", person="Ana")
    form = {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}}
    filled = memory.fill(form, user_id="u")
    assert filled.value.get("email") is None
    assert filled.fields[0].confidence == 0


def test_a_forgotten_note_leaves_the_next_context_at_once(memory: Memory) -> None:
    _say(memory, ["I live in Lisbon.", "Our cat Miso is called Miso."])
    memory.profile(user_id="ana", person="Ana")
    assert "Lisbon" in memory.context("home?", user_id="ana", memories=0).text
    home = next(a for a in memory.profile(user_id="ana").attributes if a.slot == "home")
    memory.delete(home.note_ids[0])
    assert "Lisbon" not in memory.context("home?", user_id="ana", memories=0).text


def test_what_the_person_set_themselves_is_marked_theirs(memory: Memory) -> None:
    _say(memory, ["I live in Lisbon."])
    memory.add("I live in Porto.", user_id="ana", metadata={"source": "person", "slot": "home"})
    home = next(
        a for a in memory.profile(user_id="ana", person="Ana").attributes if a.slot == "home"
    )
    assert home.value == "Porto" and home.source == "person" and home.confidence == 1.0


def test_a_users_purge_drops_their_profile_with_each_agent(memory: Memory) -> None:
    memory.add(
        [{"role": "user", "content": "Mail me at ana@example.org, I live in Lisbon."}],
        user_id="ana",
        agent_id="helper",
    )
    both = memory.profile(user_id="ana", agent_id="helper")
    assert both.attributes
    memory.purge_all(user_id="ana")
    assert "ana@example.org" not in json.dumps(memory.store.get_meta(state.key_of(both.scope)))
    for event in memory.history(both.id):
        assert "ana@example.org" not in json.dumps(to_data(event))


def test_imported_chats_speak_as_the_user_without_a_name_given(memory: Memory) -> None:
    memory.add(
        [
            {"role": "user", "name": "Alice Smith", "content": "I live in Lisbon."},
            {"role": "assistant", "name": "Bob", "content": "I live in Oslo."},
        ],
        user_id="alice",
    )
    profile = memory.profile(user_id="alice", rebuild=True)
    assert {a.slot: a.value for a in profile.attributes}.get("home") == "Lisbon"


def test_reading_an_unknown_profile_writes_nothing(memory: Memory) -> None:
    profile = memory.profile(user_id="nobody")
    assert profile.version == 0 and memory.store.get_meta(state.key_of(profile.scope)) is None
    with pytest.raises(ScopeRequiredError, match="user_id or agent_id"):
        memory.profile(agent_id="")


def test_a_quiet_refresh_writes_no_history(memory: Memory) -> None:
    _say(memory, HOME_TURNS[:1])
    profile = memory.profile(user_id="ana", person="Ana")
    _say(memory, ["Miso the cat sleeps on the laptop."], start=START + timedelta(days=1))
    memory.profile(user_id="ana")
    events = memory.history(profile.id)
    assert len(events) <= 2
    assert all(event.after and "attributes" in event.after for event in events)
