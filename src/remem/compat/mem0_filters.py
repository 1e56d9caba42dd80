"""mem0's filter syntax, honoured: scope ids become remem's scope, the rest a predicate.

    {"user_id": "ana", "AND": [{"topic": "food"}, {"stars": {"gte": 4}}]}

Operators: eq, ne, in, nin, gt, gte, lt, lte, contains, icontains, the wildcard "*", and
AND / OR / NOT lists. A condition is checked against a mem0-shaped memory: its metadata
first, then its own fields (role, actor_id, created_at...). What cannot be honoured (an
unknown operator, an operator on a scope id) raises InvalidInputError naming it; a filter
never quietly matches nothing because remem did not understand it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from remem.errors import InvalidInputError

SCOPE_KEYS = {"user_id": "user_id", "agent_id": "agent_id", "run_id": "session_id"}
LOGICAL = ("AND", "OR", "NOT")
# fields of a mem0 result rather than of its metadata: remem's metadata filter cannot see them
ITEM_FIELDS = frozenset(
    {"id", "memory", "hash", "created_at", "updated_at", "role", "actor_id", "score"}
)
WILDCARD = "*"


def _compare(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """A comparison of like with like (numbers or strings); anything else does not match."""

    def compare(found: Any, wanted: Any) -> bool:
        numbers = all(_is_number(value) for value in (found, wanted))
        strings = isinstance(found, str) and isinstance(wanted, str)
        return (numbers or strings) and test(found, wanted)

    return compare


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _contains(found: Any, wanted: Any) -> bool:
    if isinstance(found, str):
        return isinstance(wanted, str) and wanted in found
    return isinstance(found, list) and wanted in found


def _icontains(found: Any, wanted: Any) -> bool:
    if isinstance(found, list):
        found = " ".join(str(item) for item in found)
    return isinstance(found, str) and isinstance(wanted, str) and wanted.lower() in found.lower()


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda found, wanted: found == wanted,
    "ne": lambda found, wanted: found != wanted,
    "in": lambda found, wanted: found in wanted,
    "nin": lambda found, wanted: found not in wanted,
    "gt": _compare(lambda found, wanted: found > wanted),
    "gte": _compare(lambda found, wanted: found >= wanted),
    "lt": _compare(lambda found, wanted: found < wanted),
    "lte": _compare(lambda found, wanted: found <= wanted),
    "contains": _contains,
    "icontains": _icontains,
}
# a memory without the field: only "not equal" and "not in" hold
HOLD_WHEN_MISSING = frozenset({"ne", "nin"})
Condition = Mapping[str, Any]


@dataclass
class Split:
    """A mem0 filter taken apart: remem scope ids (`session_id` for mem0's run_id), exact
    metadata matches remem's search can apply itself, and the rest as a condition."""

    scope: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    rest: dict[str, Any] = field(default_factory=dict)

    def matches(self, item: Mapping[str, Any]) -> bool:
        """True when a mem0-shaped memory meets every condition of the filter."""
        return matches(item, self.metadata) and matches(item, self.rest)


def split(filters: Condition | None) -> Split:
    """Take a mem0 filter apart, checking every operator in it."""
    parts = Split()
    if filters is None:
        return parts
    if not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be a dict, got {type(filters).__name__}")
    for key, value in filters.items():
        if key in SCOPE_KEYS:
            parts.scope[SCOPE_KEYS[key]] = _scope_id(key, value)
        elif key not in LOGICAL and key not in ITEM_FIELDS and _is_plain(value):
            parts.metadata[key] = value
        else:
            parts.rest[key] = value
    check(parts.rest)
    return parts


def _scope_id(key: str, value: Any) -> str:
    if isinstance(value, Mapping) and set(value) == {"eq"}:
        value = value["eq"]
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidInputError(
            f"filter on {key}: remem scopes a call to one {key} (a string), got {value!r};"
            " for several, make one call each"
        )
    return str(value)


MAX_NESTING = 32  # AND/OR/NOT levels a filter may nest


def _is_plain(value: Any) -> bool:
    return not isinstance(value, Mapping) and value != WILDCARD


def check(condition: Condition, where: str = "filters") -> None:
    """Raise InvalidInputError naming what mem0's syntax does not allow or remem cannot do."""
    for key, value in condition.items():
        if key in LOGICAL:
            if not isinstance(value, list) or not value:
                raise InvalidInputError(f"{where}: {key} needs a non-empty list of conditions")
            if where.count(".") >= MAX_NESTING:  # deeper would exhaust Python's stack
                raise InvalidInputError(f"filters nest AND/OR/NOT deeper than {MAX_NESTING}")
            for part in value:
                if not isinstance(part, Mapping):
                    raise InvalidInputError(f"{where}: each {key} condition must be a dict")
                check(part, f"{where}.{key}")
        elif key in SCOPE_KEYS:
            raise InvalidInputError(
                f"{where}: {key} inside {where.rpartition('.')[2]} cannot be honoured; remem"
                f" scopes a call by {key}: put it at the top level of filters"
            )
        elif isinstance(value, Mapping):
            _check_operators(key, value, where)


def _check_operators(key: str, value: Mapping[str, Any], where: str) -> None:
    for operator, operand in value.items():
        if operator not in OPERATORS:
            raise InvalidInputError(
                f"{where}: filter operator {operator!r} on {key!r} is not supported; remem"
                f" honours {', '.join(OPERATORS)}, the wildcard '*' and AND/OR/NOT"
            )
        if operator in ("in", "nin") and not isinstance(operand, list):
            raise InvalidInputError(f"{where}: operator {operator!r} on {key!r} needs a list")


def matches(item: Mapping[str, Any], condition: Condition) -> bool:
    """Whether a mem0-shaped memory meets a (checked) condition."""
    for key, wanted in condition.items():
        if key == "AND":
            held = all(matches(item, part) for part in wanted)
        elif key == "OR":
            held = any(matches(item, part) for part in wanted)
        elif key == "NOT":
            held = not any(matches(item, part) for part in wanted)
        else:
            held = _field_holds(item, key, wanted)
        if not held:
            return False
    return True


def _field_holds(item: Mapping[str, Any], key: str, wanted: Any) -> bool:
    metadata = item.get("metadata") or {}
    present = key in metadata or (key in item and item[key] is not None)
    found = metadata[key] if key in metadata else item.get(key)
    if wanted == WILDCARD:
        return present
    if not isinstance(wanted, Mapping):
        return present and found == wanted
    return all(
        (operator in HOLD_WHEN_MISSING) if not present else OPERATORS[operator](found, operand)
        for operator, operand in wanted.items()
    )
