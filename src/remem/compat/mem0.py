"""mem0's `Memory`, on remem: switch by changing one import line.

    from remem.compat.mem0 import Memory      # was: from mem0 import Memory

    m = Memory()                               # or Memory.from_config({...mem0 config...})
    m.add("I like decaf", user_id="ana", metadata={"topic": "food"})
    m.search("coffee?", filters={"user_id": "ana", "topic": {"in": ["food"]}})["results"]

Calls take mem0's arguments (both mem0 2.x's `filters={"user_id": ...}` and top-level
`user_id=` of mem0 1.x; `run_id` is remem's `session_id`) and return mem0's shapes (see
`remem.compat.mem0_shapes`). The remem memory underneath is `.memory`, for the calls mem0
has no word for (context, profile, fill, export...).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, cast

from remem.compat import mem0_filters, mem0_shapes
from remem.compat.mem0_config import settings_of
from remem.errors import InvalidInputError, NotFoundError, ScopeRequiredError
from remem.inputs import MAX_LIMIT
from remem.memory import Memory as RememMemory
from remem.types import Episode, Hit, Note

__all__ = ["Memory", "MemoryNotFoundError"]

log = logging.getLogger("remem")
# a remem page; get_all reads pages until it has enough matching memories
PAGE = 500
SCOPE_ARGUMENTS = ("user_id", "agent_id", "run_id")


class MemoryNotFoundError(NotFoundError, ValueError):
    """No memory has this id. A ValueError too, as mem0 raises for an unknown id."""


class Memory:
    """mem0's OSS `Memory` API over a remem memory (`memory=`, else built from settings).

    Differences that matter: ids are remem's (`nt_...`); `threshold` (remem's relevance,
    0-1) applies only when given, where mem0 defaults to 0.1; `infer=True` organises with
    remem's model when one is configured, else stores the messages verbatim and logs that
    it did."""

    def __init__(self, memory: RememMemory | None = None) -> None:
        self.memory = RememMemory() if memory is None else memory
        self._warned_no_model = False

    @classmethod
    def from_config(cls, config_dict: Mapping[str, Any]) -> Memory:
        """Build one from mem0's nested config dict (`vector_store`, `embedder`, `llm`);
        what remem has no equivalent for raises ConfigError naming it."""
        return cls(RememMemory.from_config(**settings_of(config_dict)))

    # -- writing -----------------------------------------------------------------------------

    def add(
        self,
        messages: str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        infer: bool = True,
        timestamp: int | float | str | datetime | None = None,
        **unsupported: Any,
    ) -> dict[str, Any]:
        """Remember messages (a string, a message dict or a list of them): verbatim with
        `infer=False`, else organised by remem's model when one is configured.
        `timestamp` (unix seconds or ISO 8601) is when it was said."""
        _refuse(unsupported, "add")
        content = _messages(messages, keep_system=bool(infer))
        target = self.memory if infer else _verbatim(self.memory)
        if infer and self.memory.llm is None:
            self._note_no_model()
        result = target.add(
            content,
            occurred_at=_moment(timestamp),
            metadata=_without_scope(metadata),
            **_scope(user_id, agent_id, run_id),
        )
        notes = self._notes(result.note_ids)
        sources = self._sources(notes)
        return {"results": [mem0_shapes.added_item(n, sources.get(n.id)) for n in notes]}

    def update(
        self,
        memory_id: str,
        text: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        data: str | None = None,
    ) -> dict[str, str]:
        """Change a memory's text (`text`, or mem0 1.x's `data`) and merge `metadata` into
        its metadata, as mem0 does; the old version stays in history."""
        text = data if text is None else text
        if text is None and metadata is None:
            raise InvalidInputError("update needs text (or data) or metadata")
        merged = None
        if metadata is not None:
            merged = {**self._note(memory_id).metadata, **(_without_scope(metadata) or {})}
        with _not_found(memory_id):
            self.memory.update(memory_id, text=text, metadata=merged)
        return {"message": "Memory updated successfully!"}

    def delete(self, memory_id: str) -> dict[str, str]:
        """Forget one memory (history keeps that it was deleted)."""
        with _not_found(memory_id):
            self.memory.delete(memory_id)
        return {"message": "Memory deleted successfully!"}

    def delete_all(
        self,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> dict[str, str]:
        """Forget every memory of a user, agent or run (one of them is required)."""
        scope = _scope(user_id, agent_id, run_id)
        if not any(scope.values()):
            raise ScopeRequiredError("delete_all", "user_id, agent_id or run_id (reset: all)")
        self.memory.delete_all(**scope)
        return {"message": "Memories deleted successfully!"}

    def reset(self) -> None:
        """Erase every memory of this memory's tenant, history included, as mem0's reset
        drops its collection. This cannot be undone."""
        owners: set[tuple[str, str]] = set()
        for episode in self.memory.store.dump().episodes:
            if episode.scope.tenant == self.memory.tenant:
                owners.add(_owner(episode))
        for name, value in sorted(owners):
            self.memory.purge_all(**{name: value})

    # -- reading -----------------------------------------------------------------------------

    def get(self, memory_id: str) -> dict[str, Any] | None:
        """One memory by id, or None when there is none (as mem0)."""
        try:
            note = self.memory.get(memory_id)
        except NotFoundError:
            return None
        source = self._sources([note]).get(note.id)
        return mem0_shapes.memory_item(note, source, score=None)

    def get_all(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        top_k: int | None = None,
        limit: int | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        **unsupported: Any,
    ) -> dict[str, Any]:
        """The memories of a user, agent or run, oldest first, at most `top_k` (or
        `limit`; 20 by default, as mem0), narrowed by mem0 `filters`."""
        _refuse(unsupported, "get_all")
        wanted = _count(top_k, limit)
        parts = _parts(filters, user_id, agent_id, run_id, "get_all")
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(found) < wanted:
            page = self.memory.list(limit=PAGE, cursor=cursor, **parts.scope)
            sources = self._sources(page.items)
            items = [mem0_shapes.memory_item(n, sources.get(n.id)) for n in page.items]
            found += [item for item in items if parts.matches(item)]
            cursor = page.cursor
            if cursor is None:
                break
        return {"results": found[:wanted]}

    def search(
        self,
        query: str,
        *,
        filters: Mapping[str, Any] | None = None,
        top_k: int | None = None,
        limit: int | None = None,
        threshold: float | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        rerank: bool = False,
        **unsupported: Any,
    ) -> dict[str, Any]:
        """The memories most relevant to `query`, best first, each with its `score`; at most
        `top_k` (or `limit`; 20 by default), at least `threshold` when given, narrowed by
        mem0 `filters`. Conditions remem's search cannot apply itself are checked on its best
        1000 candidates."""
        _refuse(unsupported | ({"rerank": rerank} if rerank else {}), "search")
        wanted = _count(top_k, limit)
        floor = _threshold(threshold)
        parts = _parts(filters, user_id, agent_id, run_id, "search")
        depth = wanted if not parts.rest else MAX_LIMIT
        hits = self.memory.search(
            query,
            limit=depth,
            filters=parts.metadata or None,
            min_score=floor or 0.0,
            **parts.scope,
        )
        items = [item for item in self._hit_items(hits) if parts.matches(item)]
        return {"results": items[:wanted]}

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        """Every change to a memory, oldest first, as mem0's history rows ([] for an id
        with no history, as mem0)."""
        try:
            events = self.memory.history(memory_id)
        except NotFoundError:
            return []
        note = self.memory.store.get_notes([memory_id]).get(memory_id)
        source = self._sources([note]).get(memory_id) if note is not None else None
        return mem0_shapes.history_rows(events, note, source)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self.memory.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------------

    def _note(self, memory_id: str) -> Note:
        with _not_found(memory_id):
            return self.memory.get(memory_id)

    def _notes(self, note_ids: Sequence[str]) -> list[Note]:
        found = self.memory.store.get_notes(list(note_ids))
        return [found[i] for i in note_ids if i in found]

    def _sources(self, notes: Sequence[Note]) -> dict[str, Episode]:
        """The first episode of each note (who said it), by note id."""
        first = {note.id: note.episode_ids[0] for note in notes if note.episode_ids}
        episodes = self.memory.store.get_episodes(list(set(first.values())))
        return {note: episodes[e] for note, e in first.items() if e in episodes}

    def _hit_items(self, hits: Sequence[Hit]) -> list[dict[str, Any]]:
        notes = self.memory.store.get_notes([hit.id for hit in hits if hit.kind == "note"])
        sources = self._sources(list(notes.values()))
        items = []
        for hit in hits:
            note = notes.get(hit.id) if hit.kind == "note" else None
            if note is not None:  # an episode hit (a passage) has no memory of its own
                items.append(mem0_shapes.memory_item(note, sources.get(note.id), hit.score))
        return items

    def _note_no_model(self) -> None:
        if not self._warned_no_model:
            self._warned_no_model = True
            log.warning(
                "add(infer=True): no language model is configured, so messages are stored"
                " verbatim (set REMEM_LLM_BASE_URL and REMEM_LLM_MODEL to organise them)"
            )


def _verbatim(memory: RememMemory) -> RememMemory:
    """The memory without its model: an add stores the messages and queues no organising."""
    view = copy.copy(memory)
    view.llm = None
    return view


def _messages(messages: Any, *, keep_system: bool) -> Any:
    """mem0's messages as remem content; like mem0, infer=False leaves system turns out."""
    if isinstance(messages, Mapping):
        messages = [messages]
    if isinstance(messages, list) and not keep_system:
        kept = [m for m in messages if not (isinstance(m, Mapping) and m.get("role") == "system")]
        if not kept and messages:
            raise InvalidInputError("messages hold only system messages: nothing to remember")
        return kept
    return messages


