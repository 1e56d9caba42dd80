"""The person: biography (sentence by sentence with its evidence), attributes with the
notes they rest on and when they held, and topics with their timelines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from remem.errors import InvalidInputError, NotFoundError
from remem.profile.state import attribute_json
from remem.server.ui.access import Viewer, posted, viewer
from remem.server.ui.filters import NEEDS_SCOPE, ScopeFilter, known_scopes, scope_or_default
from remem.server.ui.render import page, redirect
from remem.types import Event, Profile

router = APIRouter(include_in_schema=False)
Looking = Annotated[Viewer, Depends(viewer)]
Posting = Annotated[Viewer, Depends(posted)]
Field = Annotated[str, Form()]


@router.get("/profile", response_class=HTMLResponse)
def profile(request: Request, looking: Looking) -> Response:
    memory = looking.memory
    scope = ScopeFilter.of(request)
    listed = memory.list(limit=50, order="newest").items
    values: dict[str, Any] = {
        "scope": scope,
        "known": known_scopes(listed),
        "profile": None,
        "problem": None,
        "corrected": bool(request.query_params.get("corrected")),
    }
    arguments = scope_or_default(ScopeFilter(scope.user_id, scope.agent_id), listed)
    if arguments is None:
        values["problem"] = NEEDS_SCOPE
    else:
        try:
            known = memory.profile(user_id=arguments["user_id"], agent_id=arguments["agent_id"])
        except InvalidInputError as error:
            values["problem"] = str(error)
        except NotFoundError:
            values["problem"] = "Memory knows nothing of this person yet."
        else:
            history = memory.history(known.id) if known.version else []
            # links on the page name the owner shown, also when it was chosen for the user
            values["scope"] = ScopeFilter(known.scope.user_id, known.scope.agent_id)
            values["profile"] = known
            values["biographies"] = biography_versions(history)
            values["past"] = past_attributes(known)
    return page(request, looking, "profile.html", title="Profile", **values)


@dataclass(frozen=True)
class BiographyVersion:
    version: int
    at: datetime
    text: str


def biography_versions(history: list[Event]) -> list[BiographyVersion]:
    """Each biography the profile had, newest first (a profile change that left the
    biography as it was is not a new version of it)."""
    found: list[BiographyVersion] = []
    for event in history:
        after = event.after or {}
        text, version = after.get("biography"), after.get("version")
        changed = not found or found[-1].text != text
        if isinstance(text, str) and isinstance(version, int) and changed:
            found.append(BiographyVersion(version, event.at, text))
    return found[::-1]


def past_attributes(known: Profile) -> list[dict[str, Any]]:
    """Values the person's attributes no longer have (closed by a newer value), newest
    first."""
    closed = [(a.valid_to, a) for a in known.attribute_history if a.valid_to is not None]
    closed.sort(key=lambda pair: pair[0], reverse=True)
    return [attribute_json(attribute) for _, attribute in closed]


# how a person says what is true now, for the slots the profile's patterns read
SAYINGS = {
    "name": "My name is {}.",
    "home": "I live in {}.",
    "origin": "I grew up in {}.",
    "work": "I work as {}.",
    "employer": "I work at {}.",
    "education": "I studied at {}.",
    "birthday": "My birthday is {}.",
    "likes": "I love {}.",
    "dislikes": "I dislike {}.",
}


def correction_text(slot: str, value: str) -> str:
    """What the person says when correcting a slot, as they would say it."""
    value = value.strip().rstrip(".")
    if (saying := SAYINGS.get(slot.strip())) is not None:
        return saying.format(value)
    # (never formatted: the slot is the caller's text, and "{0:>10000000000}" in a format
    # string asks for gigabytes)
    return f"My {slot.replace('_', ' ').strip()} is {value}."


@router.post("/profile/correct", response_class=HTMLResponse)
def correct(
    request: Request,
    looking: Posting,
    slot: Field = "",
    value: Field = "",
    old: Field = "",
    user: Field = "",
    agent: Field = "",
) -> Response:
    """The person corrects an attribute: what they say becomes a memory of theirs (its
    metadata names the person as source and the slot), which the profile then reads."""
    scope = ScopeFilter.from_form(user, agent)  # an id over the limit: a 422 page
    if not slot.strip() or not value.strip():
        message = "A correction needs the attribute and its new value."
        return page(
            request, looking, "error.html", 422, title="Nothing to correct", message=message
        )
    try:
        looking.memory.add(
            [{"role": "user", "content": correction_text(slot, value)}],
            metadata={"source": "person", "slot": slot.strip(), "replaces": old.strip()},
            user_id=scope.user_id,
            agent_id=scope.agent_id,
        )
    except InvalidInputError as error:
        return page(request, looking, "error.html", 422, title="Not corrected", message=str(error))
    return redirect(request, f"/profile?{scope.query(corrected='1')}")
