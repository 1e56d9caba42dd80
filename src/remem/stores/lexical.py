"""How much full-text work one query may cost, the same in every store.

Full-text engines rank a query by scoring every row that holds any of its terms: at a
million notes a question of common words matches hundreds of thousands of them. Past
`Budget.exact` such rows a store ranks a bounded set instead: the rows of the query's
rarest terms (rare terms weigh most: a note holding one is one full-text ranking puts
high) and the candidates another retriever proposed, each scored as the full ranking
would score it. What is given up: notes holding only the query's common words that the
vector search did not propose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """How many rows holding a query's terms a store ranks."""

    # A query whose terms occur in at most this many rows in all is ranked in full,
    # exactly (full ranking costs ~2.5 µs a matching row on this project's machines).
    exact: int = 5_000
    # Otherwise the rarest terms, up to this many rows of them, propose candidates.
    rare: int = 2_000
    # A scope of at most this many rows is ranked in full, whatever its words: its own
    # matches are few, though the whole table's may be many.
    small_scope: int = 500

    @property
    def counted(self) -> int:
        """How far a term's rows are counted: past this, the term is common either way."""
        return max(self.exact, self.rare)

    def affordable(self, frequency: Mapping[str, int]) -> bool:
        """Whether ranking every row that holds a term costs little enough."""
        return sum(frequency.values()) <= self.exact

    def rarest(self, frequency: Mapping[str, int]) -> list[str]:
        """The rarest terms whose rows add up to at most the budget for rare terms."""
        chosen: list[str] = []
        left = self.rare
        for term in sorted(frequency, key=lambda term: frequency[term]):
            if frequency[term] > left:
                break
            chosen.append(term)
            left -= frequency[term]
        return chosen


DEFAULT_BUDGET = Budget()
