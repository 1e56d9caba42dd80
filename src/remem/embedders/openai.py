"""Embeddings from any OpenAI-compatible `/embeddings` endpoint (OpenAI, Ollama, vLLM, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import httpx
import numpy as np

from remem.embedders.base import Embedder, Vectors, normalise
from remem.errors import EmbedderError
from remem.http_retry import GaveUp, Refused, send_with_retries


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
        backoff: float = 1.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model_id = f"openai:{model}"
        self._model = model
        self._batch_size = batch_size
        self._attempts = attempts
        self._backoff = backoff  # seconds before the first retry, doubling after
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
        send = partial(self._client.post, "embeddings", json={"model": self._model, "input": texts})
        try:
            return send_with_retries(
                send,
                partial(_parse, count=len(texts)),
                attempts=self._attempts,
                backoff=self._backoff,
            )
        except Refused as refused:
            raise EmbedderError(f"embeddings endpoint answered {refused}") from None
        except GaveUp as failure:
            raise EmbedderError(f"embeddings endpoint {failure}") from None

    def close(self) -> None:
        self._client.close()


def _parse(response: httpx.Response, count: int) -> Vectors:
    try:
        data = sorted(response.json()["data"], key=lambda item: item["index"])
        matrix = np.array([item["embedding"] for item in data], dtype=np.float32)
    except (ValueError, KeyError, TypeError) as error:
        raise EmbedderError(f"embeddings endpoint answered an unexpected body: {error}") from error
    return normalise(matrix, expected_rows=count)
