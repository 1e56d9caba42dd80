"""Hybrid search: dense vectors and BM25 over the scope's notes, fused by rank."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from remem.embedders.base import Embedder
from remem.errors import EmbedderError
from remem.read.fusion import reciprocal_rank_fusion
from remem.read.query import search_terms
from remem.stores.base import Store
from remem.types import Hit, Note, Scope

# Each retriever proposes more candidates than asked for, so fusion has overlap to work with.
CANDIDATE_FACTOR = 4
MIN_CANDIDATES = 50
log = logging.getLogger("remem")


def search(
    store: Store,
    embedder: Embedder,
    query: str,
    scope: Scope,
    limit: int,
    filters: Mapping[str, Any] | None = None,
) -> list[Hit]:
    """The `limit` best notes for the query in the scope, best first."""
    pool = max(MIN_CANDIDATES, CANDIDATE_FACTOR * limit)
    if filters:
        pool *= 10  # filters apply after retrieval, so look deeper
    lexical = store.search_text(search_terms(query), scope, pool)
    try:
        dense = store.search_vector(embedder.embed(query), scope, pool)
    except EmbedderError as error:
        log.warning("query embedding failed, searching by keyword only: %s", error)
        dense = []
    fused = reciprocal_rank_fusion([dense, lexical])
    hits: list[Hit] = []
    # Load notes a page at a time: without filters the first page is nearly always enough.
    for start in range(0, len(fused), limit):
        page = fused[start : start + limit]
        notes = store.get_notes([item_id for item_id, _ in page])
        for item_id, score in page:
            note = notes.get(item_id)
            if note is None or note.deleted_at is not None or not _matches(note, filters):
                continue
            hits.append(to_hit(note, score))
            if len(hits) == limit:
                return hits
    return hits


def _matches(note: Note, filters: Mapping[str, Any] | None) -> bool:
    """Metadata equality on every filter key."""
    return not filters or all(note.metadata.get(key) == value for key, value in filters.items())


def to_hit(note: Note, score: float) -> Hit:
    return Hit(
        id=note.id,
        kind="note",
        text=note.text,
        score=score,
        metadata=note.metadata,
        occurred_at=note.occurred_at,
        episode_ids=note.episode_ids,
        scope=note.scope,
    )
