"""Structure without a language model, made in the same transaction as the notes: keywords
from term statistics, relative dates resolved, and links to similar earlier notes. Every
install gets this; a configured LLM adds extracted facts on top (see `pipeline`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from remem import clock, ids
from remem.embedders.base import Vectors
from remem.read.query import search_terms
from remem.stores.base import Retrieval
from remem.types import Link, Note
from remem.write.dates import dates_context

KEYWORDS = 5  # enough to say what a turn is about, few enough to stay specific
# Document counts stop here: a word in this many notes is common, whatever the exact count,
# and counting further would make every add slower as the memory grows.
DF_CAP = 1000
# Cosine of two MiniLM vectors above which two notes are worth a link: paraphrases and
# same-topic turns score 0.6-0.9, unrelated chat 0.1-0.4.
LINK_SIMILARITY = 0.6
LINKS_PER_NOTE = 3
# Large batches (imports, benchmarks) skip similarity links: each is one vector search.
LINK_BATCH_LIMIT = 100
_CONTENT_WORD = re.compile(r"[^\W\d_]{3,}")


def enrich(notes: Sequence[Note], store: Retrieval) -> list[Note]:
    """The notes with keywords, and their relative dates resolved as their context."""
    if not notes:
        return []
    keywords = _keywords(notes, store)
    return [
        replace(
            note,
            keywords=keywords.get(note.id, ()),
            context=dates_context(note.text, note.occurred_at) or note.context,
        )
        for note in notes
    ]


def similar_links(
    notes: Sequence[Note], vectors: Mapping[str, Vectors], store: Retrieval
) -> list[Link]:
    """Links from each new note to the most similar notes its owner already has."""
    if len(notes) > LINK_BATCH_LIMIT:
        return []
    moment = clock.now()
    links = []
    for note in notes:
        if note.id not in vectors:
            continue
        owner = note.scope.across_sessions()
        for target, score in store.search_vector(vectors[note.id], owner, LINKS_PER_NOTE):
            if score >= LINK_SIMILARITY:
                reason = f"cosine similarity {score:.2f} of their embeddings"
                link_id = ids.new_id(ids.LINK)
                links.append(
                    Link(link_id, note.id, target, "similar", round(score, 3), reason, moment)
                )
    return links


def _keywords(notes: Sequence[Note], store: Retrieval) -> dict[str, tuple[str, ...]]:
    """Each note's rarest content words: fewest notes holding them first (the order IDF
    gives), the order they were said in among equals."""
    terms = {
        note.id: [t for t in search_terms(note.text, cap=None) if _CONTENT_WORD.fullmatch(t)]
        for note in notes
    }
    counts = store.term_counts(sorted({t for words in terms.values() for t in words}), DF_CAP)
    return {
        note_id: tuple(sorted(words, key=lambda t: counts.get(t, 0))[:KEYWORDS])
        for note_id, words in terms.items()
    }
