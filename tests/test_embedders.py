"""Embedders: the bundled MiniLM model, and the OpenAI-compatible backend (over real HTTP
once, then in-process on `ScriptedTransport`)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from remem import EmbedderError, Memory
from remem.embedders.minilm import MiniLMEmbedder
from remem.embedders.openai import OpenAIEmbedder
from remem.testing import FailingEmbedder, HashEmbedder, ScriptedOpenAIServer, ScriptedTransport


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_minilm_gives_unit_vectors_that_track_meaning(minilm: MiniLMEmbedder) -> None:
    vectors = minilm.embed_batch(
        [
            "I love hiking in the mountains",
            "Walking up hills is my favourite hobby",
            "The central bank raised interest rates",
        ]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_minilm_batches_match_single_texts(minilm: MiniLMEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence with more tokens in it", "mid length text"]
    batch = minilm.embed_batch(texts)
    for text, row in zip(texts, batch, strict=True):
        assert np.allclose(minilm.embed(text), row, atol=1e-4)
    assert minilm.embed_batch([]).shape == (0, 384)


def test_a_query_does_not_wait_behind_an_import(minilm: MiniLMEmbedder) -> None:
    """A search's query embeds while the stored notes' runtime is busy (an import's batch
    holds it); the vectors are the same either way."""
    query = "where did Ana move last year?"
    alone = minilm.embed(query)
    during: list[np.ndarray] = []
    with minilm._stored.lock:  # as while an import's batch runs
        querying = threading.Thread(target=lambda: during.append(minilm.embed(query)))
        querying.start()
        querying.join(timeout=60)
        waited = querying.is_alive()
    querying.join()
    assert not waited, "the query waited for the stored notes' runtime"
    assert np.array_equal(during[0], alone)
    assert np.array_equal(minilm.embed_batch([query])[0], alone)


def test_a_damaged_model_file_is_an_embedder_error_every_time(tmp_path: Path) -> None:
    """A model that does not load fails as the embedder (so an add queues its vectors and
    a search goes by keyword), and the next call tries again rather than finding a
    half-loaded runtime."""
    damaged = tmp_path / "model.onnx"
    damaged.write_bytes(b"\x08\x07 not a model")
    embedder = MiniLMEmbedder(model_path=damaged)
    for _ in range(2):
        with pytest.raises(EmbedderError, match="did not load"):
            embedder.embed("hello")
        with pytest.raises(EmbedderError, match="did not load"):
            embedder.embed_batch(["hello"])


def test_minilm_truncates_long_texts(minilm: MiniLMEmbedder) -> None:
    assert minilm.embed("word " * 5000).shape == (384,)


def test_openai_embedder_speaks_the_protocol_and_retries() -> None:
    with ScriptedOpenAIServer() as server:
        server.fail_next(503, times=2)
        embedder = OpenAIEmbedder(
            server.base_url, "test-model", "sk-test", batch_size=2, backoff=0.01
        )
        vectors = embedder.embed_batch(["one", "two", "three"])
        expected = HashEmbedder().embed_batch(["one", "two", "three"])
        assert np.allclose(vectors, expected, atol=1e-6)
        bodies = [r["body"] for r in server.requests]
        assert bodies[-2:] == [
            {"model": "test-model", "input": ["one", "two"]},
            {"model": "test-model", "input": ["three"]},
        ]
        assert len(server.requests) == 4  # two scripted failures, then two batches
        embedder.close()


def _embedder(model: ScriptedTransport, attempts: int = 3, timeout: float = 2.0) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        model.base_url, "m", attempts=attempts, timeout=timeout, backoff=0, transport=model
    )


def test_openai_embedder_retries_each_batch_on_its_own() -> None:
    model = ScriptedTransport()
    embedder = _embedder(model)
    model.fail_next(429)
    first = embedder.embed("one")
    model.fail_next(500, times=2)
    second = embedder.embed("two")
    assert np.allclose([first, second], HashEmbedder().embed_batch(["one", "two"]), atol=1e-6)
    assert [r["body"]["input"] for r in model.requests] == [["one"]] * 2 + [["two"]] * 3


def test_openai_embedder_retries_a_timeout() -> None:
    model = ScriptedTransport()
    model.slow_next(5.0)  # longer than the client waits
    vector = _embedder(model, timeout=0.05).embed("text")
    assert np.allclose(vector, HashEmbedder().embed("text"), atol=1e-6)
    assert len(model.requests) == 2


def test_openai_embedder_reports_a_server_that_stays_down() -> None:
    model = ScriptedTransport()
    model.fail_next(500, times=2)
    embedder = _embedder(model, attempts=2)
    with pytest.raises(EmbedderError, match="failed 2 times; last: HTTP 500"):
        embedder.embed("text")
    assert len(model.requests) == 2
    model.fail_next(401)
    with pytest.raises(EmbedderError, match="answered HTTP 401"):
        embedder.embed("text")
    assert len(model.requests) == 3  # a client error is not retried


def test_openai_embedder_waits_longer_before_each_retry() -> None:
    model = ScriptedTransport()
    model.fail_next(503, times=3)
    embedder = OpenAIEmbedder(model.base_url, "m", backoff=0.05, transport=model)
    started = time.perf_counter()
    with pytest.raises(EmbedderError, match="failed 3 times"):
        embedder.embed("text")
    assert time.perf_counter() - started >= 0.05 + 0.1  # 0.05 s, then twice that


def test_a_failing_embedder_never_loses_an_add(memory: Memory) -> None:
    flaky = FailingEmbedder(HashEmbedder())
    memory.embedder = flaky
    result = memory.add("The wifi password is on the fridge.", user_id="u")
    assert len(result.pending_jobs) == 1
    note_id = result.note_ids[0]
    # stored and findable by keyword while the model is down
    assert memory.search("wifi password", user_id="u")[0].id == note_id
    assert memory.run_jobs() == 0
    assert memory.store.jobs("pending")[0].attempts == 2
    flaky.failing = False
    assert memory.run_jobs() == 1
    assert memory.store.jobs("pending") == []
    vector = flaky.embed("The wifi password is on the fridge.")
    assert memory.store.search_vector(vector, memory.get(note_id).scope, 1)[0][0] == note_id
