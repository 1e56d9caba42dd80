"""API keys for the server: made here, shown once, kept only as a SHA-256 digest.

A key is `rk_` plus 32 random bytes (URL-safe base64), so a fast digest is enough: there
is nothing to guess that a slow password hash would protect.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace

from remem import clock, ids
from remem.errors import NotFoundError
from remem.inputs import check_tenant
from remem.stores.base import KeyStore
from remem.types import ApiKey

PREFIX = "rk_"


def create_key(store: KeyStore, tenant: str, name: str = "") -> tuple[ApiKey, str]:
    """A new key for `tenant`: the stored record, and the secret to hand to the caller once."""
    secret = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(ids.new_id(ids.KEY), check_tenant(tenant), name, digest(secret), clock.now())
    store.save_key(key)
    return key, secret


def revoke_key(store: KeyStore, key_id: str) -> ApiKey:
    """Mark a key revoked (it stays listed, so its history is not lost)."""
    key = next((k for k in store.list_keys() if k.id == key_id), None)
    if key is None:
        raise NotFoundError("API key", key_id)
    if key.revoked_at is None:
        key = replace(key, revoked_at=clock.now())
        store.save_key(key)
    return key


def authenticate(store: KeyStore, secret: str) -> ApiKey | None:
    """The live key with this secret, or None."""
    key = store.find_key(digest(secret))
    return key if key is not None and key.revoked_at is None else None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
