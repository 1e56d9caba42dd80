"""A deterministic embedder: fast, offline, and similar texts get similar vectors.

Not a model of meaning: it is for tests and for trying remem without loading a model
(`REMEM_EMBEDDER=hash`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from remem.embedders.base import Embedder, Vectors, normalise

_WORD = re.compile(r"\w+")


class HashEmbedder(Embedder):
    """Feature hashing of lower-cased words and their 3-letter prefixes into `dimensions`."""

    def __init__(self, dimensions: int = 64) -> None:
        self.dimensions = dimensions
        self.model_id = f"hash-{dimensions}"

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        matrix = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                for feature in (word, word[:3]):
                    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                    bucket = int.from_bytes(digest[:4], "little") % self.dimensions
                    matrix[row, bucket] += 1.0 if digest[4] & 1 else -1.0
        return normalise(matrix, expected_rows=len(texts))
