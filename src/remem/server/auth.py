"""Who is calling: an API key names a tenant; a keyless loopback server serves the local user,
but only requests addressed to this machine (see `remem.server.loopback`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from remem.keys import authenticate
from remem.memory import Memory
from remem.server.loopback import check_local_request


def caller(request: Request) -> Memory:
    """The memory as the caller's tenant sees it, from `Authorization: Bearer <key>`.

    A loopback server with no key at all serves the local user whatever token is sent
    (OpenAI clients always send one), if its Host is a loopback name and, for a write, its
    Origin (when sent) a loopback origin; once a key exists, every request needs a valid one.
    """
    memory: Memory = request.app.state.memory
    if request.app.state.open_without_keys and not memory.store.list_keys():
        check_local_request(request)
        return memory
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        key = authenticate(memory.store, secret.strip())
        if key is None:
            raise HTTPException(401, "invalid or revoked API key")
        return memory.as_tenant(key.tenant)
    raise HTTPException(
        401,
        "this server needs an API key: send 'Authorization: Bearer rk_...'"
        " (make one with `remem keys create --tenant NAME`)",
        headers={"WWW-Authenticate": "Bearer"},
    )


Caller = Annotated[Memory, Depends(caller)]
