"""Full-text search of the embedded store (FTS5): every match ranked by FTS5, or, for
common words in a large memory, the rows of the rare words and another retriever's
candidates scored as FTS5 would (see `lexical` for when, `sqlite_lexicon` for how)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from remem import clock
from remem.stores.base import TextMatches, no_candidates
from remem.stores.lexical import Budget
from remem.stores.rows import scope_sql
from remem.stores.sql import IDS, VISIBLE, visible
from remem.stores.sqlite_lexicon import EXACT, Lexicon, Plan, Read, match_any
from remem.types import Scope

# Ranks this many times `limit` before filtering by scope (see `FullText.notes`).
FTS_OVERFETCH = 4
ReadAmong = Callable[[str, Sequence[Any], Sequence[Any]], list[sqlite3.Row]]


class FullText:
    """`search_text` and `search_passages` of `SQLiteStore`, over its statements."""

    def __init__(self, read: Read, read_among: ReadAmong, budget: Budget) -> None:
        self._rows, self._read_among, self._budget = read, read_among, budget
        self._lexicons = {
            table: Lexicon(read, table, budget) for table in ("notes_fts", "passages_fts")
        }

    def _plan(self, table: str, terms: Sequence[str], candidates: Callable[[], Any]) -> Plan:
        """How to rank the table's matches: in full when no other retriever helps, else as
        the budget says."""
        return EXACT if candidates is no_candidates else self._lexicons[table].plan(terms)

    def notes(
        self,
        terms: Sequence[str],
        scope: Scope,
        limit: int,
        candidates: Callable[[], Sequence[str]],
    ) -> TextMatches:
        if not terms:
            return TextMatches([], [])
        plan = self._plan("notes_fts", terms, candidates)
        among = None if plan.exact else self._notes_among(plan, scope, limit, candidates)
        if among is not None:
            return among
        match = match_any(terms)
        # One statement ranks by body and context together and also scores the body alone
        # (context weighted 0). Fast path: rank inside FTS5 alone (joining every match to
        # `notes` costs more than the ranking), then keep the best rows of the scope; when
        # the scope holds too few of them, rank again with the scope joined in (exact).
        wide = limit * FTS_OVERFETCH
        where, params = scope_sql(scope, "n.")
        moment = clock.to_text(clock.now())
        rows: Sequence[Sequence[Any]] = self._rows(
            "WITH ranked AS (SELECT rowid, -bm25(notes_fts, 1.0, 1.0) AS both_,"
            " -bm25(notes_fts, 1.0, 0.0) AS own FROM notes_fts WHERE notes_fts MATCH ?"
            " ORDER BY both_ DESC, rowid LIMIT ?)"
            " SELECT n.id, r.both_, r.own, (SELECT count(*) FROM ranked) FROM ranked r"
            f" JOIN notes n ON n.pk = r.rowid WHERE {where} AND {visible('n.')}"
            " ORDER BY r.both_ DESC, r.rowid LIMIT ?",
            (match, wide, *params, moment, limit),
        )
        if len(rows) < limit and (not rows or rows[0][3] == wide):  # (none: cannot tell)
            rows = self._rows(
                "SELECT n.id, -bm25(notes_fts, 1.0, 1.0), -bm25(notes_fts, 1.0, 0.0)"
                " FROM notes_fts JOIN notes n ON n.pk = notes_fts.rowid"
                f" WHERE notes_fts MATCH ? AND {where} AND {visible('n.')}"
                " ORDER BY bm25(notes_fts, 1.0, 1.0), n.pk LIMIT ?",
                (match, *params, moment, limit),
            )
        return _text_matches([row[:3] for row in rows])

    def _notes_among(
        self, plan: Plan, scope: Scope, limit: int, candidates: Callable[[], Sequence[str]]
    ) -> TextMatches | None:
        """`notes` for a query of common words in a large memory: the rows of its rare
        terms and the `candidates()` (asked for only when the scope is not small), of the
        scope, scored as FTS5 would (see `sqlite_lexicon`). None when there are no
        candidates: the vector search failed or found nothing, and full ranking is all
        there is."""
        where, params = scope_sql(scope, "")
        live = f"SELECT pk, id FROM notes WHERE {where} AND {VISIBLE}"
        params = [*params, clock.to_text(clock.now())]
        # (by pk: given the ids alone, SQLite walks the owner's whole index instead)
        by_id = f"{live} AND pk IN (SELECT pk FROM notes WHERE id {IDS})"
        rows = self._rows(f"{live} LIMIT ?", (*params, self._budget.small_scope + 1))
        if len(rows) > self._budget.small_scope:  # (else: every note of the scope is one)
            proposed = candidates()
            if not proposed:
                return None
            rows = self._read_among(by_id, proposed, params)
        if plan.rare:
            found = self._rows(
                "SELECT rowid FROM notes_fts WHERE notes_fts MATCH ?", (match_any(plan.rare),)
            )
            rows += self._read_among(f"{live} AND pk {IDS}", [row[0] for row in found], params)
        ids = {row[0]: row[1] for row in rows}
        scored = self._lexicons["notes_fts"].score(plan, ids, ((1.0, 1.0), (1.0, 0.0)))
        ranked = sorted(scored.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
        return _text_matches([(ids[pk], both, own) for pk, (both, own) in ranked])

    def passages(
        self,
        terms: Sequence[str],
        scope: Scope,
        limit: int,
        candidates: Callable[[], Sequence[int]],
    ) -> list[tuple[int, float]]:
        if not terms:
            return []
        plan = self._plan("passages_fts", terms, candidates)
        among = None if plan.exact else self._passages_among(plan, scope, limit, candidates)
        if among is not None:
            return among
        where, params = scope_sql(scope, "p.")
        match = match_any(terms)
        rows = self._rows(
            "SELECT p.pk, -bm25(passages_fts) FROM passages_fts"
            " JOIN passages p ON p.pk = passages_fts.rowid"
            f" WHERE passages_fts MATCH ? AND {where} ORDER BY bm25(passages_fts) LIMIT ?",
            (match, *params, limit),
        )
        return [(row[0], float(row[1])) for row in rows]

    def _passages_among(
        self, plan: Plan, scope: Scope, limit: int, candidates: Callable[[], Sequence[int]]
    ) -> list[tuple[int, float]] | None:
        """`passages` as `_notes_among` ranks notes: the rows of the rare terms and
        the `candidates()`, of the scope; every passage of a small scope."""
        where, params = scope_sql(scope, "")
        kept = self._rows(
            f"SELECT pk FROM passages WHERE {where} LIMIT ?",
            (*params, self._budget.small_scope + 1),
        )
        if len(kept) > self._budget.small_scope:
            found = list(candidates())
            if not found:
                return None
            if plan.rare:
                found += [
                    row[0]
                    for row in self._rows(
                        "SELECT rowid FROM passages_fts WHERE passages_fts MATCH ?",
                        (match_any(plan.rare),),
                    )
                ]
            kept = self._read_among(
                f"SELECT pk FROM passages WHERE {where} AND pk {IDS}", found, params
            )
        scored = self._lexicons["passages_fts"].score(plan, [row[0] for row in kept], ((1.0,),))
        ranked = sorted(scored.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
        return [(pk, score) for pk, (score,) in ranked]


def _text_matches(rows: Sequence[Sequence[Any]]) -> TextMatches:
    """Rows of (note id, bm25 with its context, bm25 of its own text), best first."""
    own = sorted(
        ((item, float(score)) for item, _, score in rows if score > 0), key=lambda item: -item[1]
    )
    return TextMatches(in_context=[(item, float(score)) for item, score, _ in rows], note=own)
