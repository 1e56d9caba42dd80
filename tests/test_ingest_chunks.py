"""Chunks of a document: bounded, nothing lost, no sentence cut unless it alone is over the
bound; and WhatsApp's day-or-month-first guess."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from remem.ingest.chunks import chunk_text, split_sentences
from remem.ingest.whatsapp import parse as parse_whatsapp

words = st.text(alphabet="abcdefghij", min_size=1, max_size=30)
sentences = st.lists(words, min_size=1, max_size=40).map(lambda w: " ".join(w) + ".")
paragraphs = st.lists(sentences, min_size=1, max_size=8).map(" ".join)
documents = st.lists(paragraphs, min_size=1, max_size=8).map("\n\n".join)


@given(documents, st.integers(min_value=40, max_value=600))
def test_chunks_are_bounded_and_lose_no_word(text: str, limit: int) -> None:
    chunks = chunk_text(text, limit)
    assert all(0 < len(chunk) <= limit for chunk in chunks)
    assert " ".join(chunks).split() == text.split()


@given(documents, st.integers(min_value=40, max_value=600))
def test_a_sentence_is_cut_only_when_it_alone_is_too_long(text: str, limit: int) -> None:
    whole = {s for s in split_sentences(text) if len(s) <= limit}
    found = {s for chunk in chunk_text(text, limit) for s in split_sentences(chunk)}
    assert whole <= found


def test_a_long_word_is_cut_at_the_bound() -> None:
    assert chunk_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_whatsapp_dates_day_or_month_first() -> None:
    def times(text: str) -> list[str]:
        parsed = parse_whatsapp(text, "chat.txt", "chat.txt")
        return [c.occurred_at.date().isoformat() for c in parsed.chunks if c.occurred_at]

    assert times("03/04/24, 10:00 - A: hi\n") == ["2024-04-03"]  # ambiguous, 24-hour: day first
    assert times("03/04/24, 10:00 AM - A: hi\n") == ["2024-03-04"]  # 12-hour clock: US
    assert times("03/04/24, 10:00 - A: hi\n03/25/24, 10:00 - A: yo\n") == [
        "2024-03-04",
        "2024-03-25",
    ]
    assert times("2024-04-03, 10:00 - A: hi\n") == ["2024-04-03"]
    assert times("31/02/24, 10:00 - A: no such day\n") == []
