"""The chat proxy, driven by the official `openai` client over real HTTP: the upstream gets
the remembered facts in its system prompt and the turns are remembered."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from remem import Memory
from remem.keys import create_key
from remem.server.app import create_app
from remem.server.proxy import Upstream
from remem.testing import ScriptedOpenAIServer
from remem.testing.http import running


@pytest.fixture
def upstream() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer() as server:
        yield server


@pytest.fixture
def proxy(memory: Memory, upstream: ScriptedOpenAIServer) -> Iterator[str]:
    app = create_app(memory, upstream=Upstream(upstream.base_url, api_key="up-key"))
    with running(app) as url:
        yield url


def _client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def test_upstream_gets_the_memories_and_the_turns_are_kept(
    memory: Memory, upstream: ScriptedOpenAIServer, proxy: str
) -> None:
    memory.add("I am allergic to peanuts.", user_id="ana", occurred_at="2024-03-02T10:00:00Z")
    upstream.reply("Try the lentil curry; it has no peanuts.")
    answer = _client(proxy).chat.completions.create(
        model="gpt-test",
        messages=[
            {"role": "system", "content": "You are a cook."},
            {"role": "user", "content": "What should I cook with my peanut allergy?"},
        ],
        user="ana",
    )
    assert answer.choices[0].message.content == "Try the lentil curry; it has no peanuts."
    sent = upstream.chat_requests()[-1]
    system = sent["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You are a cook.")
    assert "[2024-03-02] I am allergic to peanuts." in system["content"]
    assert sent["model"] == "gpt-test"
    kept = [hit.text for hit in memory.search("lentil curry peanut allergy", user_id="ana")]
    assert "Try the lentil curry; it has no peanuts." in kept
    assert "What should I cook with my peanut allergy?" in kept


def test_streaming_is_relayed_and_remembered(
    memory: Memory, upstream: ScriptedOpenAIServer, proxy: str
) -> None:
    memory.add("My daughter is called Lia.", user_id="ana")
    upstream.reply("Lia will love the zoo.")
    stream = _client(proxy).chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "Where should I take my daughter Lia?"}],
        stream=True,
        extra_headers={"X-Remem-User": "ana", "X-Remem-Session": "today"},
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "Lia will love the zoo."
    first = upstream.chat_requests()[-1]["messages"][0]
    assert first["role"] == "system" and "My daughter is called Lia." in first["content"]
    recent = memory.list(user_id="ana", session_id="today").items
    assert [note.text for note in recent] == [
        "Where should I take my daughter Lia?",
        "Lia will love the zoo.",
    ]


def test_the_key_decides_the_tenant(memory: Memory, upstream: ScriptedOpenAIServer, proxy: str):
    memory.as_tenant("acme").add("Ana's badge number is 4471.", user_id="ana")
    _, acme = create_key(memory.store, "acme")
    _, other = create_key(memory.store, "other")
    for key, expected in ((acme, True), (other, False)):
        _client(proxy, key).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "my badge number?"}], user="ana"
        )
        system = upstream.chat_requests()[-1]["messages"][0]
        assert ("4471" in system["content"]) is expected


def test_a_request_without_a_user_or_with_the_upstream_down_is_refused(
    memory: Memory, proxy: str
) -> None:
    with pytest.raises(openai.UnprocessableEntityError, match="X-Remem-User"):
        _client(proxy).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    app = create_app(memory, upstream=Upstream("http://127.0.0.1:9/v1"))
    with running(app) as url:
        answer = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "ana"},
        )
    assert answer.status_code == 502 and "upstream" in answer.json()["error"]["message"]
    assert memory.list(user_id="ana").items == ()  # nothing answered, nothing remembered


def test_upstream_errors_are_passed_through(upstream: ScriptedOpenAIServer, proxy: str) -> None:
    upstream.fail_next(429)
    with pytest.raises(openai.RateLimitError):
        _client(proxy).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], user="ana"
        )
