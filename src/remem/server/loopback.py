"""What a keyless loopback server accepts: requests addressed to this machine by name.

A web page on evil.example can make the user's browser send requests to 127.0.0.1 (DNS
rebinding points its own name there), but the browser still names evil.example in the
`Host` header, and its `Origin` on a write. So without API keys remem serves only requests
whose Host is a loopback name, and refuses writes from a page of another origin.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

LOOPBACK_NAMES = frozenset({"localhost"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def check_local_request(request: Request) -> None:
    """Raise 421 unless the Host names this machine, 403 for a write from another origin."""
    host = request.headers.get("host", "")
    if not is_loopback_host(host):
        raise HTTPException(
            421,
            f"this server answers only requests addressed to localhost, 127.0.0.1 or [::1]"
            f" without an API key, not {host!r}",
        )
    origin = request.headers.get("origin")
    if request.method in STATE_CHANGING and origin is not None and not is_loopback_origin(origin):
        raise HTTPException(403, f"requests from {origin!r} may not change this memory")


def is_loopback_host(host: str) -> bool:
    """True for `localhost`, a loopback IP (IPv6 in brackets), with or without a port."""
    name, port = _split_port(host.strip())
    return port is not None and _is_loopback_name(name)


def is_loopback_origin(origin: str) -> bool:
    """True for an http(s) origin on a loopback host (`null` and others are not)."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or parts.path not in ("", "/"):
        return False
    return is_loopback_host(parts.netloc) and "@" not in parts.netloc


def _split_port(host: str) -> tuple[str, str | None]:
    """(name, port) of a Host value; port "" when absent, None when malformed."""
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return "", None
        return name, _port(rest[1:]) if rest else ""
    name, colon, port = host.partition(":")
    return name, (_port(port) if colon else "")


def _port(text: str) -> str | None:
    return text if text.isascii() and text.isdigit() and int(text) < 65536 else None


def _is_loopback_name(name: str) -> bool:
    if name.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
