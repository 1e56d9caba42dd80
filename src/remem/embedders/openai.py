"""Embeddings from any OpenAI-compatible `/embeddings` endpoint (OpenAI, Ollama, vLLM, ...)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx
import numpy as np

from remem.embedders.base import Embedder, Vectors, normalise
from remem.errors import EmbedderError

# Transient answers worth another try; anything else is the caller's mistake.
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAIEmbedder(Embedder):
    """POSTs batches to `{base_url}/embeddings`; retries transient failures with backoff."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        batch_size: int = 128,
        attempts: int = 3,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model_id = f"openai:{model}"
        self._model = model
        self._batch_size = batch_size
        self._attempts = attempts
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        rows: list[Vectors] = [
            self._request(list(texts[start : start + self._batch_size]))
            for start in range(0, len(texts), self._batch_size)
        ]
        return np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def _request(self, texts: list[str]) -> Vectors:
        error = "no attempt made"
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(0.5 * 2**attempt)
            try:
                response = self._client.post(
                    "embeddings", json={"model": self._model, "input": texts}
                )
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: {failure}"
                continue
            if response.status_code in RETRYABLE_STATUS:
                error = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code != 200:
                status, body = response.status_code, response.text[:200]
                raise EmbedderError(f"embeddings endpoint answered HTTP {status}: {body}")
            return _parse(response, len(texts))
        raise EmbedderError(f"embeddings endpoint failed {self._attempts} times; last: {error}")

    def close(self) -> None:
        self._client.close()


def _parse(response: httpx.Response, count: int) -> Vectors:
    try:
        data = sorted(response.json()["data"], key=lambda item: item["index"])
        matrix = np.array([item["embedding"] for item in data], dtype=np.float32)
    except (ValueError, KeyError, TypeError) as error:
        raise EmbedderError(f"embeddings endpoint answered an unexpected body: {error}") from error
    return normalise(matrix, expected_rows=count)
