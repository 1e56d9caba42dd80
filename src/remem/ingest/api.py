"""`Memory.ingest` (a mixin, as `remem.profile.api` is, so `Memory`'s module stays about
storing and finding memories)."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from remem import clock
from remem.embedders import Embedder
from remem.errors import InvalidInputError
from remem.ingest.records import Source
from remem.ingest.run import Progress, Target, ingest_paths, ingest_sources
from remem.llms import LLM
from remem.stores.base import Changes, Store
from remem.types import IngestResult, Scope
from remem.write.jobs import JobRunner

ORGANISE = ("now", "later")


class IngestMethods:
    """Bringing files in, over the parts `Memory` holds."""

    store: Store
    embedder: Embedder
    llm: LLM | None
    actor: str
    _writing: threading.Lock
    _jobs: JobRunner

    def _scope(self, user_id: Any, agent_id: Any, session_id: Any) -> Scope:
        raise NotImplementedError

    def _apply(self, changes: Changes) -> None:
        raise NotImplementedError

    def ingest(
        self,
        paths: str | Path | builtins.list[str | Path],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        me: str | Callable[[builtins.list[str]], str | None] | None = None,
        organise: str = "now",
        progress: Callable[[Progress], None] | None = None,
    ) -> IngestResult:
        """Bring in files and folders (recursively): chat exports (ChatGPT, Claude, WhatsApp,
        Telegram), notes and documents (Markdown, text, HTML, PDF, e-mail). Each
        conversation or document becomes a session of the owner (`user_id` and/or
        `agent_id`), each message or section an episode and a note with its provenance.
        Ingesting again writes only what changed: changed chunks become new versions,
        gone ones are forgotten. `me` is the person's name in chats that do not say which
        sender they are (or a callable asked once with the senders). With a model, the
        new episodes are organised as `add` organises them, or, with `organise="later"`,
        left queued for `remem worker`. Files that cannot be read are reported in
        `skipped` with the reason; the others go on."""
        target = self._ingest_target(user_id, agent_id, organise)
        return ingest_paths(paths, target, self._ingest_commit(organise), me=me, progress=progress)

    def ingest_uploads(
        self,
        uploads: Sequence[tuple[str, bytes]],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        me: str | None = None,
        organise: str = "now",
    ) -> IngestResult:
        """`ingest` for files sent to a server (REST, the web UI): (name, bytes) pairs. A
        name (a relative path, cleaned: `upload_name`) is provenance and what the file is
        known by, never a path that is opened: an upload of the same name again updates
        what the last one gave; a second file of one name in the same call is skipped."""
        target = self._ingest_target(user_id, agent_id, organise)
        return ingest_sources(upload_sources(uploads), target, self._ingest_commit(organise), me=me)

    def _ingest_target(self, user_id: Any, agent_id: Any, organise: str) -> Target:
        if organise not in ORGANISE:
            raise InvalidInputError(f"organise must be 'now' or 'later', got {organise!r}")
        owner = self._scope(user_id, agent_id, None)
        return Target(self.store, self.embedder, owner, self.actor, self.llm is not None)

    def _ingest_commit(self, organise: str) -> Callable[[Changes], None]:
        """How a batch is committed: one transaction; then its organising jobs run (or
        wait for a worker) as an `add`'s do, unless they are left for later."""

        def commit(changes: Changes) -> None:
            with self._writing:
                self._apply(changes)
            for job in changes.jobs if organise == "now" else ():
                self._jobs.after_add(Changes(jobs=[job]))

        return commit


def upload_sources(uploads: Sequence[tuple[str, bytes]]) -> list[Source | tuple[str, str]]:
    """Uploads as sources named (and known across ingests) by their cleaned names; an
    upload of a name already sent in the same request is skipped, never a replacement."""
    moment = clock.now()
    sources: list[Source | tuple[str, str]] = []
    seen: set[str] = set()
    for index, (name, data) in enumerate(uploads):
        cleaned = upload_name(name, index)
        if cleaned in seen:
            sources.append((cleaned, "another file of this name came first in this request"))
        else:
            seen.add(cleaned)
            sources.append(Source(data, cleaned, moment))
    return sources


def upload_name(name: str, index: int) -> str:
    """What an uploaded file is called (provenance, and what it is known by when uploaded
    again): the name a client sent as a relative path, each part without control
    characters and leading dots (so no `..`, no hidden or absolute path), at most 200
    characters ("upload-N" when nothing is left)."""
    parts = []
    for part in name.replace("\\", "/").split("/"):
        cleaned = "".join(c for c in part if c.isprintable()).strip().lstrip(".").strip()
        if cleaned:
            parts.append(cleaned)
    joined = "/".join(parts)
    return joined[-200:].lstrip("/") or f"upload-{index + 1}"
