"""Every failure as a JSON body `{"error": {"type", "message"}}` with a fitting 4xx status.

A 5xx means remem itself failed (database, model); bad input never produces one.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from remem.errors import (
    ConflictError,
    EmbedderError,
    InvalidInputError,
    NotFoundError,
    RememError,
    StoreError,
)
from remem.server.limits import BodyTooLargeError, too_large

log = logging.getLogger("remem.server")

STATUS_OF: list[tuple[type[RememError], int]] = [
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidInputError, 422),
    (EmbedderError, 503),
    (StoreError, 503),
]


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


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
        return JSONResponse(
            error_body(_http_kind(error.status_code), message),
            status_code=error.status_code,
            headers=error.headers,
        )


def describe(errors: Any) -> str:
    """Pydantic's error list as one sentence per problem, naming where each is."""
    parts = []
    for problem in errors:
        where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
        parts.append(f"{where or 'body'}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _http_kind(status: int) -> str:
    return {
        400: "BadRequest",
        401: "Unauthorized",
        404: "NotFound",
        405: "MethodNotAllowed",
        413: "BodyTooLarge",
    }.get(status, "HTTPError")
