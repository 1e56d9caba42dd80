"""What `Client` and `AsyncClient` share: settings, when to send again, how an answer
reads back. Only sending (blocking or awaited) differs between the two."""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, get_type_hints

import httpx

from remem.client.answers import UnreadableAnswer, decode, error_from
from remem.client.routes import Arguments, Call, Route, merge_ingested
from remem.errors import ConfigError, InvalidInputError, NotFoundError, RememError, StoreError
from remem.inputs import check_path
from remem.memory import Memory
from remem.types import ImportResult

DEFAULT_URL = "http://127.0.0.1:8765"  # where `remem serve` listens by default
TIMEOUT = 30.0
RETRIES = 3
BACKOFF = 0.5
SLOW_READ = 600.0
# answers worth another try (remem answers 503 when its store or model is unavailable,
# before anything is written); for a `once` route only 503 is retried
RETRY_STATUS = frozenset({500, 502, 503, 504})
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


@dataclass(frozen=True)
class Options:
    """Where the server is and how to talk to it."""

    url: str
    api_key: str | None
    timeout: float
    retries: int
    backoff: float

    @classmethod
    def resolve(
        cls, url: str | None, api_key: str | None, timeout: float, retries: int, backoff: float
    ) -> Options:
        """Arguments, else REMEM_URL / REMEM_API_KEY, else a local `remem serve`."""
        url = url or os.environ.get("REMEM_URL") or DEFAULT_URL
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"the server URL must start with http:// or https://, got {url!r}")
        api_key = api_key or os.environ.get("REMEM_API_KEY") or None
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20:
            raise InvalidInputError(f"retries must be an integer from 0 to 20, got {retries!r}")
        for name, value in (("timeout", timeout), ("backoff", backoff)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidInputError(f"{name} must be a number of seconds, got {value!r}")
        return cls(url.rstrip("/"), api_key, float(timeout), retries, float(backoff))

    def timeout_of(self, route: Route) -> httpx.Timeout:
        """The route's timeouts: waiting for an answer that takes work (an ingest, an
        import, running jobs) gets SLOW_READ seconds at least."""
        read = max(self.timeout, SLOW_READ) if route.slow else self.timeout
        return httpx.Timeout(self.timeout, read=read)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def delay(self, attempt: Attempt) -> float:
        """Seconds to wait before the next try: `backoff`, doubled at each retry."""
        return float(self.backoff * 2 ** (attempt.retried - 1))


class Attempt:
    """The outcomes of sending one call so far, and whether to send it again."""

    def __init__(self, route: Route, retries: int) -> None:
        self.route = route
        self.left = retries
        self.maybe_done = False  # an earlier attempt may have reached the server
        self.last = "no attempt made"
        self.retried = 0

    def again_after_error(self, error: httpx.TransportError) -> bool:
        self.last = f"{type(error).__name__}: {error}"
        sent = not isinstance(error, NEVER_SENT)
        self.maybe_done = self.maybe_done or sent
        return self._spend(not (sent and self.route.once))

    def again_after(self, response: httpx.Response) -> bool:
        status = response.status_code
        if status not in RETRY_STATUS:
            return False
        self.last = f"HTTP {status}"
        self.maybe_done = self.maybe_done or status != 503
        return self._spend(status == 503 or not self.route.once)

    def _spend(self, allowed: bool) -> bool:
        if allowed and self.left > 0:
            self.left -= 1
            self.retried += 1
            return True
        return False


def unreachable(options: Options, call: Call, attempt: Attempt) -> StoreError:
    return StoreError(
        f"remem at {options.url} did not answer {call.method} {call.path}: {attempt.last}"
    )


def read(name: str, route: Route, call: Call, arguments: Arguments, answer: httpx.Response) -> Any:
    """What `Memory.<name>` returns, from the server's answer (or the error it raises)."""
    if answer.status_code >= 400:
        raise _error(route, call, arguments, answer)
    if route.answer == "none":
        return None
    try:
        data = answer.json()
        if route.answer in ("deleted", "jobs", "purged"):
            return decode(int, data.get(route.answer) if isinstance(data, dict) else None)
        return decode(return_type(name), data)
    except (ValueError, UnreadableAnswer) as error:
        unreadable = f"{call.method} {call.path} answered something unreadable: {error}"
        raise StoreError(unreadable) from None


def gone(route: Route, attempt: Attempt, answer: httpx.Response) -> bool:
    """A forget the server may have done on an earlier try whose answer was lost: now
    there is nothing left to forget, which is what was asked."""
    return route.answer == "none" and attempt.maybe_done and answer.status_code == 404


def _error(route: Route, call: Call, arguments: Arguments, answer: httpx.Response) -> RememError:
    try:
        body = answer.json()
    except ValueError:
        body = None
    kind = body.get("error", {}).get("type") if isinstance(body, dict) else None
    if answer.status_code == 404 and kind in ("NotFound", None):  # no route matched the path
        if route.item is not None:  # an id with a '/' matches no route: no such record
            argument, what = route.item
            return NotFoundError(what, str(arguments[argument]))
        return ConfigError(
            f"the server has no {call.method} {call.path}: is it an older remem? (HTTP 404)"
        )
    return error_from(answer.status_code, body, answer.text)


@functools.cache
def return_type(name: str) -> Any:
    return get_type_hints(getattr(Memory, name))["return"]


def finish(
    name: str, arguments: Arguments, results: list[Any], skipped: list[tuple[str, str]]
) -> Any:
    """One value from the answers of a method sent as several calls (an ingest in
    batches), reporting progress as the method would (at the end)."""
    if name in ("ingest", "ingest_uploads"):
        merged = merge_ingested(results)
        return replace(merged, skipped=(*merged.skipped, *skipped))
    (result,) = results
    progress = arguments.get("progress")
    if name == "import_file" and progress is not None and isinstance(result, ImportResult):
        progress(result.added + result.skipped)
    return result


def not_sent(error: TypeError | ValueError, name: str) -> InvalidInputError:
    """An argument JSON cannot carry (a set, NaN...)."""
    return InvalidInputError(f"{name}: the arguments must be JSON-serialisable: {error}")


def export_file(path: Any) -> tuple[Path, Path, IO[bytes]]:
    """(target, its temporary file beside it, open for writing): an export is written
    whole, then moved in place, as `Memory.export` does."""
    target = Path(check_path(path, "export")).expanduser()
    if target.is_dir():
        raise InvalidInputError(f"cannot export to {target}: it is a folder")
    try:
        handle, name = tempfile.mkstemp(".partial", f".{target.name}.", target.parent)
    except OSError as error:
        raise InvalidInputError(f"cannot write in {target.parent}: {error.strerror}") from None
    return target, Path(name), os.fdopen(handle, "wb")


def exported(answer: httpx.Response, target: Path, partial: Path) -> int:
    """Move a complete export in place; return how many records it holds."""
    partial.replace(target)
    try:
        return int(answer.headers.get("x-remem-records", ""))
    except ValueError:
        raise StoreError("the export answer did not say how many records it holds") from None
