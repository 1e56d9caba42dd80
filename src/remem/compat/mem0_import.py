"""Memories from mem0 into remem: its export (the JSON `get_all` returns), or a live store.

    remem import-mem0 mem0-export.json          # {"results": [...]} or a list of memories
    import_mem0(memory, mem0.get_all(filters={"user_id": "ana"}, top_k=10_000))

Each mem0 memory becomes one remem memory, verbatim (it is already a memory: no model
runs), in its own user/agent/run scope (a run is a remem session), dated by its
`created_at`, said by its `role` and `actor_id`, its metadata kept with `mem0_id` added.
A memory already imported (same `mem0_id` in this tenant) is skipped, so an import can
be run again; a record that cannot be read is skipped with the reason.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remem.errors import InvalidInputError, RememError
from remem.inputs import check_path
from remem.memory import Memory

MAX_FILE_BYTES = 512 * 1024 * 1024
PAGE = 1000
SCOPE_NAMES = (("user_id", "user_id"), ("agent_id", "agent_id"), ("run_id", "session_id"))


@dataclass(frozen=True)
class Mem0Import:
    """What an import did: memories added, already present, and skipped (index, why)."""

    added: int
    present: int
    skipped: tuple[tuple[int, str], ...] = ()


def read_export(path: str | Path) -> list[Any]:
    """The memories of a mem0 export file: `{"results": [...]}` or a JSON list."""
    source = Path(check_path(path, "import"))
    if source.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInputError(f"{source} is larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInputError(f"{source} is not a mem0 export (JSON): {error}") from None
    if isinstance(data, Mapping) and isinstance(data.get("results"), list):
        return list(data["results"])
    if isinstance(data, list):
        return data
    raise InvalidInputError(
        f'{source} is not a mem0 export: expected {{"results": [...]}} (what get_all returns)'
        " or a list of memories"
    )


def import_mem0(
    memory: Memory, records: Mapping[str, Any] | Iterable[Any], *, user_id: str | None = None
) -> Mem0Import:
    """Add mem0 memories (get_all's result or its list) to `memory`; those naming no scope
    go to `user_id` when given, else are skipped."""
    if isinstance(records, Mapping):
        records = records.get("results") or []
    verbatim = copy.copy(memory)
    verbatim.llm = None  # already memories: store them as they are, organise nothing
    present = _imported_ids(memory)
    added, already, skipped = 0, 0, []
    for index, record in enumerate(records):
        try:
            mem0_id, content, arguments = _record(record, user_id)
            if mem0_id in present:
                already += 1
                continue
            verbatim.add(content, **arguments)
        except RememError as error:
            skipped.append((index, str(error)))
            continue
        present.add(mem0_id)
        added += 1
    return Mem0Import(added, already, tuple(skipped))


def _record(record: Any, user_id: str | None) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """(mem0 id, the message to add, add's keyword arguments) of one mem0 memory."""
    if not isinstance(record, Mapping):
        raise InvalidInputError(f"a mem0 memory is a JSON object, not {type(record).__name__}")
    text = record.get("memory")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("a mem0 memory needs its text in 'memory'")
    mem0_id = record.get("id")
    if not isinstance(mem0_id, str) or not mem0_id:
        raise InvalidInputError("a mem0 memory needs its 'id'")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise InvalidInputError("a mem0 memory's 'metadata' must be a JSON object")
    scope = {ours: record[theirs] for theirs, ours in SCOPE_NAMES if record.get(theirs)}
    if not scope:
        if user_id is None:
            raise InvalidInputError("names no user_id, agent_id or run_id (pass a default user)")
        scope = {"user_id": user_id}
    message = {"role": str(record.get("role") or "user"), "content": text}
    if isinstance(record.get("actor_id"), str) and record["actor_id"]:
        message["name"] = record["actor_id"]
    arguments = {
        **scope,
        "metadata": {**metadata, "mem0_id": mem0_id},
        "occurred_at": record.get("created_at") or None,
    }
    return mem0_id, [message], arguments


def _imported_ids(memory: Memory) -> set[str]:
    """The mem0 ids this tenant already holds (from earlier imports)."""
    found: set[str] = set()
    cursor = None
    while True:
        page = memory.list(limit=PAGE, cursor=cursor, order="added")
        found |= {n.metadata["mem0_id"] for n in page.items if "mem0_id" in n.metadata}
        cursor = page.cursor
        if cursor is None:
            return found
