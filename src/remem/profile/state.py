"""The saved form of a person's profile: one JSON document per owner in the store's meta
table, written in the same batch as its history event, so a profile and its log agree."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from remem import clock, ids
from remem.types import Attribute, Biography, Scope, Statement

PROFILE = ids.PROFILE  # id prefix of a profile (its history is `history(profile.id)`)
FORMAT = 1


@dataclass(frozen=True)
class ProfileDoc:
    """Everything remembered about one owner's profile between refreshes."""

    id: str
    person: str | None
    version: int = 0
    updated_at: datetime | None = None
    topics: Mapping[str, Any] | None = None  # TopicState.to_json()
    attributes: tuple[Attribute, ...] = ()
    biography: Biography | None = None
    # notes the biography was last written from, to tell when enough has changed
    biography_notes: int = 0
    notes_seen: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def with_changes(self, **changes: Any) -> ProfileDoc:
        return replace(self, **changes)


def key_of(scope: Scope) -> str:
    """The meta key of the profile of a scope's owner (sessions share one profile)."""
    return "profile:" + json.dumps([scope.tenant, scope.user_id, scope.agent_id])


def outdated_key(scope: Scope) -> str:
    """The meta key marking when a note of this owner was last forgotten."""
    return "profile-outdated:" + json.dumps([scope.tenant, scope.user_id, scope.agent_id])


def owner_scopes(scope: Scope) -> list[Scope]:
    """The owners whose profiles a note of `scope` feeds: its user, its agent, and both."""
    owners = {
        Scope(user_id=user, agent_id=agent, tenant=scope.tenant)
        for user in {scope.user_id, None}
        for agent in {scope.agent_id, None}
        if user or agent
    }
    return sorted(owners, key=lambda owner: (owner.user_id or "", owner.agent_id or ""))


def new_doc(person: str | None) -> ProfileDoc:
    return ProfileDoc(id=ids.new_id(PROFILE), person=person)


def load(text: str | None) -> ProfileDoc | None:
    """A saved profile, or None when there is none, it was dropped by a purge, or it cannot
    be read (a layout of another version, a damaged value): the notes are the truth, and
    the next refresh rebuilds it from them."""
    if not text:
        return None
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            return None
        return _doc(raw)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _doc(raw: Mapping[str, Any]) -> ProfileDoc:
    return ProfileDoc(
        id=str(raw["id"]),
        person=raw.get("person"),
        version=int(raw["version"]),
        updated_at=clock.parse_time(raw["updated_at"]) if raw.get("updated_at") else None,
        topics=raw.get("topics"),
        attributes=tuple(_attribute(item) for item in raw.get("attributes", [])),
        biography=_biography(raw["biography"]) if raw.get("biography") else None,
        biography_notes=int(raw.get("biography_notes", 0)),
        notes_seen=int(raw.get("notes_seen", 0)),
        extra=raw.get("extra") or {},
    )


def dump(doc: ProfileDoc) -> str:
    raw = {
        "format": FORMAT,
        "id": doc.id,
        "person": doc.person,
        "version": doc.version,
        "updated_at": _time(doc.updated_at),
        "topics": doc.topics,
        "attributes": [attribute_json(item) for item in doc.attributes],
        "biography": _biography_json(doc.biography) if doc.biography else None,
        "biography_notes": doc.biography_notes,
        "notes_seen": doc.notes_seen,
        "extra": dict(doc.extra),
    }
    return json.dumps(raw, ensure_ascii=False, separators=(",", ":"))


def attribute_json(attribute: Attribute) -> dict[str, Any]:
    """An attribute as JSON (history events and the web UI show it this way)."""
    raw = asdict(attribute)
    raw["note_ids"] = list(attribute.note_ids)
    raw["valid_from"] = _time(attribute.valid_from)
    raw["valid_to"] = _time(attribute.valid_to)
    return raw


def _attribute(raw: Mapping[str, Any]) -> Attribute:
    return Attribute(
        slot=str(raw["slot"]),
        value=str(raw["value"]),
        note_ids=tuple(str(i) for i in raw["note_ids"]),
        confidence=float(raw["confidence"]),
        valid_from=clock.parse_time(raw["valid_from"]) if raw.get("valid_from") else None,
        valid_to=clock.parse_time(raw["valid_to"]) if raw.get("valid_to") else None,
        source=raw.get("source", "pattern"),
    )


def _biography_json(biography: Biography) -> dict[str, Any]:
    return {
        "text": biography.text,
        "sentences": statements_json(biography.sentences),
        "status": statements_json(biography.status),
        "by": biography.by,
        "version": biography.version,
        "updated_at": _time(biography.updated_at),
    }


def _biography(raw: Mapping[str, Any]) -> Biography:
    return Biography(
        text=str(raw["text"]),
        sentences=statements(raw["sentences"]),
        status=statements(raw["status"]),
        by=raw["by"],
        version=int(raw["version"]),
        updated_at=clock.parse_time(raw["updated_at"]),
    )


def statements_json(told: Sequence[Statement]) -> list[dict[str, Any]]:
    """Statements as JSON: text and note ids."""
    return [{"text": item.text, "note_ids": list(item.note_ids)} for item in told]


def statements(raw: Sequence[Mapping[str, Any]]) -> tuple[Statement, ...]:
    """Statements from their JSON."""
    return tuple(Statement(str(item["text"]), tuple(item["note_ids"])) for item in raw)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
