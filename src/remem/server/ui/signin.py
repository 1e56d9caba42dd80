"""Signing in with an API key (a server that has keys), and signing out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from remem.server.ui.access import (
    COOKIE,
    check_csrf,
    current_session,
    serves_local_user,
    sessions_of,
    sign_in,
)
from remem.server.ui.render import page, redirect

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    """Only a path on this site (never `//evil.example` or a full URL) to go to after."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request) -> Response:
    if serves_local_user(request):
        return redirect(request, "/")
    session = current_session(request)
    nxt = _safe_next(request.query_params.get("next", "/"))
    csrf = request.app.state.ui_sessions.csrf_token(session)
    return page(request, None, "signin.html", title="Sign in", csrf=csrf, next=nxt)


@router.post("/signin", response_class=HTMLResponse)
async def signin(
    request: Request,
    key: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    session = await run_in_threadpool(current_session, request)
    await check_csrf(request, session)
    if await run_in_threadpool(sign_in, request, key) is None:
        csrf = sessions_of(request).csrf_token(session)
        message = "That key is not valid (or was revoked)."
        return page(
            request,
            None,
            "signin.html",
            401,
            title="Sign in",
            csrf=csrf,
            next=next_path,
            problem=message,
        )
    return redirect(request, _safe_next(next_path))


@router.post("/signout", response_class=HTMLResponse)
async def signout(request: Request) -> Response:
    sessions = sessions_of(request)
    session = sessions.find(request.cookies.get(COOKIE))
    if session is None:
        raise HTTPException(403, "no session to sign out of")
    await check_csrf(request, session)
    sessions.end(session.id)
    response = redirect(request, "/signin")
    response.delete_cookie(COOKIE, path="/")
    return response
