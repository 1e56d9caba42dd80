"""The OpenAI-compatible LLM backend over real HTTP: structured output, fallback, retries."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from remem import ConfigError, LLMError
from remem.config import Settings
from remem.llms import OpenAICompatibleLLM, create_llm
from remem.testing import ScriptedOpenAIServer


class Answer(BaseModel):
    city: str


def _llm(server: ScriptedOpenAIServer) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(server.base_url, "m", backoff=0.01, timeout=2)


def test_asks_with_a_json_schema_and_validates_the_answer() -> None:
    with ScriptedOpenAIServer() as server:
        server.reply('{"city": "Lisbon"}')
        answer = _llm(server).generate("where", "system text", "user text", Answer)
        sent = server.chat_requests()[0]
    assert answer.value == Answer(city="Lisbon")
    assert answer.usage.calls == 1 and answer.usage.tokens > 0
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "where"
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["city"]


def test_falls_back_to_json_object_when_json_schema_is_refused() -> None:
    with ScriptedOpenAIServer(json_schema=False) as server:
        server.reply('{"city": "Porto"}', '{"city": "Faro"}')
        llm = _llm(server)
        assert llm.generate("where", "system text", "u", Answer).value.city == "Porto"
        assert llm.generate("where", "system text", "u", Answer).value.city == "Faro"
        sent = server.chat_requests()
    assert [r["response_format"]["type"] for r in sent] == [
        "json_schema",
        "json_object",
        "json_object",
    ]
    assert '"city"' in sent[1]["messages"][0]["content"]  # the schema travels in the prompt


def test_retries_transient_errors_and_invalid_answers() -> None:
    with ScriptedOpenAIServer() as server:
        server.fail_next(503)
        server.reply('{"town": "x"}', '{"city": "Braga"}')  # the first does not validate
        answer = _llm(server).generate("where", "s", "u", Answer)
    assert answer.value.city == "Braga" and answer.usage.calls == 3


def test_gives_up_with_the_last_error() -> None:
    with ScriptedOpenAIServer() as server:
        server.reply("still not json", times=None)
        with pytest.raises(LLMError, match="no valid answer after 3 attempts") as failure:
            _llm(server).generate("where", "s", "u", Answer)
    assert failure.value.usage is not None and failure.value.usage.calls == 3


def test_client_errors_are_not_retried() -> None:
    with ScriptedOpenAIServer() as server:
        server.fail_next(401)
        with pytest.raises(LLMError, match="HTTP 401"):
            _llm(server).generate("where", "s", "u", Answer)
        assert len(server.chat_requests()) == 1


def test_settings_make_a_model_or_none() -> None:
    assert create_llm(Settings()) is None
    with pytest.raises(ConfigError, match="REMEM_LLM_MODEL"):
        create_llm(Settings(llm_base_url="http://127.0.0.1:9/v1"))
    made = create_llm(Settings(llm_base_url="http://127.0.0.1:9/v1", llm_model="m"))
    assert made is not None and made.model_id == "m"
