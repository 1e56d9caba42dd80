"""The chat proxy, driven by the official `openai` client over real HTTP: the upstream gets
the remembered facts in its system prompt and the turns are remembered. The last tests run
the app in-process with the upstream on `ScriptedTransport`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from remem import Memory
from remem.keys import create_key
from remem.server.app import create_app
from remem.server.proxy import Upstream
from remem.testing import ScriptedOpenAIServer, ScriptedTransport
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
    # the dated memory reaches the model (how context() words a line is tested in test_context)
    remembered = [line for line in system["content"].splitlines() if "allergic" in line]
    assert remembered and "2024-03-02" in remembered[0]
    assert remembered[0].endswith("I am allergic to peanuts.")
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


def _ask(memory: Memory, upstream: Upstream, body: dict[str, Any] | bytes) -> httpx.Response:
    """One request to the proxy, in-process (no socket); bytes are sent as they are."""
    app = create_app(memory, upstream=upstream)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            headers = {"Content-Type": "application/json"}
            return await client.post("/v1/chat/completions", content=raw, headers=headers)

    return asyncio.run(send())


def _question(text: str, **fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], "user": "ana", **fields}


@pytest.mark.parametrize("stream", [False, True])
def test_the_proxy_forwards_to_a_scripted_transport(memory: Memory, stream: bool) -> None:
    memory.add("Ana's bike is a green Brompton.", user_id="ana")
    model = ScriptedTransport()
    model.reply("Your green Brompton folds.")
    answer = _ask(
        memory, Upstream(model.base_url, transport=model), _question("my bike?", stream=stream)
    )
    assert answer.status_code == 200
    if stream:
        events = [line[5:] for line in answer.text.splitlines() if line.startswith("data:")]
        assert events[-1].strip() == "[DONE]"
        text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    else:
        text = answer.json()["choices"][0]["message"]["content"]
    assert text == "Your green Brompton folds."
    (sent,) = model.chat_requests()
    assert "green Brompton" in sent["messages"][0]["content"] and sent["stream"] is stream
    kept = [note.text for note in memory.list(user_id="ana").items]
    assert kept[-2:] == ["my bike?", "Your green Brompton folds."]


def test_an_upstream_that_fails_or_times_out_leaves_nothing_remembered(memory: Memory) -> None:
    model = ScriptedTransport()
    model.fail_next(503)
    failed = _ask(memory, Upstream(model.base_url, transport=model), _question("hello?"))
    model.slow_next(5.0)
    late = _ask(memory, Upstream(model.base_url, timeout=0.05, transport=model), _question("hi?"))
    assert failed.status_code == 503  # the upstream's own error, passed through
    assert failed.json()["error"]["message"] == "scripted failure 503"
    assert late.status_code == 502 and "upstream" in late.json()["error"]["message"]
    assert len(model.chat_requests()) == 2  # the proxy does not retry
    assert memory.list(user_id="ana").items == ()


BAD_REQUESTS = {
    "NUL in the message": _question("my\x00bike?"),
    "NUL in a text part": _question([{"type": "text", "text": "my\x00bike?"}]),
    "NUL in a name": {
        **_question("hi"),
        "messages": [{"role": "user", "content": "hi", "name": "a\x00"}],
    },
    "no user": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    "a blank user": _question("hi", user="  "),
    "a message without a role": {**_question("hi"), "messages": [{"content": "hi"}]},
    "stream is not a boolean": _question("hi", stream="yes"),
    "a lone surrogate": b'{"messages": [{"role": "user", "content": "a\\ud800"}], "user": "ana"}',
    "NaN": b'{"messages": [{"role": "user", "content": "hi"}], "user": "ana", "top_p": NaN}',
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("problem", sorted(BAD_REQUESTS))
def test_a_bad_request_is_refused_before_the_model_is_asked(
    memory: Memory, problem: str, stream: bool
) -> None:
    body = BAD_REQUESTS[problem]
    if stream and isinstance(body, bytes):
        body = body.replace(b', "user"', b', "stream": true, "user"')
    elif stream:
        body = {"stream": True, **body}
    model = ScriptedTransport()
    answer = _ask(memory, Upstream(model.base_url, transport=model), body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["message"]
    assert model.requests == []  # the model was never asked
    assert memory.list(user_id="ana").items == ()


def test_a_nul_in_the_model_s_streamed_answer_does_not_break_the_stream(memory: Memory) -> None:
    model = ScriptedTransport()
    model.reply("Your bike\x00 is green.")
    upstream = Upstream(model.base_url, transport=model)
    answer = _ask(memory, upstream, _question("my bike?", stream=True))
    assert answer.status_code == 200 and answer.text.rstrip().endswith("data: [DONE]")
    kept = [note.text for note in memory.list(user_id="ana").items]
    assert kept == ["my bike?", "Your bike is green."]


@pytest.mark.parametrize(
    "content", [b"<html>busy</html>", b"\xff\xfe not UTF-8", b'{"choices": [', b""]
)
def test_an_unreadable_answer_of_the_model_is_a_502(memory: Memory, content: bytes) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=content, headers={"Content-Type": "text/html"})

    model = httpx.MockTransport(reply)
    answer = _ask(memory, Upstream("http://model.test/v1", transport=model), _question("hi?"))
    assert answer.status_code == 502
    assert "not JSON" in answer.json()["error"]["message"]
    assert memory.list(user_id="ana").items == ()


def test_an_upstream_error_that_is_not_json_comes_back_as_json(memory: Memory) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, content=b"<html>down for maintenance</html>")

    model = httpx.MockTransport(reply)
    answer = _ask(memory, Upstream("http://model.test/v1", transport=model), _question("hi?"))
    assert answer.status_code == 503
    assert "down for maintenance" in answer.json()["error"]["message"]