def _scope(user_id: Any, agent_id: Any, run_id: Any) -> dict[str, Any]:
    return {"user_id": user_id, "agent_id": agent_id, "session_id": run_id}


def _parts(
    filters: Mapping[str, Any] | None, user_id: Any, agent_id: Any, run_id: Any, call: str
) -> mem0_filters.Split:
    """A call's filters taken apart, its top-level scope ids (mem0 1.x) merged in."""
    parts = mem0_filters.split(filters)
    for name, value in _scope(user_id, agent_id, run_id).items():
        if value is None:
            continue
        if parts.scope.get(name, value) != value:
            raise InvalidInputError(f"{call}: {name} differs between the arguments and filters")
        parts.scope[name] = value
    if not any(parts.scope.values()):
        raise ScopeRequiredError(call, "user_id, agent_id or run_id (in filters or arguments)")
    return parts


def _owner(episode: Episode) -> tuple[str, str]:
    """The broadest scope id of a record: purging by it erases everything it owns."""
    scope = episode.scope
    if scope.user_id:
        return ("user_id", scope.user_id)
    if scope.agent_id:
        return ("agent_id", scope.agent_id)
    return ("session_id", scope.session_id or "")


def _without_scope(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Caller metadata without scope ids, which (as in mem0) cannot move a memory."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"metadata must be a dict, got {type(metadata).__name__}")
    return {k: v for k, v in metadata.items() if k not in (*SCOPE_ARGUMENTS, "actor_id")}


def _count(top_k: Any, limit: Any) -> int:
    wanted = 20 if top_k is None and limit is None else top_k if top_k is not None else limit
    if isinstance(wanted, bool) or not isinstance(wanted, int) or not 1 <= wanted <= MAX_LIMIT:
        raise InvalidInputError(f"top_k must be an integer from 1 to {MAX_LIMIT}, got {wanted!r}")
    return wanted


def _threshold(threshold: Any) -> float | None:
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise InvalidInputError(f"threshold must be a number from 0 to 1, got {threshold!r}")
    if not 0 <= threshold <= 1:
        raise InvalidInputError(f"threshold must be from 0 to 1, got {threshold!r}")
    return float(threshold)


def _moment(timestamp: Any) -> datetime | str | None:
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        try:
            return datetime.fromtimestamp(timestamp, UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidInputError(f"timestamp {timestamp!r} is not a time") from None
    return cast("datetime | str | None", timestamp)


def _refuse(unsupported: Mapping[str, Any], call: str) -> None:
    """mem0 arguments remem has no equivalent for: named, not ignored."""
    if unsupported:
        names = ", ".join(sorted(unsupported))
        raise InvalidInputError(f"{call}: remem has no equivalent of mem0's {names}")


@contextmanager
def _not_found(memory_id: str) -> Iterator[None]:
    """Raise remem's NotFoundError for `memory_id` as MemoryNotFoundError (a ValueError)."""
    try:
        yield
    except NotFoundError as error:
        if isinstance(error, MemoryNotFoundError):
            raise
        raise MemoryNotFoundError(error.kind, error.item_id) from None
