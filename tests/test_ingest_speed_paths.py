"""The fast write path (issue #14 §2): a note and its sentences from one pass of the bundled
model over the note's pieces, batches of similar lengths, and sentence spans that stay
right on every text. Correctness only; the speed is measured by benchmarks/bench_ingest.py."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remem import Memory
from remem.embedders.base import Embedder
from remem.embedders.minilm import MiniLMEmbedder
from remem.embedders.minilm.batching import MAX_BATCH_ROWS, MAX_BATCH_TOKENS, batches
from remem.embedders.minilm.pieces import check_spans, pieces_of
from remem.stores.base import PASSAGE_NOTES
from remem.testing import HashEmbedder
from remem.write.embedding import MAX_SENTENCES, embed_notes, sentence_spans, sentences_of

CELLO = "My sister plays the cello in an orchestra."
FILLER = [f"We talked about item number {i} of the shopping list for a while." for i in range(15)]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def _unit_rows(matrix: np.ndarray[Any, Any]) -> bool:
    return bool(np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5))


# -- sentence spans ------------------------------------------------------------------------

_OLD_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def _split_as_before(text: str) -> list[str]:
    """The split the write path used before spans: the sentences must not change."""
    parts = [part.strip() for part in _OLD_SPLIT.split(text)]
    parts = [part for part in parts if part][:MAX_SENTENCES]
    return parts if len(parts) > 1 else []


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("ab .!?\n\t\u00a0\u2028é😀\u200b")), max_size=80))
def test_sentence_spans_cut_the_same_sentences_as_before(text: str) -> None:
    spans = sentence_spans(text)
    assert sentences_of(text) == _split_as_before(text)
    check_spans(text, spans)  # ordered, inside the text, not overlapping
    assert all(text[begin:end] == text[begin:end].strip() != "" for begin, end in spans)


def test_one_sentence_has_no_spans_and_a_long_note_at_most_max() -> None:
    assert sentence_spans("Just one sentence here.") == []
    assert sentence_spans("") == [] and sentence_spans(" \n\n ") == []
    assert len(sentence_spans(" ".join(FILLER * 3))) == MAX_SENTENCES


# -- a note and its sentences from one pass over its pieces ----------------------------------


def test_sentences_get_their_exact_vectors_and_the_note_one_of_its_own(
    minilm: MiniLMEmbedder,
) -> None:
    text = f"I walked the dog. {CELLO} We ate soup."
    vectors, per_text = minilm.embed_with_spans([text, "One sentence."], [sentence_spans(text), []])
    assert vectors.shape == (2, 384) and _unit_rows(vectors) and len(per_text) == 2
    assert per_text[0].shape == (3, 384) and per_text[0].dtype == np.float32
    alone = minilm.embed_batch(["I walked the dog.", CELLO, "We ate soup."])
    assert np.allclose(per_text[0], alone, atol=1e-4)  # each sentence as if embedded alone
    assert per_text[1].shape == (0, 384)
    assert np.allclose(vectors[1], minilm.embed("One sentence."), atol=1e-4)
    # the note's vector pools all its tokens: close to, not equal to, the note run whole
    assert 0.8 < float(vectors[0] @ minilm.embed(text)) < 0.9999


def test_embed_notes_keeps_sentences_only_for_multi_sentence_notes(minilm: MiniLMEmbedder) -> None:
    with Memory(":memory:", embedder=HashEmbedder()) as memory:
        ids = memory.add(
            [{"role": "user", "content": t} for t in (f"Hi there. {CELLO}", "Just one.")],
            user_id="ana",
        ).note_ids
        notes = [memory.get(note_id) for note_id in ids]
    made = embed_notes(minilm, notes)
    assert set(made.vectors) == set(ids) and set(made.sentence_vectors) == {ids[0]}
    assert made.sentence_vectors[ids[0]].shape == (2, 384)


def test_a_batch_gives_the_vectors_of_one_text_at_a_time(minilm: MiniLMEmbedder) -> None:
    texts = [f"Short. {CELLO}", " ".join(FILLER), "no sentences at all", f"{CELLO}\n{CELLO}"]
    spans = [sentence_spans(text) for text in texts]
    vectors, per_text = minilm.embed_with_spans(texts, spans)
    for text, text_spans, vector, rows in zip(texts, spans, vectors, per_text, strict=True):
        alone, alone_rows = minilm.embed_with_spans([text], [text_spans])
        assert np.allclose(alone[0], vector, atol=1e-4)
        assert np.allclose(alone_rows[0], rows, atol=1e-4)


def test_a_long_note_is_embedded_past_the_model_window(minilm: MiniLMEmbedder) -> None:
    text = " ".join([*FILLER, CELLO])  # about 230 tokens: the cello is past the first 128
    spans = sentence_spans(text)
    assert len(spans) == MAX_SENTENCES and text[slice(*spans[-1])] == CELLO
    vectors, (rows,) = minilm.embed_with_spans([text], [spans])
    assert rows.shape == (MAX_SENTENCES, 384) and _unit_rows(rows)
    query = minilm.embed("Who plays the cello?")
    assert int(np.argmax(rows @ query)) == MAX_SENTENCES - 1
    # the whole text run at once is cut before the cello; its pieces are not
    assert vectors[0] @ query > minilm.embed(text) @ query + 0.03


def test_text_between_and_after_sentences_counts_towards_the_note() -> None:
    text = "First one. Second one.\nlast week = 2023-05-01"
    pieces = pieces_of([text], [[(0, 10), (11, 22)]])
    assert [(p.span, p.content) for p in pieces] == [
        (0, "First one."),
        (1, "Second one."),
        (None, "\nlast week = 2023-05-01"),
    ]
    assert [p.content for p in pieces_of(["a b"], [[]])] == ["a b"]
    assert [p.span for p in pieces_of([" x.  y. "], [[(1, 3), (5, 7)]])] == [0, 1]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "😀😀. 🎻🎻!",  # only unknown tokens
        "\u200b\u200b. \x00\x01.",  # characters the tokenizer drops
        "مرحبا بك. שלום עולם! Привет.",  # right-to-left and Cyrillic
        "\uff26\uff55\uff4c\uff4c\uff0e \ufb01 ligature. e\u0301 combining.",  # fullwidth
        "a. " * 20_000,  # 60k characters
        " ".join(["word"] * 400) + ". Then a short one.",  # one sentence longer than the window
    ],
)
def test_odd_texts_embed_with_spans_to_finite_unit_vectors(
    minilm: MiniLMEmbedder, text: str
) -> None:
    spans = sentence_spans(text)
    vectors, (rows,) = minilm.embed_with_spans([text], [spans])
    assert vectors.shape == (1, 384) and _unit_rows(vectors)
    assert rows.shape == (len(spans), 384) and np.all(np.isfinite(rows))
    if spans:
        assert _unit_rows(rows)


def test_spans_must_lie_inside_their_text(minilm: MiniLMEmbedder) -> None:
    for bad in ([(0, 99)], [(3, 2)], [(0, 4), (2, 6)], [(-1, 2)]):
        with pytest.raises(ValueError, match="span"):
            minilm.embed_with_spans(["some text"], [bad])
    with pytest.raises(ValueError, match="lists of spans"):
        minilm.embed_with_spans(["a", "b"], [[]])
    vectors, rows = minilm.embed_with_spans([], [])
    assert vectors.shape == (0, 384) and rows == []


def test_the_default_embeds_each_span_as_a_text_of_its_own() -> None:
    embedder: Embedder = HashEmbedder()
    text = f"I walked the dog. {CELLO}"
    vectors, (rows,) = embedder.embed_with_spans([text], [sentence_spans(text)])
    assert np.allclose(vectors[0], embedder.embed(text))
    assert np.allclose(rows, embedder.embed_batch(["I walked the dog.", CELLO]))


# -- batches -----------------------------------------------------------------------------


@given(st.lists(st.integers(min_value=0, max_value=128), max_size=300))
def test_batches_hold_every_text_once_within_the_limits(lengths: list[int]) -> None:
    found = batches(lengths)
    assert sorted(i for batch in found for i in batch) == list(range(len(lengths)))
    for batch in found:
        assert 0 < len(batch) <= MAX_BATCH_ROWS
        width = max(lengths[i] for i in batch)
        assert len(batch) == 1 or len(batch) * max(width, 1) <= MAX_BATCH_TOKENS


def test_batches_keep_short_texts_apart_from_long_ones() -> None:
    found = batches([120] * 4 + [8] * 40)
    assert all(len({120 if i < 4 else 8 for i in batch}) == 1 for batch in found)


# -- the store writes a batch of notes as it writes them one by one ----------------------------


def _indexed(path: Path) -> list[tuple[Any, ...]]:
    """What the SQLite store derived from the notes: full-text rows with their context (the
    turn before), passages, their notes, and the notes' sources, in the order written."""
    with closing(sqlite3.connect(path)) as db:
        return [
            *db.execute("SELECT rowid, body, context FROM notes_fts ORDER BY rowid"),
            *db.execute("SELECT rowid, body FROM passages_fts ORDER BY rowid"),
            *db.execute("SELECT pk, session_id = 's1', notes FROM passages ORDER BY pk"),
            *db.execute("SELECT pk, passage, revision > 0, kind FROM notes ORDER BY pk"),
            *db.execute(
                "SELECT n.pk, e.pk, s.rank FROM note_sources s JOIN notes n ON n.id = s.note_id"
                " JOIN episodes e ON e.id = s.episode_id ORDER BY n.pk, s.rank"
            ),
        ]


