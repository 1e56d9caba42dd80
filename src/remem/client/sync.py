"""`Client`: a remote `remem serve` with `Memory`'s methods, arguments and return types."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import httpx

from remem.client.base import (
    BACKOFF,
    RETRIES,
    TIMEOUT,
    Attempt,
    Options,
    export_file,
    exported,
    finish,
    gone,
    not_sent,
    read,
    unreachable,
)
from remem.client.routes import LOCAL, ROUTES, Arguments, Call, Route, bind
from remem.errors import ConfigError
from remem.memory import Memory

__all__ = ["Client"]

P = ParamSpec("P")
R = TypeVar("R")


def _remote(method: Callable[Concatenate[Memory, P], R]) -> Callable[Concatenate[Client, P], R]:
    """`Memory.<method>`, done by the server (same parameters, same docs)."""

    @functools.wraps(method)
    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return cast(R, self._run(method.__name__, args, kwargs))

    return call


class Client:
    """`Memory`'s API over a remote `remem serve`: the same methods, arguments, return
    types (remem's records) and errors (the `RememError` subclass the server raised).

        with Client("https://memory.example", api_key="rk_...") as memory:
            memory.add("I moved to Lisbon in March.", user_id="ana")

    `url` and `api_key` default to REMEM_URL and REMEM_API_KEY (then a local server on
    127.0.0.1:8765). A request that fails to connect, or gets a 5xx, is sent again up to
    `retries` times, after `backoff` seconds doubling each time; `add` and `update`,
    which must not happen twice, are sent again only when they cannot have reached the
    server (no connection, or remem's 503: nothing was written). `timeout` is in seconds
    (what makes the server work a while, an ingest, an import or jobs, waits 10 minutes).
    The server never answering is a `StoreError`, a missing or wrong key a `ConfigError`.

    What differs from `Memory`: the client acts for its key's tenant (`as_tenant` cannot
    pick another: make a client with that tenant's key); `ingest` uploads the files it
    finds here (`me` must be a name, and `progress` is not reported); `export` and
    `import_file` read and write files here; `run_jobs` and `retry_failed_jobs` span
    tenants, so only a keyless loopback server's own user may call them.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = TIMEOUT,
        retries: int = RETRIES,
        backoff: float = BACKOFF,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.options = Options.resolve(url, api_key, timeout, retries, backoff)
        self._http = httpx.Client(
            base_url=self.options.url,
            headers=self.options.headers(),
            timeout=self.options.timeout,
            transport=transport,
        )

    add = _remote(Memory.add)
    think = _remote(Memory.think)
    update = _remote(Memory.update)
    delete = _remote(Memory.delete)
    purge = _remote(Memory.purge)
    purge_all = _remote(Memory.purge_all)
    delete_all = _remote(Memory.delete_all)
    run_jobs = _remote(Memory.run_jobs)
    retry_failed_jobs = _remote(Memory.retry_failed_jobs)
    search = _remote(Memory.search)
    context = _remote(Memory.context)
    get = _remote(Memory.get)
    episode = _remote(Memory.episode)
    list = _remote(Memory.list)
    links = _remote(Memory.links)
    history = _remote(Memory.history)
    export = _remote(Memory.export)
    import_file = _remote(Memory.import_file)
    ingest = _remote(Memory.ingest)
    ingest_uploads = _remote(Memory.ingest_uploads)
    profile = _remote(Memory.profile)
    topics = _remote(Memory.topics)
    fill = _remote(Memory.fill)
    pin = _remote(Memory.pin)
    unpin = _remote(Memory.unpin)
    archive = _remote(Memory.archive)
    unarchive = _remote(Memory.unarchive)
    sweep_expired = _remote(Memory.sweep_expired)
    consolidate = _remote(Memory.consolidate)
    set_default_expiry = _remote(Memory.set_default_expiry)

    def as_tenant(self, tenant: str) -> Client:
        """Not for a client: it acts for its API key's tenant (raises ConfigError)."""
        raise ConfigError(LOCAL["as_tenant"])

    def close(self) -> None:
        """Close the client's connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- sending ---------------------------------------------------------------------------

    def _run(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        route = ROUTES[name]
        arguments = bind(name, args, kwargs)
        results: list[Any] = []
        skipped: list[tuple[str, str]] = []
        for call in route.build(arguments):
            if call.skipped is not None:
                skipped.append(call.skipped)
            elif route.answer == "export":
                results.append(self._export(route, call, arguments))
            else:
                results.append(self._send(name, route, call, arguments))
        return finish(name, arguments, results, skipped)

    def _send(self, name: str, route: Route, call: Call, arguments: Arguments) -> Any:
        attempt = Attempt(route, self.options.retries)
        while True:
            try:
                answer = self._http.send(self._request(name, route, call))
            except httpx.TransportError as error:
                if not attempt.again_after_error(error):
                    raise unreachable(self.options, call, attempt) from error
                time.sleep(self.options.delay(attempt))
                continue
            if attempt.again_after(answer):
                time.sleep(self.options.delay(attempt))
                continue
            return (
                None if gone(route, attempt, answer) else read(name, route, call, arguments, answer)
            )

    def _request(self, name: str, route: Route, call: Call) -> httpx.Request:
        try:
            return self._http.build_request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                files=call.files,
                data=call.data,
                timeout=self.options.timeout_of(route),
            )
        except (TypeError, ValueError) as error:
            raise not_sent(error, name) from None

    def _export(self, route: Route, call: Call, arguments: Arguments) -> int:
        """Stream the export into a file here, whole or not at all."""
        attempt = Attempt(route, self.options.retries)
        while True:
            target, partial, out = export_file(arguments["path"])
            try:
                with (
                    out,
                    self._http.stream(
                        call.method, call.path, timeout=self.options.timeout_of(route)
                    ) as answer,
                ):
                    if answer.status_code != 200:
                        answer.read()
                        if attempt.again_after(answer):
                            time.sleep(self.options.delay(attempt))
                            continue
                        return int(read("export", route, call, arguments, answer))
                    for chunk in answer.iter_bytes():
                        out.write(chunk)
                return exported(answer, Path(target), partial)
            except httpx.TransportError as error:
                if not attempt.again_after_error(error):
                    raise unreachable(self.options, call, attempt) from error
                time.sleep(self.options.delay(attempt))
            finally:
                partial.unlink(missing_ok=True)
