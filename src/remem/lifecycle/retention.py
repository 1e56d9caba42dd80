"""A default expiry per scope: `Memory.set_default_expiry(timedelta(days=30),
session_id="support-chat")` makes every note added to that scope afterwards expire 30 days
after it was added, unless the add gives its own `expires_at`.

Defaults are kept in the store (one meta entry per scope), so every process and every
surface sees the same. The most specific default set for an add's scope wins: its exact
scope, then the same owner without the session, then the user alone, the agent alone, the
session alone. Notes added before a default was set keep the expiry they had.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any

from remem import clock
from remem.errors import InvalidInputError
from remem.stores.base import Changes, Records
from remem.types import Scope

PREFIX = "default_expiry:"
LONGEST = timedelta(days=36_500)  # a hundred years: past it, "never" is what is meant


def check_after(value: Any) -> timedelta | None:
    """How long after being added a scope's notes expire: a timedelta or seconds (None
    clears the default)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise InvalidInputError(
            f"after must be a duration (a timedelta or seconds) or None, got {value!r}"
        )
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not math.isfinite(seconds) or seconds <= 0 or seconds > LONGEST.total_seconds():
        raise InvalidInputError(
            f"after must be more than 0 seconds and at most {LONGEST.days} days, got {value!r}"
        )
    return timedelta(seconds=seconds)


def set_default(scope: Scope, after: timedelta | None) -> Changes:
    """The write that sets (or, with None, clears) the default expiry of exactly `scope`."""
    return Changes(meta={_key(scope): "" if after is None else str(after.total_seconds())})


def expiry_for(store: Records, scope: Scope, moment: datetime | None = None) -> datetime | None:
    """When a note added now to `scope` expires by the most specific default that covers
    it; None when none does."""
    for broader in _broader(scope):
        text = store.get_meta(_key(broader))
        if text:
            return (moment or clock.now()) + timedelta(seconds=float(text))
    return None


def _broader(scope: Scope) -> list[Scope]:
    """The scope, then the scopes that contain it, most specific first (each once)."""
    user, agent, session, tenant = scope.user_id, scope.agent_id, scope.session_id, scope.tenant
    candidates = [
        Scope(user, agent, session, tenant),
        Scope(user, agent, None, tenant),
        Scope(user, None, None, tenant),
        Scope(None, agent, None, tenant),
        Scope(None, None, session, tenant),
    ]
    unique = {(s.user_id, s.agent_id, s.session_id): s for s in candidates}
    return [s for s in unique.values() if s.user_id or s.agent_id or s.session_id]


def _key(scope: Scope) -> str:
    return PREFIX + json.dumps([scope.tenant, scope.user_id, scope.agent_id, scope.session_id])
