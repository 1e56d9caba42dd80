"""The web UI, served at `/` beside the REST API (`/v1`): server-rendered pages with a
little progressive JavaScript and vendored libraries (no network, no build step).

    install_ui(app)   # create_app does this
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from remem.errors import RememError
from remem.server.errors import STATUS_OF
from remem.server.limits import BodyTooLargeError
from remem.server.ui import (
    adding,
    graph,
    health,
    memories,
    memory_page,
    profile,
    signin,
    views,
)
from remem.server.ui.access import Sessions, SignInRequired
from remem.server.ui.render import HERE, page, redirect

__all__ = ["install_ui"]

# paths that belong to the API, whose errors stay JSON
API_PREFIXES = ("/v1", "/docs", "/redoc", "/openapi.json", "/healthz", "/mcp")


def install_ui(app: FastAPI) -> None:
    """Serve the pages, their static files, and HTML errors on UI paths."""
    app.state.ui_sessions = Sessions()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    for module in (memories, memory_page, views, adding, graph, health, profile, signin):
        app.include_router(module.router)
    _html_errors(app)


def is_ui_path(path: str) -> bool:
    return not any(path == prefix or path.startswith(prefix + "/") for prefix in API_PREFIXES)


def _html_errors(app: FastAPI) -> None:
    """On UI paths, errors are pages; on API paths the JSON handlers answer as before."""
    json_handlers: dict[Any, Any] = dict(app.exception_handlers)

    async def sign_in_first(request: Request, error: Exception) -> Response:
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(request, "/signin?" + _query(next=target))
        return page(request, None, "error.html", 401, title="Sign in", message=SIGN_IN)

    async def as_page(request: Request, error: Exception) -> Response:
        if not is_ui_path(request.url.path):
            response: Response = await json_handlers[_kind(error)](request, error)
            return response
        status = getattr(error, "status_code", _status_of(error))
        message = str(getattr(error, "detail", error))
        if isinstance(error, RequestValidationError):
            message = _plainly(error)
        if status == 404:
            message = "There is no page here."
        if isinstance(error.__cause__, BodyTooLargeError):  # raised while the form was read
            status = 413
            message = f"That is over this server's limit of {error.__cause__.limit:,} bytes."
        title = TITLES.get(status, "Error")
        return page(request, None, "error.html", status, title=title, message=message)

    app.add_exception_handler(SignInRequired, sign_in_first)
    for kind in (HTTPException, RememError, RequestValidationError):
        if kind in json_handlers:
            app.add_exception_handler(kind, as_page)


SIGN_IN = "Your session has ended: sign in again, then repeat what you did."
TITLES = {403: "Refused", 404: "Not found", 405: "Not allowed", 413: "Too large", 421: "Refused"}


def _status_of(error: Exception) -> int:
    if isinstance(error, RequestValidationError):
        return 422
    return next((code for kind, code in STATUS_OF if isinstance(error, kind)), 500)


def _plainly(error: RequestValidationError) -> str:
    """What was wrong with a form, field by field, without the server's code in it."""
    said = []
    for problem in error.errors():
        field = " ".join(str(part) for part in problem.get("loc", ())[1:]) or "the request"
        said.append(f"{field}: {problem.get('msg', 'not valid')}")
    return "; ".join(said) or "The form was not valid."


def _kind(error: Exception) -> type[Exception]:
    for kind in (HTTPException, RequestValidationError, RememError):
        if isinstance(error, kind):
            return kind
    return type(error)


def _query(**values: str) -> str:
    from urllib.parse import urlencode

    return urlencode(values)
