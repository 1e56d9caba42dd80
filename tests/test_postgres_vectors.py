"""PostgreSQL vector search past the exact-scan size: the HNSW path keeps to the scope,
fills its limit, finds what exact search finds, and sees deletions at once."""

from __future__ import annotations

import numpy as np
import pytest

from remem import Memory
from remem.stores.postgres import EXACT_SCAN_LIMIT
from remem.testing import HashEmbedder
from remem.types import Scope

pytestmark = pytest.mark.parametrize("location", ["postgres"], indirect=True)

EMBED = HashEmbedder(32)


def _words(i: int) -> str:
    rng = np.random.default_rng(i)
    return " ".join(f"w{n}" for n in rng.integers(0, 400, size=6))


def test_a_large_scope_is_searched_by_the_index_and_keeps_to_its_scope(location: str) -> None:
    with Memory(location, embedder=EMBED) as memory:
        big = [{"role": "user", "content": _words(i)} for i in range(EXACT_SCAN_LIMIT + 200)]
        added = memory.add(big, user_id="big")
        memory.add([{"role": "user", "content": _words(i)} for i in range(30)], user_id="small")
        query = _words(7)
        vector = EMBED.embed(query)
        store = memory.store

        found = store.search_vector(vector, Scope("big"), 20)
        again = store.search_vector(vector, Scope("big"), 20)
        assert len(found) == 20 and again == found  # the second search skips the count
        big_ids = set(added.note_ids)
        assert {note_id for note_id, _ in found} <= big_ids
        exact = sorted(
            ((n, float(EMBED.embed(_words(i)) @ vector)) for i, n in enumerate(added.note_ids)),
            key=lambda item: -item[1],
        )[:20]
        overlap = {n for n, _ in exact} & {n for n, _ in found}
        assert len(overlap) >= 18

        small = store.search_vector(vector, Scope("small"), 50)
        assert len(small) == 30 and not {note_id for note_id, _ in small} & big_ids

        kept = added.note_ids[:5]
        for note_id in added.note_ids[5:]:
            memory.delete(note_id)
        after = store.search_vector(vector, Scope("big"), 20)
        assert sorted(note_id for note_id, _ in after) == sorted(kept)
