"""Any OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM, llama.cpp server) as an `LLM`.

Structured output is asked for with a strict `response_format: json_schema`, so a server
that can (OpenAI) enforces the schema rather than hoping for it. A server that refuses the
strict form gets the plain one, and a server that refuses json_schema (llama.cpp's, older
vLLM) gets `json_object` plus the schema in the prompt, each from then on.
Timeouts, transient HTTP errors and answers that do not validate are retried with backoff.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from typing import Any

import httpx

from remem.errors import LLMError
from remem.http_retry import GaveUp, Refused, send_with_retries
from remem.llms.base import Generation, M, Usage

log = logging.getLogger("remem.llm")


class OpenAICompatibleLLM:
    """POSTs to `{base_url}/chat/completions` and validates the JSON it answers."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        attempts: int = 3,
        timeout: float = 60.0,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model_id = model
        self._attempts = attempts
        self._backoff = backoff
        self._json_schema = True  # until the server says it cannot
        self._strict = True  # likewise
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    def generate(self, name: str, system: str, user: str, schema: type[M]) -> Generation[M]:
        calls: list[Usage] = []  # one per call made, failed ones included
        send = partial(self._send, name, system, user, schema, calls)
        try:
            value = send_with_retries(
                send, partial(_validated, schema), attempts=self._attempts, backoff=self._backoff
            )
        except Refused as refused:
            raise LLMError(f"{name}: the model answered {refused}", _total(calls)) from None
        except GaveUp as failure:
            raise LLMError(
                f"{name}: no valid answer after {self._attempts} attempts; last: {failure.last}",
                _total(calls),
            ) from None
        return Generation(value, _total(calls))

    def _send(
        self, name: str, system: str, user: str, schema: type[M], calls: list[Usage]
    ) -> httpx.Response:
        """One call, counted in `calls`; a refused response_format is asked again at once in
        a plainer form, within the same call."""
        started = time.perf_counter()
        try:
            answer = self._post(name, system, user, schema)
            while answer.status_code == 400 and "response_format" in answer.text:
                if not self._relax():
                    break
                answer = self._post(name, system, user, schema)
        except httpx.HTTPError:
            calls.append(Usage(calls=1, latency_ms=_ms(started)))
            raise
        call = _usage(answer, started)
        calls.append(call)
        log.info(
            "llm %s step=%s status=%d tokens=%d+%d ms=%.0f",
            self.model_id,
            name,
            answer.status_code,
            call.prompt_tokens,
            call.completion_tokens,
            call.latency_ms,
        )
        return answer

    def _relax(self) -> bool:
        """Ask for plainer structured output from now on: strict json_schema, then plain
        json_schema, then json_object; False when nothing plainer is left."""
        if self._strict:
            self._strict = False
            log.info("%s: server refused a strict json_schema; asking without", self.model_id)
            return True
        if self._json_schema:
            self._json_schema = False
            log.info("%s: server refused json_schema; using json_object", self.model_id)
            return True
        return False

    def _post(self, name: str, system: str, user: str, schema: type[M]) -> httpx.Response:
        return self._client.post("chat/completions", json=self._request(name, system, user, schema))

    def _request(self, name: str, system: str, user: str, schema: type[M]) -> dict[str, Any]:
        json_schema = schema.model_json_schema()
        if self._json_schema:
            asked: dict[str, Any] = {"name": name, "schema": json_schema}
            if self._strict:
                asked.update(schema=strict_schema(json_schema), strict=True)
            response_format: dict[str, Any] = {"type": "json_schema", "json_schema": asked}
        else:
            response_format = {"type": "json_object"}
            system += "\n\nAnswer with one JSON object matching this JSON schema:\n" + json.dumps(
                json_schema
            )
        return {
            "model": self.model_id,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": response_format,
            "temperature": 0,
        }

    def close(self) -> None:
        self._client.close()


# Keywords strict mode refuses; the answer is still validated against the full model here.
_NOT_STRICT = frozenset({"default", "minLength", "maxLength"})


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` as OpenAI's strict mode wants it: every object closed
    (`additionalProperties: false`) with all its properties required (an optional field
    already allows null), and no keyword strict mode refuses."""
    strict = _strict(schema)
    assert isinstance(strict, dict)
    return strict


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    walked: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "$defs") and isinstance(value, dict):
            walked[key] = {name: _strict(child) for name, child in value.items()}  # names, kept
        elif key not in _NOT_STRICT:
            walked[key] = _strict(value)
    if isinstance(walked.get("properties"), dict):
        walked["additionalProperties"] = False
        walked["required"] = list(walked["properties"])
    return walked


def _validated(schema: type[M], answer: httpx.Response) -> M:
    """The answer's content as `schema`; a ValueError (ValidationError is one) asks again."""
    return schema.model_validate_json(_content(answer))


def _total(calls: list[Usage]) -> Usage:
    return sum(calls, Usage())


def _content(answer: httpx.Response) -> str:
    try:
        return str(answer.json()["choices"][0]["message"]["content"])
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise ValueError(f"not a chat completion: {error}") from None


def _usage(answer: httpx.Response, started: float) -> Usage:
    try:
        counts = answer.json().get("usage") or {}
    except ValueError:
        counts = {}
    return Usage(
        calls=1,
        prompt_tokens=int(counts.get("prompt_tokens") or 0),
        completion_tokens=int(counts.get("completion_tokens") or 0),
        latency_ms=_ms(started),
    )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
