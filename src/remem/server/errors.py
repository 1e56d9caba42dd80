"""Every failure as a JSON body `{"error": {"type", "message"}}` with a fitting 4xx status.

A 5xx means remem itself failed (database, model); bad input never produces one.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match

from remem.errors import (
    ConflictError,
    EmbedderError,
    InvalidInputError,
    NotFoundError,
    RememError,
    StoreError,
)
from remem.server.limits import BodyTooLargeError, too_large
from remem.server.schemas import CURSOR, NO_NUL, SOME_TEXT

log = logging.getLogger("remem.server")
# what a pattern in the schemas asks, for people
PATTERN_WORDS = {
    SOME_TEXT: "must hold some text (not empty or blank) and no NUL character",
    NO_NUL: "must not contain a NUL character",
    CURSOR: "is not a cursor this server handed out",
}
UNION_TAG = re.compile(r"str|int|float|bool|dict|list|none|[\w-]*(-|\[).*")

STATUS_OF: list[tuple[type[RememError], int]] = [
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidInputError, 422),
    (EmbedderError, 503),
    (StoreError, 503),
]


WHY = {
    400: "The body is not valid UTF-8.",
    401: "An API key is needed, or the one sent is not valid.",
    403: "A keyless server refuses a write from a web page of another origin.",
    404: "No such memory or episode (in the caller's tenant).",
    409: "The memory is no longer at the version the request expected.",
    412: "If-Match names a version the memory is no longer at: read it again.",
    413: "The body is over the size limit.",
    421: "A keyless server answers only requests addressed to localhost.",
    422: "The request is invalid; the message names the field.",
    502: "The upstream model failed or answered something unreadable.",
    503: "The store or the embedding model is unavailable.",
}


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    """Every error the server answers."""

    error: ErrorDetail


def error_body(kind: str, message: str) -> dict[str, Any]:
    # a message may quote the request; what UTF-8 cannot carry is shown escaped
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return {"error": {"type": kind, "message": message}}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of these error statuses, each a JSON `ErrorBody`."""
    return {status: {"model": ErrorBody, "description": WHY[status]} for status in statuses}


def install(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into JSON errors."""

    @app.exception_handler(RememError)
    async def remem_error(request: Request, error: RememError) -> JSONResponse:
        status = next((code for kind, code in STATUS_OF if isinstance(error, kind)), 500)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, error)
        return JSONResponse(error_body(type(error).__name__, str(error)), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("InvalidRequest", describe(error.errors())), status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if isinstance(error.__cause__, BodyTooLargeError):  # raised while FastAPI read the body
            return too_large(error.__cause__.limit)
        message = str(error.detail)
        if isinstance(error.__cause__, UnicodeDecodeError):
            message = f"the request body is not valid UTF-8 ({error.__cause__.reason})"
        headers = dict(error.headers or {})
        if error.status_code == 405:  # Starlette names only the methods of one route
            headers["Allow"] = ", ".join(sorted(allowed_methods(request)))
        return JSONResponse(
            error_body(_http_kind(error.status_code), message),
            status_code=error.status_code,
            headers=headers,
        )


def allowed_methods(request: Request) -> set[str]:
    """Every method some route serves at the request's path."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return methods


def describe(errors: Any) -> str:
    """Pydantic's error list as one sentence per problem, naming where each is. Of a field
    that may be one of several types, the type mismatches are left out when one branch says
    more (a pattern, a deeper field), and otherwise joined with "or"."""
    located = [(_where(problem), problem) for problem in errors]
    problems: dict[str, list[str]] = {}
    for where, problem in located:
        if _mismatch(problem) and any(
            other_where.startswith(where + ".") or (other_where == where and not _mismatch(other))
            for other_where, other in located
        ):
            continue
        said = problems.setdefault(where, [])
        if _in_words(problem) not in said:
            said.append(_in_words(problem))
    sentences = [f"{where}: {' or '.join(said)}" for where, said in problems.items()]
    return "; ".join(sentences) or "invalid request"


def _where(problem: Any) -> str:
    """The field a problem is in, e.g. `content.0.role` (keys that are not plain text shown
    as Python literals, so NUL or a lone surrogate cannot reach the answer)."""
    parts = [
        str(part) if isinstance(part, int) or str(part).isprintable() else repr(part)
        for part in problem.get("loc", ())
        if _names_a_field(part)
    ]
    return ".".join(parts) or "body"


def _mismatch(problem: Any) -> bool:
    """A value of the wrong type (e.g. a number where a string goes)."""
    return str(problem.get("type", "")).endswith("_type")


def _names_a_field(part: Any) -> bool:
    """False for "body" and for the type tags pydantic puts in a union's locations."""
    if isinstance(part, int):
        return True
    return part != "body" and not UNION_TAG.fullmatch(str(part))


def _in_words(problem: Any) -> str:
    pattern = (problem.get("ctx") or {}).get("pattern")
    return PATTERN_WORDS.get(str(pattern), str(problem.get("msg", "invalid")))


def _http_kind(status: int) -> str:
    return {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        412: "PreconditionFailed",
        413: "BodyTooLarge",
        421: "MisdirectedRequest",
        422: "InvalidRequest",
    }.get(status, "HTTPError")
