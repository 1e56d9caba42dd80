"""The embedder protocol: one required method, `embed_batch`; the rest is built on it
(`embed_with_spans` may be overridden by a model that can do it for less)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from remem.errors import EmbedderError

Vectors = npt.NDArray[np.float32]
# A character range [start, end) of a text, such as one of its sentences.
Span = tuple[int, int]


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors.

    `model_id` names the vector space: vectors from two embedders with different ids must
    never be compared, so a memory remembers the id it was built with.
    """

    model_id: str

    @abstractmethod
    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """One row per text, shape (len(texts), dimensions)."""

    def embed(self, text: str) -> Vectors:
        """One text as a 1-d vector."""
        vector: Vectors = self.embed_batch([text])[0]
        return vector

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]]
    ) -> tuple[Vectors, list[Vectors]]:
        """Each text's vector, and one for each of its spans (a note's sentences, ordered
        character ranges), shape (len(spans[i]), dimensions). Here the texts and the spans
        are embedded in one batch, each span as a text of its own; a local model can do
        better (the bundled one builds the text's vector from its spans' passes)."""
        if len(spans) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(spans)} lists of spans")
        pieces = [
            text[begin:end]
            for text, ranges in zip(texts, spans, strict=True)
            for begin, end in ranges
        ]
        matrix = self.embed_batch([*texts, *pieces])
        vectors, row, split = matrix[: len(texts)], len(texts), []
        for ranges in spans:
            split.append(matrix[row : row + len(ranges)])
            row += len(ranges)
        return vectors, split

    def close(self) -> None:  # noqa: B027 - optional hook, most embedders hold nothing
        """Release what the embedder holds."""


def normalise(matrix: npt.NDArray[np.floating], *, expected_rows: int) -> Vectors:
    """Check the shape of a model's output and scale each row to unit length."""
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != expected_rows:
        raise EmbedderError(f"embedder returned shape {matrix.shape} for {expected_rows} texts")
    if not np.all(np.isfinite(matrix)):
        raise EmbedderError("embedder returned a vector with NaN or infinite values")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: Vectors = (matrix / norms).astype(np.float32)
    return unit
