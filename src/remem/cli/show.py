"""Commands that look at one memory: show (with its kind, validity, sources and links) and
history; and how the ids tables print are read back."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from remem import ids
from remem.cli.common import json_option, open_memory
from remem.cli.output import print_json, print_table, shorten, when
from remem.errors import NotFoundError
from remem.write.versions import changed_fields

if TYPE_CHECKING:
    from remem.memory import Memory
    from remem.types import Link, Note

ID_HELP = "a whole id, or the last characters of a memory's id as tables show them"


def resolve_id(memory: Memory, given: str) -> str:
    """The whole id `given` names: itself when it has a prefix (nt_, ep_), else the one
    live memory whose id ends with it."""
    if ids.kind_of(given) or not given.strip():
        return given
    found = memory.store.note_ids_ending(given.upper(), memory.tenant, 2)
    if not found:
        raise NotFoundError("memory", given)
    if len(found) > 1:
        raise click.UsageError(f"{given} ends more than one memory id: give more of it")
    return found[0]


@click.command()
@click.argument("item_id", metavar="ID")
@json_option
@click.pass_context
def show(ctx: click.Context, /, item_id: str, as_json: bool) -> None:
    """Show one memory (nt_..., or the short id a table shows) with its kind, validity,
    sources and links; or one episode (ep_...)."""
    memory = open_memory(ctx)
    item_id = resolve_id(memory, item_id)
    if ids.kind_of(item_id) == ids.EPISODE:
        episode = memory.episode(item_id)
        if as_json:
            print_json(episode)
            return
        _print_fields(_fields(episode))
        return
    note = memory.get(item_id)
    sources = [memory.episode(e) for e in note.episode_ids]
    links = memory.links(note.id)
    if as_json:
        print_json({"record": note, "sources": sources, "links": links})
        return
    _print_fields(_fields(note) + _note_fields(memory, note))
    for episode in sources:
        speaker = episode.name or episode.role or "-"
        click.echo(
            f"source:       {episode.id} [{when(episode.occurred_at)}] {speaker}: {episode.text}"
        )
    for link in links:
        click.echo(f"link:         {_link_line(memory, note.id, link)}")


@click.command()
@click.argument("item_id", metavar="ID")
@json_option
@click.pass_context
def history(ctx: click.Context, /, item_id: str, as_json: bool) -> None:
    """Every change to a memory or episode, oldest first (ID: whole, or a live memory's
    short id as tables show it)."""
    memory = open_memory(ctx)
    events = memory.history(resolve_id(memory, item_id))
    if as_json:
        print_json(events)
        return
    print_table(
        ["when", "action", "actor", "change"],
        [(e.at, e.action, e.actor, _change(e.before, e.after)) for e in events],
    )


def _print_fields(rows: list[tuple[str, Any]]) -> None:
    for key, value in rows:
        click.echo(f"{key + ':':<13} {value}")


def _fields(record: Any) -> list[tuple[str, Any]]:
    rows = [("id", record.id), ("text", record.text)]
    scope = record.scope
    rows += [
        (k, v)
        for k, v in (
            ("user", scope.user_id),
            ("agent", scope.agent_id),
            ("session", scope.session_id),
        )
        if v
    ]
    for name in ("kind", "role", "name", "version"):
        if getattr(record, name, None) is not None:
            rows.append((name, getattr(record, name)))
    rows.append(("occurred at", when(record.occurred_at)))
    if record.metadata:
        rows.append(("metadata", json.dumps(record.metadata, ensure_ascii=False)))
    return rows


def _note_fields(memory: Memory, note: Note) -> list[tuple[str, Any]]:
    """What organising added to a note: validity, context, keywords, tags."""
    rows: list[tuple[str, Any]] = []
    if note.valid_from is not None:
        rows.append(("valid from", when(note.valid_from)))
    if note.valid_to is not None or note.superseded_by is not None:
        rows.append(("valid to", when(note.valid_to) or "-"))
        later = _text_of(memory, note.superseded_by) if note.superseded_by else ""
        rows.append(("superseded", f"yes, by {note.superseded_by or '?'} {later}".rstrip()))
    else:
        rows.append(("superseded", "no"))
    if note.context:
        rows.append(("context", note.context))
    if note.keywords:
        rows.append(("keywords", ", ".join(note.keywords)))
    if note.tags:
        rows.append(("tags", ", ".join(note.tags)))
    return rows


def _link_line(memory: Memory, note_id: str, link: Link) -> str:
    """One link as seen from `note_id`: direction, relation, the other note, the reason."""
    outgoing = link.source_id == note_id
    other = link.target_id if outgoing else link.source_id
    arrow = "->" if outgoing else "<-"
    reason = f" (because: {link.reason})" if link.reason else ""
    return f"{arrow} {link.relation} {other} {_text_of(memory, other)}{reason}"


def _text_of(memory: Memory, note_id: str) -> str:
    try:
        return repr(shorten(memory.get(note_id).text, 50))
    except NotFoundError:
        return "(forgotten)"


def _change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """What an event changed, field by field: `text: 'old' -> 'new'; tags: ...`."""
    if before is not None and after is None:
        return f"was {before.get('text')!r}"  # a delete keeps what was deleted
    if before is None and after is not None and "relation" in after:
        return f"{after['relation']} -> {after['target_id']} ({after.get('reason', '')})"
    changed = changed_fields(before, after)
    return "; ".join(f"{name}: {old!r} -> {new!r}" for name, (old, new) in changed.items())


COMMANDS = [show, history]
