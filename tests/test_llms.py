"""The OpenAI-compatible LLM backend: structured output, fallback, retries. One test talks
real HTTP to `ScriptedOpenAIServer`; the rest run in-process on `ScriptedTransport`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from remem import ConfigError, LLMError
from remem.config import Settings
from remem.llms import OpenAICompatibleLLM, create_llm
from remem.llms.openai import strict_schema
from remem.testing import ScriptedOpenAIServer, ScriptedTransport
from remem.write import prompts


class Answer(BaseModel):
    city: str


def _llm(model: ScriptedTransport, timeout: float = 2.0, attempts: int = 3) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(
        model.base_url, "m", transport=model, backoff=0, timeout=timeout, attempts=attempts
    )


def _formats(model: ScriptedTransport) -> list[str]:
    """The response_format type of each chat request, in order."""
    return [body["response_format"]["type"] for body in model.chat_requests()]


def test_asks_with_a_json_schema_and_validates_the_answer_over_http() -> None:
    with ScriptedOpenAIServer() as server:
        server.reply('{"city": "Lisbon"}')
        llm = OpenAICompatibleLLM(server.base_url, "m", "sk-test", backoff=0.01, timeout=2)
        answer = llm.generate("where", "system text", "user text", Answer)
        sent = server.chat_requests()[0]
    assert answer.value == Answer(city="Lisbon")
    assert answer.usage.calls == 1 and answer.usage.tokens > 0
    assert sent["model"] == "m" and sent["temperature"] == 0
    assert [m["content"] for m in sent["messages"]] == ["system text", "user text"]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "where"
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["city"]
    assert sent["response_format"]["json_schema"]["strict"] is True


def _strictly_refusing(request: httpx.Request) -> httpx.Response:
    """A server that takes json_schema but refuses strict mode (as some vLLM versions do)."""
    body = json.loads(request.content)
    if body["response_format"]["json_schema"].get("strict"):
        return httpx.Response(400, json={"error": {"message": "response_format strict: no"}})
    message = {"role": "assistant", "content": '{"city": "Evora"}'}
    return httpx.Response(200, json={"choices": [{"index": 0, "message": message}]})


def test_a_refused_strict_schema_is_asked_again_without_strict() -> None:
    transport = httpx.MockTransport(_strictly_refusing)
    llm = OpenAICompatibleLLM("http://model/v1", "m", transport=transport, backoff=0)
    first = llm.generate("where", "s", "u", Answer)
    second = llm.generate("where", "s", "u", Answer)
    assert first.value.city == second.value.city == "Evora"
    assert first.usage.calls == 1 and second.usage.calls == 1


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every object schema inside `node`."""
    if isinstance(node, list):
        for item in node:
            yield from _objects(item)
    elif isinstance(node, dict):
        if "properties" in node:
            yield node
        for key, value in node.items():
            children = value.values() if key in ("properties", "$defs") else [value]
            for child in children:
                yield from _objects(child)


@pytest.mark.parametrize(
    "answer",
    [prompts.Extracted, prompts.Reconciled, prompts.Enriched, prompts.Linked, prompts.Evolved],
)
def test_every_pipeline_answer_has_a_strict_valid_schema(answer: type[BaseModel]) -> None:
    schema = strict_schema(answer.model_json_schema())
    objects = list(_objects(schema))
    assert len(objects) == 2  # the answer and the item it lists
    for found in objects:
        assert found["additionalProperties"] is False
        assert found["required"] == list(found["properties"])
    text = json.dumps(schema)
    assert '"default"' not in text and "minLength" not in text and "maxLength" not in text


def test_optional_fields_stay_nullable_in_strict_mode() -> None:
    schema = strict_schema(prompts.Evolved.model_json_schema())
    evolution = schema["$defs"]["Evolution"]
    assert {"type": "null"} in evolution["properties"]["context"]["anyOf"]
    assert evolution["required"] == ["note_id", "context", "tags"]


def test_falls_back_to_json_object_when_json_schema_is_refused() -> None:
    model = ScriptedTransport(json_schema=False)
    model.reply('{"city": "Porto"}', '{"city": "Faro"}')
    llm = _llm(model)
    first = llm.generate("where", "system text", "u", Answer)
    second = llm.generate("where", "system text", "u", Answer)
    assert (first.value.city, second.value.city) == ("Porto", "Faro")
    # strict refused, then json_schema refused: json_object from then on
    assert _formats(model) == ["json_schema", "json_schema", "json_object", "json_object"]
    assert first.usage.calls == 1  # the refused requests and the retry count as one call
    sent = model.chat_requests()
    assert [body["response_format"].get("json_schema", {}).get("strict") for body in sent] == [
        True,
        None,
        None,
        None,
    ]
    assert '"city"' in sent[2]["messages"][0]["content"]  # the schema travels in the prompt
    assert '"city"' not in sent[0]["messages"][0]["content"]


def test_retries_transient_errors_and_invalid_answers() -> None:
    model = ScriptedTransport()
    model.fail_next(503)
    model.reply('{"town": "x"}', '{"city": "Braga"}')  # the first does not validate
    answer = _llm(model).generate("where", "s", "u", Answer)
    assert answer.value.city == "Braga" and answer.usage.calls == 3
    assert len(model.requests) == 3


def test_a_timeout_is_retried_and_its_time_counted() -> None:
    model = ScriptedTransport()
    model.slow_next(5.0)  # longer than the client waits
    model.reply('{"city": "Faro"}')
    answer = _llm(model, timeout=0.05).generate("where", "s", "u", Answer)
    assert answer.value.city == "Faro"
    assert answer.usage.calls == 2 and answer.usage.latency_ms >= 50
    assert len(model.requests) == 2


def test_gives_up_with_the_last_error() -> None:
    model = ScriptedTransport()
    model.reply("still not json", times=None)
    with pytest.raises(LLMError, match="no valid answer after 3 attempts.*invalid answer"):
        _llm(model).generate("where", "s", "u", Answer)
    assert len(model.requests) == 3


def test_a_model_that_stays_down_costs_every_attempt() -> None:
    model = ScriptedTransport()
    model.fail_next(502, times=4)
    with pytest.raises(LLMError, match="after 4 attempts; last: HTTP 502") as failure:
        _llm(model, attempts=4).generate("where", "s", "u", Answer)
    usage = failure.value.usage
    assert usage is not None and usage.calls == 4 and usage.tokens == 0
    assert len(model.requests) == 4


def test_client_errors_are_not_retried() -> None:
    model = ScriptedTransport()
    model.fail_next(401)
    with pytest.raises(LLMError, match="where: the model answered HTTP 401") as failure:
        _llm(model).generate("where", "s", "u", Answer)
    assert len(model.requests) == 1
    assert failure.value.usage is not None and failure.value.usage.calls == 1


def test_settings_make_a_model_or_none() -> None:
    assert create_llm(Settings()) is None
    with pytest.raises(ConfigError, match="REMEM_LLM_MODEL"):
        create_llm(Settings(llm_base_url="http://127.0.0.1:9/v1"))
    made = create_llm(Settings(llm_base_url="http://127.0.0.1:9/v1", llm_model="m"))
    assert made is not None and made.model_id == "m"
