"""The retry policy both OpenAI-compatible backends (LLM and embedder) share.

    answer = send_with_retries(partial(client.post, "embeddings", json=body), parse,
                               attempts=3, backoff=0.5)

Transport errors and transient statuses are retried with exponential backoff; any other
status is final. Each backend turns `Refused` and `GaveUp` into its own error type.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx

T = TypeVar("T")

# Transient answers worth another try; anything else is the caller's mistake.
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class Refused(Exception):
    """The server answered a status another try would not change."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}: {response.text[:200]}")
        self.status_code = response.status_code
        self.text = response.text[:200]


class GaveUp(Exception):
    """Every attempt failed; `last` says how the last one did."""

    def __init__(self, attempts: int, last: str) -> None:
        super().__init__(f"failed {attempts} times; last: {last}")
        self.attempts = attempts
        self.last = last


def send_with_retries(
    send: Callable[[], httpx.Response],
    read: Callable[[httpx.Response], T],
    *,
    attempts: int,
    backoff: float,
) -> T:
    """`read(send())` for the first 200 answer. Retries transport errors, RETRYABLE_STATUS
    answers and answers `read` rejects with a ValueError, waiting `backoff * 2**(n - 1)`
    seconds before retry n. Raises `Refused` on any other status, `GaveUp` when no attempt
    is left."""
    last = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            response = send()
        except httpx.HTTPError as failure:
            last = f"{type(failure).__name__}: {failure}"
            continue
        if response.status_code in RETRYABLE_STATUS:
            last = f"HTTP {response.status_code}: {response.text[:200]}"
            continue
        if response.status_code != 200:
            raise Refused(response)
        try:
            return read(response)
        except ValueError as invalid:
            last = f"invalid answer: {str(invalid)[:300]}"
    raise GaveUp(attempts, last)
