"""Each `Memory` method as the REST request(s) that do it, and how its answer reads back.

Pure and shared by `Client` and `AsyncClient`, so the two cannot drift: a method's
arguments (bound to `Memory`'s own signature) become `Call`s; the answers become the
value `Memory` returns. Local file work (reading what `ingest` and `import_file` upload)
happens while the calls are built, lazily, one batch at a time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from remem import clock
from remem.errors import InvalidInputError
from remem.ingest.api import upload_sources
from remem.ingest.files import find_files, read_source
from remem.ingest.records import Source, UnreadableFileError
from remem.inputs import check_id, check_path
from remem.memory import Memory
from remem.types import IngestResult

Arguments = dict[str, Any]
# per request, below the server's limits (100 files, 256 MiB a request)
UPLOAD_FILES = 100
UPLOAD_BYTES = 128 * 2**20


@dataclass(frozen=True)
class Call:
    """One HTTP request: method, path (ids quoted), query, JSON body or multipart files."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    data: dict[str, str] | None = None
    skipped: tuple[str, str] | None = None  # no request: a file reported as skipped, why


@dataclass(frozen=True)
class Route:
    """How a method maps: the server route it uses (`method path`, for the parity test),
    whether sending it twice could do it twice (`once`: retried only when it certainly
    never reached the server), the id its path names (a 404 there is that id not found)."""

    method: str
    path: str
    build: Callable[[Arguments], Iterator[Call]]
    once: bool = False
    slow: bool = False  # the server works a while before it answers (files, jobs)
    item: tuple[str, str] | None = None  # (argument, kind) of the id in the path
    answer: str = "json"  # json | deleted | jobs | purged | none | ingest | export


