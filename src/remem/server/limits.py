"""Refuse request bodies over a size limit before they are read into memory."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLargeError(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit


class BodyLimit:
    """ASGI middleware: 413 when Content-Length, or the bytes actually sent, pass `limit`
    (for a path in `uploads`, the limit it maps to: file uploads are larger than calls)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        uploads: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.default = limit
        self.uploads = dict(uploads or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.uploads.get(scope["path"], self.default)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > limit:
            await too_large(limit)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLargeError(limit)
            return message

        await self.app(scope, counted, send)


def too_large(limit: int) -> JSONResponse:
    message = f"request body over {limit} bytes (or a bad Content-Length)"
    return JSONResponse({"error": {"type": "BodyTooLarge", "message": message}}, status_code=413)
