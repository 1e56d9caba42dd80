"""Notes of several sentences get one vector per sentence; search scores them by the best."""

from __future__ import annotations

import pytest

from remem import Memory
from remem.read import rank
from remem.stores.blob_cache import ENTRY_BYTES, Blobs
from remem.testing import HashEmbedder
from remem.write.embedding import MAX_SENTENCES, sentences_of

EMBED = HashEmbedder()
CELLO = "My sister plays the cello."


def test_sentences_end_at_stops_and_line_breaks() -> None:
    assert sentences_of("I moved. Then I rested!\nWhy?") == ["I moved.", "Then I rested!", "Why?"]
    assert sentences_of("One sentence only.") == []
    assert sentences_of("  \n ") == []
    assert len(sentences_of(" ".join(f"Line {i}." for i in range(40)))) == MAX_SENTENCES


def test_a_note_is_scored_by_its_best_sentence(memory: Memory) -> None:
    long = memory.add(f"I walked the dog. {CELLO} We ate soup.", user_id="ana").note_ids[0]
    short = memory.add("Rain fell all day.", user_id="ana").note_ids[0]
    query = EMBED.embed(CELLO)

    def own(text: str) -> float:
        return pytest.approx(float(EMBED.embed(text) @ query), abs=1e-5)

    scores = memory.store.sentence_scores(query, [long, short, "nt_missing"])
    assert set(scores) == {long, short}
    assert scores[long] == pytest.approx(1.0, abs=1e-5)  # its second sentence
    assert scores[short] == own("Rain fell all day.")  # one sentence: the note itself
    memory.update(long, text="Only one sentence here")
    assert memory.store.sentence_scores(query, [long])[long] == own("Only one sentence here")
    memory.update(long, text=f"New words here. {CELLO}")
    assert memory.store.sentence_scores(query, [long])[long] == pytest.approx(1.0, abs=1e-5)


def test_sentence_vectors_survive_export_and_import(memory: Memory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    long = memory.add(f"I walked the dog. {CELLO}", user_id="ana").note_ids[0]
    memory.export(tmp_path / "out.jsonl")
    with Memory(tmp_path / "copy.db", embedder=EMBED) as copy:
        copy.import_file(tmp_path / "out.jsonl")
        scores = copy.store.sentence_scores(EMBED.embed(CELLO), [long])
    assert scores[long] == pytest.approx(1.0, abs=1e-5)


def test_best_sentences_add_their_weight_scaled_over_the_best_pool() -> None:
    weights = rank.Weights(sentences=2.0)
    scores = rank.add_sentences({"a": 1.0, "b": 1.0}, {"a": 0.9, "b": 0.5, "c": 0.1}, 2, weights)
    assert scores == {"a": 3.0, "b": 1.0}  # c fell outside the pool; b is the pool's floor
    assert rank.add_sentences({"a": 1.0}, {}, 2, weights) == {"a": 1.0}


def test_sentence_scores_follow_another_writer_on_the_same_file(db_path) -> None:  # type: ignore[no-untyped-def]
    with Memory(db_path, embedder=EMBED) as reader, Memory(db_path, embedder=EMBED) as writer:
        note = reader.add(f"I walked the dog. {CELLO}", user_id="ana").note_ids[0]
        query = EMBED.embed(CELLO)
        assert reader.store.sentence_scores(query, [note])[note] == pytest.approx(1.0, abs=1e-5)
        writer.update(note, text="Rain fell all day. We stayed in.")
        assert reader.store.sentence_scores(query, [note])[note] < 0.9


def test_kept_sentence_blobs_stay_within_their_bound() -> None:
    blobs = Blobs(limit=3 * (ENTRY_BYTES + 100))
    blobs.remember({"a": b"x" * 100, "b": None})
    blobs.remember({"a": b"y" * 100})  # a blob read again replaces the one kept
    assert blobs.get("a") == b"y" * 100 and "b" in blobs and blobs.get("b") is None
    blobs.forget("a")
    blobs.remember({"c": b"z" * 100, "d": b"w" * 100})  # fits only because "a" was let go
    assert "b" in blobs and blobs.get("c") == b"z" * 100
    blobs.remember({"e": b"v" * 100})  # past the bound: everything goes, the new one stays
    assert "b" not in blobs and "c" not in blobs and blobs.get("e") == b"v" * 100


def test_the_first_hits_do_not_depend_on_how_many_are_asked_for(memory: Memory) -> None:
    pets = ("dog", "cat", "horse", "parrot", "turtle", "rabbit")
    verbs = ("walked", "painted", "fed", "brushed", "photographed", "named")
    texts = [
        f"Today I {verb} the {pet}. It took an hour. Then I fed my {other}."
        for pet in pets
        for verb in verbs
        for other in pets[:2]
    ]
    memory.add([{"role": "user", "content": text} for text in texts], user_id="ana")
    for query in ("What did I paint?", "Who did I walk with the dog?", "my parrot's name"):
        first = [hit.id for hit in memory.search(query, user_id="ana", limit=10)]
        more = [hit.id for hit in memory.search(query, user_id="ana", limit=25)]
        assert len(first) == 10
        assert more[:10] == first, query
