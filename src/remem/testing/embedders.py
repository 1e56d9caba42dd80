"""Embedders for tests: the deterministic `HashEmbedder`, and one that fails on demand."""

from __future__ import annotations

from collections.abc import Sequence

from remem.embedders.base import Embedder, Vectors
from remem.embedders.hashing import HashEmbedder
from remem.errors import EmbedderError

__all__ = ["FailingEmbedder", "HashEmbedder"]


class FailingEmbedder(Embedder):
    """Wraps an embedder and fails while `failing` is true, like a model server that is down."""

    def __init__(self, inner: Embedder, *, failing: bool = True) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.failing = failing
        self.calls = 0

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        if self.failing:
            raise EmbedderError("embedding server unavailable (FailingEmbedder)")
        return self.inner.embed_batch(texts)
