"""Full-text search on PostgreSQL within the budget `lexical` sets: the rows that a
query may rank, as SQL to add to it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from remem.stores.lexical import Budget

Read = Callable[[str, Sequence[Any]], list[dict[str, Any]]]


def within_budget(
    read: Read,
    searched: tuple[str, str, str],
    terms: Sequence[str],
    scope: tuple[str, Sequence[Any]],
    candidates: Sequence[Any],
    budget: Budget,
    owner: str | None,
) -> tuple[str, list[Any]]:
    """A condition (to AND into the query of `terms` over `searched`: a table, its tsvector
    column and its key, in the scope) keeping the rows whose key is a candidate or that
    hold a rare term; nothing when every match can be ranked: there are no candidates (the
    vector search failed: full ranking is all there is), the scope is small, or the terms
    are rare enough. How many rows hold a term is the planner's estimate, from the
    statistics PostgreSQL keeps of the column's most common words (counting costs as much
    as ranking), among the rows of the scope's `owner` when it has one (by the owner
    alone: with the user too, the planner would take the two for unrelated and estimate
    far too low; on Citus it is also what routes the estimate to the owner's shard)."""
    (table, column, key), (where, params) = searched, scope
    if not candidates:
        return "", []
    small = read(
        f"SELECT count(*) AS n FROM (SELECT 1 FROM {table} WHERE {where} LIMIT %s) s",
        (*params, budget.small_scope + 1),
    )
    if small[0]["n"] <= budget.small_scope:
        return "", []
    owned, owners = ("owner = %s AND ", [owner]) if owner is not None else ("", [])
    frequency = {
        term: _planned_rows(
            read(
                f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table}"
                f" WHERE {owned}{column} @@ to_tsquery('english', %s)",
                (*owners, or_query([term])),
            )[0]["QUERY PLAN"]
        )
        for term in dict.fromkeys(terms)
    }
    if budget.affordable(frequency):
        return "", []
    condition = f"{key} = ANY(%s)"
    values: list[Any] = [list(candidates)]
    rare = or_query(budget.rarest(frequency))
    if rare:
        condition += f" OR {column} @@ to_tsquery('english', %s)"
        values.append(rare)
    return f" AND ({condition})", values


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
