"""Who is looking at the UI, and proof that a form came from one of its pages.

A session lives on the server (`Sessions`); the browser holds only its random id, in an
HttpOnly, SameSite=Strict cookie, never the API key. A keyless loopback server gives every
browser on this machine a session of the local user (after the Host and Origin checks of
`remem.server.loopback`); once a key exists, a session acts for a tenant only after the
sign-in form took a valid key, and stops at once when that key is revoked. Every POST
carries the session's CSRF token, an HMAC of the session id under a per-process secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TypeVar

from fastapi import HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from remem.keys import authenticate, digest
from remem.memory import Memory
from remem.server.loopback import check_local_request

COOKIE = "remem_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
IDLE_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000
R = TypeVar("R", bound=Response)


class SignInRequired(Exception):
    """The page needs a signed-in session; the UI answers with the sign-in form."""


@dataclass(frozen=True)
class Session:
    """A browser's session: `tenant` None until signed in; `key_digest` None for the
    local user of a keyless server."""

    id: str
    tenant: str | None
    key_digest: str | None
    seen: float
    returned: bool = False  # the browser came back with it (a page's own requests do)


class Sessions:
    """Sessions by id, in memory (a restart signs everyone out), the oldest dropped first."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._secret = secrets.token_bytes(32)
        self._by_id: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, tenant: str | None, key_digest: str | None) -> Session:
        session = Session(secrets.token_urlsafe(32), tenant, key_digest, time.monotonic())
        with self._lock:
            self._by_id[session.id] = session
            while len(self._by_id) > self.limit:
                self._drop_oldest()
        return session

    def _drop_oldest(self) -> None:
        """Drop the oldest session not signed in that no browser came back with, else the
        oldest not signed in, else the oldest of all. Anyone can make sessions by asking
        for a page, another site too (an image on its page asking ours makes one, and
        never comes back with it): that must not sign others out, nor end the local user's
        session of a keyless server."""
        for droppable in (_unreturned, _anonymous):
            found = next((sid for sid, s in self._by_id.items() if droppable(s)), None)
            if found is not None:
                del self._by_id[found]
                return
        self._by_id.popitem(last=False)

    def find(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._by_id.get(session_id)
            if session is None:
                return None
            if time.monotonic() - session.seen > IDLE_SECONDS:
                del self._by_id[session_id]
                return None
            session = replace(session, seen=time.monotonic(), returned=True)
            self._by_id[session_id] = session
            self._by_id.move_to_end(session_id)
            return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._by_id.pop(session_id or "", None)

    def csrf_token(self, session: Session) -> str:
        return hmac.new(self._secret, session.id.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session), str(token))


def _anonymous(session: Session) -> bool:
    return session.tenant is None


def _unreturned(session: Session) -> bool:
    return session.tenant is None and not session.returned


@dataclass(frozen=True)
class Viewer:
    """The memory as this browser's tenant sees it, and its session."""

    memory: Memory
    session: Session
    csrf: str
    local: bool  # the local user of a keyless loopback server

    @property
    def tenant(self) -> str:
        return self.memory.tenant


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.ui_sessions
    return sessions


def serves_local_user(request: Request) -> bool:
    """True when this server serves the local user without a key (as the REST API does)."""
    memory: Memory = request.app.state.memory
    return bool(request.app.state.open_without_keys) and not memory.store.list_keys()


def current_session(request: Request) -> Session:
    """This browser's session; a new anonymous one (remembered for the response) if none."""
    sessions = sessions_of(request)
    session = sessions.find(request.cookies.get(COOKIE))
    if session is None:
        session = sessions.start(None, None)
        request.state.ui_new_session = session
    return session


def viewer(request: Request) -> Viewer:
    """Who looks: the local user (keyless loopback server) or a signed-in tenant."""
    memory: Memory = request.app.state.memory
    sessions = sessions_of(request)
    if serves_local_user(request):
        check_local_request(request)
        session = current_session(request)
        return Viewer(memory, session, sessions.csrf_token(session), local=True)
    signed_in = sessions.find(request.cookies.get(COOKIE))
    if signed_in is None or signed_in.tenant is None or signed_in.key_digest is None:
        raise SignInRequired()
    key = memory.store.find_key(signed_in.key_digest)
    if key is None or key.revoked_at is not None or key.tenant != signed_in.tenant:
        sessions.end(signed_in.id)
        raise SignInRequired()
    return Viewer(memory.as_tenant(key.tenant), signed_in, sessions.csrf_token(signed_in), False)


async def check_csrf(request: Request, session: Session) -> None:
    """Refuse (403) a POST whose form field or header lacks this session's CSRF token."""
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        token = field if isinstance(field, str) else None
    if not sessions_of(request).csrf_ok(session, token):
        raise HTTPException(403, "this form has expired or did not come from this page: reload")


def sign_in(request: Request, secret: str) -> Session | None:
    """A new signed-in session for a valid API key (the old session ends), or None."""
    memory: Memory = request.app.state.memory
    key = authenticate(memory.store, secret.strip()) if secret.strip() else None
    if key is None:
        return None
    sessions = sessions_of(request)
    sessions.end(request.cookies.get(COOKIE))
    session = sessions.start(key.tenant, digest(secret.strip()))
    request.state.ui_new_session = session
    return session


def set_cookie(request: Request, response: R) -> R:
    """Hand the browser the session started during this request, if one was."""
    session: Session | None = getattr(request.state, "ui_new_session", None)
    if session is not None:
        response.set_cookie(
            COOKIE,
            session.id,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response


async def posted(request: Request) -> Viewer:
    """The viewer of a form POST, after its CSRF token was checked."""
    seen = await run_in_threadpool(viewer, request)
    await check_csrf(request, seen.session)
    return seen
