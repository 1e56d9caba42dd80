"""Sortable, prefixed ids: `ep_` episodes, `nt_` notes, `ln_` links, `ev_` events, `jb_` jobs.

An id is 48 bits of milliseconds and 80 random bits in Crockford base32 (as ULID), so ids
sort by creation time and the prefix tells what kind of record an id names.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

EPISODE = "ep"
NOTE = "nt"
LINK = "ln"
EVENT = "ev"
JOB = "jb"
KEY = "key"
PROFILE = "pf"  # a person's profile (its history is `history(profile.id)`)
THREAD = "th"  # a conversation thread remem inferred (an app's own session ids are kept)


def new_id(prefix: str) -> str:
    """A new id of the given kind."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(reversed(chars))}"


def kind_of(item_id: str) -> str:
    """The prefix of an id ("ep", "nt", ...), or "" when it has none."""
    prefix, sep, _ = item_id.partition("_")
    return prefix if sep else ""
