"""The retry policy both OpenAI-compatible backends share, on `ScriptedTransport`."""

from __future__ import annotations

from functools import partial

import httpx
import pytest

from remem.http_retry import GaveUp, Refused, send_with_retries
from remem.testing import ScriptedTransport


def _post(model: ScriptedTransport, timeout: float = 2.0) -> partial[httpx.Response]:
    client = httpx.Client(base_url=model.base_url + "/", transport=model, timeout=timeout)
    return partial(client.post, "chat/completions", json={"messages": []})


def _content(response: httpx.Response) -> str:
    return str(response.json()["choices"][0]["message"]["content"])


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    model = ScriptedTransport()
    model.fail_next(status, times=2)
    model.reply("fine")
    assert send_with_retries(_post(model), _content, attempts=3, backoff=0) == "fine"
    assert len(model.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_other_statuses_are_final(status: int) -> None:
    model = ScriptedTransport()
    model.fail_next(status)
    with pytest.raises(Refused, match=f"HTTP {status}: .*scripted failure") as refused:
        send_with_retries(_post(model), _content, attempts=3, backoff=0)
    assert refused.value.status_code == status and len(model.requests) == 1


def test_an_answer_read_rejects_is_asked_again() -> None:
    model = ScriptedTransport()
    model.reply("no", "no", "yes")

    def read(response: httpx.Response) -> str:
        if _content(response) != "yes":
            raise ValueError("not yes")
        return "yes"

    assert send_with_retries(_post(model), read, attempts=3, backoff=0) == "yes"
    assert len(model.requests) == 3


@pytest.mark.parametrize(
    ("scripted_failures", "last"),
    [(["timeout", "timeout"], "ReadTimeout"), (["timeout", "503"], "HTTP 503")],
)
def test_gives_up_with_the_last_failure_after_every_attempt(
    scripted_failures: list[str], last: str
) -> None:
    model = ScriptedTransport()
    model.slow_next(5.0, times=scripted_failures.count("timeout"))  # outlasts the client
    model.fail_next(503, times=scripted_failures.count("503"))  # answered after the waits
    with pytest.raises(GaveUp, match=f"failed 2 times; last: {last}") as gave_up:
        send_with_retries(_post(model, timeout=0.05), _content, attempts=2, backoff=0)
    assert gave_up.value.attempts == 2 and len(model.requests) == 2
