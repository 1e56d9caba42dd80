"""Session ids for what is ingested, derived from the source so that a conversation (or a
document) ingested again lands in the same session."""

from __future__ import annotations

import hashlib


def session_id(kind: str, source: str) -> str:
    """`kind-` and a digest of the source's own id (a conversation id, a file's path)."""
    digest = hashlib.sha256(f"{kind}\x00{source}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"{kind}-{digest[:20]}"


def digest(*parts: str) -> str:
    """A stable digest of some text parts (a chunk's content, a ledger's name)."""
    joined = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(joined).hexdigest()
