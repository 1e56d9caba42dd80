"""`AsyncClient`: `Client` with coroutines, for asyncio code (the same routes, retries and
answers: `remem.client.base`; only sending is awaited)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterator
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

__all__ = ["AsyncClient"]

P = ParamSpec("P")
R = TypeVar("R")


def _remote(
    method: Callable[Concatenate[Memory, P], R],
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, R]]:
    """`Memory.<method>` as a coroutine, done by the server (same parameters, same docs)."""

    @functools.wraps(method)
    async def call(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return cast(R, await self._run(method.__name__, args, kwargs))

    return call


class AsyncClient:
    """`Client` as coroutines: `Memory`'s API over a remote `remem serve`, for asyncio.

        async with AsyncClient("https://memory.example", api_key="rk_...") as memory:
            await memory.add("I moved to Lisbon in March.", user_id="ana")

    Settings, retries, errors and what differs from `Memory` are `Client`'s; files that
    `ingest` and `import_file` upload are read off the event loop.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = TIMEOUT,
        retries: int = RETRIES,
        backoff: float = BACKOFF,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.options = Options.resolve(url, api_key, timeout, retries, backoff)
        self._http = httpx.AsyncClient(
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

    def as_tenant(self, tenant: str) -> AsyncClient:
        """Not for a client: it acts for its API key's tenant (raises ConfigError)."""
        raise ConfigError(LOCAL["as_tenant"])

    async def close(self) -> None:
        """Close the client's connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- sending ---------------------------------------------------------------------------

    async def _run(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        route = ROUTES[name]
        arguments = bind(name, args, kwargs)
        results: list[Any] = []
        skipped: list[tuple[str, str]] = []
        calls = route.build(arguments)
        while (call := await _next(calls, route)) is not None:
            if call.skipped is not None:
                skipped.append(call.skipped)
            elif route.answer == "export":
                results.append(await self._export(route, call, arguments))
            else:
                results.append(await self._send(name, route, call, arguments))
        return finish(name, arguments, results, skipped)

    async def _send(self, name: str, route: Route, call: Call, arguments: Arguments) -> Any:
        attempt = Attempt(route, self.options.retries)
        while True:
            try:
                answer = await self._http.send(self._request(name, route, call))
            except httpx.TransportError as error:
                if not attempt.again_after_error(error):
                    raise unreachable(self.options, call, attempt) from error
                await asyncio.sleep(self.options.delay(attempt))
                continue
            if attempt.again_after(answer):
                await asyncio.sleep(self.options.delay(attempt))
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

    async def _export(self, route: Route, call: Call, arguments: Arguments) -> int:
        """Stream the export into a file here, whole or not at all."""
        attempt = Attempt(route, self.options.retries)
        while True:
            target, partial, out = export_file(arguments["path"])
            try:
                with out:
                    async with self._http.stream(
                        call.method, call.path, timeout=self.options.timeout_of(route)
                    ) as answer:
                        if answer.status_code != 200:
                            await answer.aread()
                            if attempt.again_after(answer):
                                await asyncio.sleep(self.options.delay(attempt))
                                continue
                            return int(read("export", route, call, arguments, answer))
                        async for chunk in answer.aiter_bytes():
                            out.write(chunk)
                return exported(answer, Path(target), partial)
            except httpx.TransportError as error:
                if not attempt.again_after_error(error):
                    raise unreachable(self.options, call, attempt) from error
                await asyncio.sleep(self.options.delay(attempt))
            finally:
                partial.unlink(missing_ok=True)


async def _next(calls: Iterator[Call], route: Route) -> Call | None:
    """The next call; building one may read files here (an upload), off the event loop."""
    if route.method == "POST" and route.path in ("/v1/import", "/v1/ingest"):
        return await asyncio.to_thread(next, calls, None)
    return next(calls, None)