def _fill(path: Path, at_once: bool) -> None:
    """Two threads of two people, the first past one passage, with an edit in between."""
    turns = [f"Turn {i}: we talked about the cello, item {i}." for i in range(PASSAGE_NOTES + 9)]
    with Memory(str(path), embedder=HashEmbedder()) as memory:
        first = memory.add([{"role": "user", "content": "Hello. Nice to meet you."}], user_id="bo")
        for number, group in enumerate([turns[:5], turns[5:]]):
            messages = [{"role": "user", "name": "Ana", "content": text} for text in group]
            for batch in [messages] if at_once else [[message] for message in messages]:
                memory.add(batch, user_id="ana", session_id="s1")
            if number == 0:  # the newest turn of a thread changes between two adds
                memory.update(first.note_ids[0], text="Hello again. Still here.")
                memory.add(messages[:2], user_id="bo", session_id="s1")


def test_a_session_in_one_add_is_indexed_as_its_turns_one_by_one(tmp_path: Path) -> None:
    _fill(tmp_path / "at_once.db", at_once=True)
    _fill(tmp_path / "one_by_one.db", at_once=False)
    rows = _indexed(tmp_path / "at_once.db")
    assert rows == _indexed(tmp_path / "one_by_one.db")
    contexts = [row[2] for row in rows if len(row) == 3 and isinstance(row[1], str)]
    assert any(context.startswith("Ana: Turn 7") for context in contexts)  # the turn before
    with closing(sqlite3.connect(tmp_path / "at_once.db")) as db:
        unsourced = "SELECT count(*) FROM notes WHERE id NOT IN (SELECT note_id FROM note_sources)"
        assert db.execute(unsourced).fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM notes WHERE passage IS NULL").fetchone() == (0,)