def bind(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Arguments:
    """The arguments of a call of `Memory.<name>` by name, defaults filled in; a wrong
    argument is the TypeError `Memory` itself would raise."""
    bound = inspect.signature(getattr(Memory, name)).bind(None, *args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    arguments.pop("self")
    return arguments


def _one(call: Call) -> Iterator[Call]:
    yield call


def _scope(arguments: Arguments, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: arguments[name] for name in names if arguments.get(name) is not None}


SCOPE = ("user_id", "agent_id", "session_id")
OWNER = ("user_id", "agent_id")


def _id(arguments: Arguments, name: str) -> str:
    return quote(check_id(arguments[name], name), safe="")


def _time(value: Any) -> Any:
    """A time as the server reads it (the same parsing `Memory` does, so the same errors)."""
    return None if value is None else clock.to_text(clock.parse_time(value))


def _body(arguments: Arguments, *names: str) -> dict[str, Any]:
    """The named arguments that are set, as a JSON body (the server's defaults are
    `Memory`'s, so what is left out means the same)."""
    body = {name: arguments[name] for name in names if arguments[name] is not None}
    if "content" in body and not isinstance(body["content"], str):
        content = body["content"]
        if isinstance(content, list | tuple):
            body["content"] = [dict(m) if isinstance(m, Mapping) else m for m in content]
    return body


def _add(a: Arguments) -> Iterator[Call]:
    body = _body(a, "content", "metadata", *SCOPE) | {"occurred_at": _time(a["occurred_at"])}
    body["expires_at"] = _time(a["expires_at"])
    return _one(Call("POST", "/v1/memories", json={k: v for k, v in body.items() if v is not None}))


def _think(a: Arguments) -> Iterator[Call]:
    body = _body(a, "text", "evidence_ids", "metadata", *SCOPE)
    if isinstance(body.get("evidence_ids"), tuple):
        body["evidence_ids"] = list(body["evidence_ids"])
    body |= {"occurred_at": _time(a["occurred_at"])}
    return _one(Call("POST", "/v1/thoughts", json={k: v for k, v in body.items() if v is not None}))


def _consolidate(a: Arguments) -> Iterator[Call]:
    body = _body(a, *SCOPE, "dry_run", "model") | {"since": _time(a["since"])}
    return _one(
        Call("POST", "/v1/consolidate", json={k: v for k, v in body.items() if v is not None})
    )


def _default_expiry(a: Arguments) -> Iterator[Call]:
    after = a["after"]
    seconds = after.total_seconds() if isinstance(after, timedelta) else after
    body = _body(a, *SCOPE) | {"after_seconds": seconds}
    return _one(Call("PUT", "/v1/default-expiry", json=body))


def _search(a: Arguments) -> Iterator[Call]:
    names = [name for name in a if name != "query"]
    return _one(Call("POST", "/v1/search", json={"query": a["query"], **_body(a, *names)}))


def _context(a: Arguments) -> Iterator[Call]:
    names = [name for name in a if name != "query"]
    return _one(Call("POST", "/v1/context", json={"query": a["query"], **_body(a, *names)}))


def _list(a: Arguments) -> Iterator[Call]:
    params = _body(a, *SCOPE, "limit", "cursor", "order") | (
        {"archived": "true"} if a["archived"] else {}
    )
    return _one(Call("GET", "/v1/memories", params=params))


def _forget_scope(purge: bool) -> Callable[[Arguments], Iterator[Call]]:
    def build(a: Arguments) -> Iterator[Call]:
        params = _scope(a, SCOPE) | ({"purge": "true"} if purge else {})
        return _one(Call("DELETE", "/v1/memories", params=params))

    return build


def _by_id(method: str, template: str, name: str, **more: Any) -> Callable[[Arguments], Any]:
    def build(a: Arguments) -> Iterator[Call]:
        path = template.replace("{" + name + "}", _id(a, name))
        return _one(Call(method, path, **more))

    return build


def _update(a: Arguments) -> Iterator[Call]:
    path = "/v1/memories/" + _id(a, "memory_id")
    body = _body(a, "text", "metadata", "expected_version")
    if a["expires_at"] is not None:  # "never", or a time read as `Memory` reads it
        body["expires_at"] = "never" if a["expires_at"] == "never" else _time(a["expires_at"])
    return _one(Call("PATCH", path, json=body))


def _profile(a: Arguments) -> Iterator[Call]:
    params = _scope(a, (*OWNER, "person")) | ({"rebuild": "true"} if a["rebuild"] else {})
    return _one(Call("GET", "/v1/profile", params=params))


def _fill(a: Arguments) -> Iterator[Call]:
    body = {"form": a["schema"], **_body(a, *OWNER, "instructions")}
    return _one(Call("POST", "/v1/fill", json=body))


def _import(a: Arguments) -> Iterator[Call]:
    path = Path(check_path(a["path"], "import"))
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidInputError(f"cannot import {path}: {error.strerror or error}") from None
    files = [("file", (path.name, data, "application/x-ndjson"))]
    yield Call("POST", "/v1/import", files=files)


def _ingest_form(a: Arguments) -> dict[str, str]:
    me = a.get("me")
    if me is not None and not isinstance(me, str):
        raise InvalidInputError("a remote ingest takes `me` as a name, not a callable")
    form = _scope(a, OWNER) | ({"me": me} if me else {})
    return form | {"organise": a["organise"]}


def _uploads(form: dict[str, str], sources: list[Source]) -> Call:
    files = [("files", (s.path, s.data, "application/octet-stream")) for s in sources]
    return Call("POST", "/v1/ingest", files=files, data=form)


def _ingest_uploads(a: Arguments) -> Iterator[Call]:
    form = _ingest_form(a)
    sources: list[Source] = []
    for source in upload_sources(a["uploads"]):
        if isinstance(source, Source):
            sources.append(source)
        else:
            yield Call("", "", skipped=source)
    for batch in _batches(sources):
        yield _uploads(form, batch)


def _ingest(a: Arguments) -> Iterator[Call]:
    """Upload the files an ingest on this machine would read, named as it names them;
    what cannot be read is reported as skipped (a `Call` with no request)."""
    form = _ingest_form(a)
    paths = a["paths"] if isinstance(a["paths"], list | tuple) else [a["paths"]]
    found = list(find_files([Path(p).expanduser() for p in paths]))
    batch: list[Source] = []
    for item in found:
        try:
            if item.problem is not None or item.path is None:
                raise UnreadableFileError(item.problem or "cannot read it")
            source = read_source(item)
        except UnreadableFileError as error:
            yield Call("", "", skipped=(item.name, str(error)))
            continue
        if batch and _too_big([*batch, source]):
            yield _uploads(form, batch)
            batch = []
        batch.append(source)
    if batch or not found:
        yield _uploads(form, batch)


def _too_big(batch: list[Source]) -> bool:
    return len(batch) > UPLOAD_FILES or sum(len(s.data) for s in batch) > UPLOAD_BYTES


def _batches(sources: list[Source]) -> Iterator[list[Source]]:
    batch: list[Source] = []
    for source in sources:
        if batch and _too_big([*batch, source]):
            yield batch
            batch = []
        batch.append(source)
    yield batch


def merge_ingested(results: list[IngestResult]) -> IngestResult:
    """One result of an ingest sent in several requests."""
    return IngestResult(
        files=sum(r.files for r in results),
        added=sum(r.added for r in results),
        updated=sum(r.updated for r in results),
        unchanged=sum(r.unchanged for r in results),
        removed=sum(r.removed for r in results),
        skipped=tuple(pair for r in results for pair in r.skipped),
    )


def _export(a: Arguments) -> Iterator[Call]:
    check_path(a["path"], "export")
    return _one(Call("GET", "/v1/export"))


def _plain(method: str, path: str) -> Callable[[Arguments], Iterator[Call]]:
    return lambda a: _one(Call(method, path))


MEMORY = "/v1/memories/{memory_id}"
ROUTES: dict[str, Route] = {
    "add": Route("POST", "/v1/memories", _add, once=True),
    # a repeated conclusion merges into the first, so sending it again does no harm
    "think": Route("POST", "/v1/thoughts", _think),
    "search": Route("POST", "/v1/search", _search),
    "context": Route("POST", "/v1/context", _context),
    "get": Route("GET", MEMORY, _by_id("GET", MEMORY, "memory_id"), item=("memory_id", "memory")),
    "episode": Route(
        "GET",
        "/v1/episodes/{episode_id}",
        _by_id("GET", "/v1/episodes/{episode_id}", "episode_id"),
        item=("episode_id", "episode"),
    ),
    "list": Route("GET", "/v1/memories", _list),
    "update": Route("PATCH", MEMORY, _update, once=True, item=("memory_id", "memory")),
    "delete": Route(
        "DELETE",
        MEMORY,
        _by_id("DELETE", "/v1/memories/{item_id}", "item_id"),
        item=("item_id", "memory"),
        answer="none",
    ),
    "purge": Route(
        "DELETE",
        MEMORY,
        _by_id("DELETE", "/v1/memories/{item_id}", "item_id", params={"purge": "true"}),
        item=("item_id", "memory"),
        answer="none",
    ),
    "delete_all": Route("DELETE", "/v1/memories", _forget_scope(False), answer="deleted"),
    "purge_all": Route("DELETE", "/v1/memories", _forget_scope(True), answer="deleted"),
    "links": Route(
        "GET",
        "/v1/memories/{memory_id}/links",
        _by_id("GET", "/v1/memories/{memory_id}/links", "memory_id"),
        item=("memory_id", "memory"),
    ),
    "history": Route(
        "GET",
        "/v1/memories/{item_id}/history",
        _by_id("GET", "/v1/memories/{item_id}/history", "item_id"),
        item=("item_id", "memory or episode"),
    ),
    "export": Route("GET", "/v1/export", _export, answer="export", slow=True),
    "import_file": Route("POST", "/v1/import", _import, slow=True),
    "ingest": Route("POST", "/v1/ingest", _ingest, answer="ingest", slow=True),
    "ingest_uploads": Route("POST", "/v1/ingest", _ingest_uploads, answer="ingest", slow=True),
    "profile": Route("GET", "/v1/profile", _profile),
    "topics": Route(
        "GET", "/v1/topics", lambda a: _one(Call("GET", "/v1/topics", params=_scope(a, OWNER)))
    ),
    "fill": Route("POST", "/v1/fill", _fill),
    "run_jobs": Route(
        "POST", "/v1/jobs/run", _plain("POST", "/v1/jobs/run"), answer="jobs", slow=True
    ),
    "retry_failed_jobs": Route(
        "POST", "/v1/jobs/retry", _plain("POST", "/v1/jobs/retry"), answer="jobs"
    ),
    **{
        name: Route(
            method,
            f"{MEMORY}/{part}",
            _by_id(method, f"{MEMORY}/{part}", "memory_id"),
            item=("memory_id", "memory"),
        )
        for name, method, part in (
            ("pin", "POST", "pin"),
            ("unpin", "DELETE", "pin"),
            ("archive", "POST", "archive"),
            ("unarchive", "DELETE", "archive"),
        )
    },
    # merging what is already merged finds nothing more, so sending it again does no harm
    "consolidate": Route("POST", "/v1/consolidate", _consolidate),
    "set_default_expiry": Route("PUT", "/v1/default-expiry", _default_expiry, answer="none"),
    "sweep_expired": Route(
        "POST", "/v1/expired/sweep", _plain("POST", "/v1/expired/sweep"), answer="purged"
    ),
}

# Memory methods a client does not send: what each does instead.
LOCAL = {
    "close": "closes the client's connections",
    "as_tenant": "a client acts for its API key's tenant: make one with that tenant's key",
    "from_config": "a client is made from a URL and an API key (or REMEM_URL, REMEM_API_KEY)",
}
