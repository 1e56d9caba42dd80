"""Full-text search on PostgreSQL within the budget `lexical` sets: the rows that a
query may rank, as SQL to add to it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from remem.stores.base import no_candidates
from remem.stores.lexical import Budget

Read = Callable[[str, Sequence[Any]], list[dict[str, Any]]]
ESTIMATE_SECONDS = 60.0  # how long a term's estimate is used again
ESTIMATES_KEPT = 10_000


class Estimates:
    """The planner's row estimates, each used again for a minute: they change only when
    PostgreSQL analyses the table again, and asking cost a round trip a term a search."""

    def __init__(self) -> None:
        self._kept: dict[tuple[Any, ...], tuple[float, int]] = {}

    def get(self, key: tuple[Any, ...], ask: Callable[[], int]) -> int:
        now = time.monotonic()
        kept = self._kept.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        if len(self._kept) >= ESTIMATES_KEPT:  # bounded: forget the estimates, ask again
            self._kept.clear()
        value = ask()
        self._kept[key] = (now + ESTIMATE_SECONDS, value)
        return value


class LargeScopes:
    """Scopes found holding more rows than some limit, taken to stay so for a minute (or
    until this process deletes notes): counting a big scope's first rows, to tell it from
    a small one, costs a few ms at 1M notes (a heap page each), and a busy user would pay
    it every search. A small scope is counted each time: it may grow."""

    SECONDS = 60.0
    KEPT = 10_000

    def __init__(self) -> None:
        self._until: dict[tuple[Any, ...], float] = {}

    def is_large(self, key: tuple[Any, ...], count_is_large: Callable[[], bool]) -> bool:
        if self._until.get(key, 0.0) > time.monotonic():
            return True
        if not count_is_large():
            return False
        if len(self._until) >= self.KEPT:  # bounded: forget the verdicts, not the data
            self._until.clear()
        self._until[key] = time.monotonic() + self.SECONDS
        return True

    def forget(self) -> None:
        """A deletion may have made a large scope small."""
        self._until.clear()


def ranked_rows(
    read: Read,
    searched: tuple[str, str, str],
    terms: Sequence[str],
    scope: tuple[str, Sequence[Any]],
    candidates: Callable[[], Sequence[Any]],
    budget: Budget,
    owner: str | None,
    known: tuple[Estimates, LargeScopes],
) -> tuple[str, list[Any]]:
    """The condition for a row of `searched` (a table, its tsvector column and its key) in the
    scope to be ranked for `terms`, whose tsquery the query names `q`: every row holding a term
    when that costs little (a small scope, rare enough terms, or no `candidates()` - asked for
    only now: full ranking is all there is), else the candidates holding a term and the rows
    holding a rare term. Written as an OR of two indexed conditions, so the planner reads just
    those rows, not every row of the scope holding a common term to filter them afterwards (3x
    the time at 100k notes). How many rows hold a term is the planner's estimate, from the
    statistics PostgreSQL keeps of the column's most common words (counting costs as much as
    ranking), among the rows of the scope's `owner` when it has one (by the owner alone: with
    the user too, the planner would take the two for unrelated and estimate far too low; on
    Citus it is also what routes the estimate to the owner's shard)."""
    (table, column, key), (where, params) = searched, scope
    every: tuple[str, list[Any]] = (f"{column} @@ q", [])
    if candidates is no_candidates:
        return every
    estimates, large_scopes = known

    def count_is_large() -> bool:
        counted = read(
            f"SELECT count(*) AS n FROM (SELECT 1 FROM {table} WHERE {where} LIMIT %s) s",
            (*params, budget.small_scope + 1),
        )
        return int(counted[0]["n"]) > budget.small_scope

    if not large_scopes.is_large((table, where, *params, budget.small_scope), count_is_large):
        return every
    owned, owners = ("owner = %s AND ", [owner]) if owner is not None else ("", [])

    def planned(term: str) -> int:
        explained = read(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table}"
            f" WHERE {owned}{column} @@ to_tsquery('english', %s)",
            (*owners, or_query([term])),
        )
        return _planned_rows(explained[0]["QUERY PLAN"])

    frequency = {
        term: estimates.get((table, column, owner, term), partial(planned, term))
        for term in dict.fromkeys(terms)
    }
    found = () if budget.affordable(frequency) else candidates()
    if not found:
        return every
    condition = f"({key} = ANY(%s) AND {column} @@ q)"
    values: list[Any] = [list(found)]
    rare = or_query(budget.rarest(frequency))
    if rare:
        condition += f" OR {column} @@ to_tsquery('english', %s)"
        values.append(rare)
    return f"({condition})", values


def _planned_rows(explained: Any) -> int:
    """The rows a plan expects; on Citus, those of the plan a worker runs on one shard
    times the shards (the coordinator's own node does not know)."""
    nodes, shards = [explained], 1
    while nodes:
        node = nodes.pop(0)
        if isinstance(node, list):
            nodes += node
        elif isinstance(node, dict):
            shards = int(node.get("Task Count", shards))
            if "Plan Rows" in node and node.get("Node Type") != "Custom Scan":
                return int(node["Plan Rows"]) * shards
            nodes += list(node.values())
    return 0


def or_query(terms: Sequence[str]) -> str:
    """A tsquery matching any of the terms (each quoted, so nothing in it is syntax)."""
    quoted = ["'" + t.replace("\\", "").replace("'", "") + "'" for t in terms if t.strip("'\\")]
    return " | ".join(quoted)
