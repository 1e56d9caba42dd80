"""Commands about the person: profile, topics, and fill (a form from memory)."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from remem.cli.common import json_option, open_memory
from remem.cli.output import print_json, print_table, shorten, when
from remem.errors import InvalidInputError

if TYPE_CHECKING:
    from remem.types import Attribute, Profile, Topic

F = TypeVar("F", bound=Callable[..., Any])
WIDTH = 80
MAX_FORM_BYTES = 1024 * 1024


def owner_options(function: F) -> F:
    """--user, --agent: whose profile (sessions share one)."""
    for name, help_text in (
        ("agent", "Agent id whose profile it is."),
        ("user", "User id whose profile it is."),
    ):
        function = click.option(f"--{name}", f"{name}_id", metavar="ID", help=help_text)(function)
    return function


@click.command()
@owner_options
@click.option("--person", metavar="NAME", help="The person's name as a speaker in the turns.")
@click.option("--rebuild", is_flag=True, help="Build the profile again from all notes.")
@json_option
@click.pass_context
def profile(
    ctx: click.Context,
    /,
    user_id: str | None,
    agent_id: str | None,
    person: str | None,
    rebuild: bool,
    as_json: bool,
) -> None:
    """What memory knows of a person: biography, status, attributes with evidence, topics."""
    found = open_memory(ctx).profile(
        user_id=user_id, agent_id=agent_id, person=person, rebuild=rebuild
    )
    if as_json:
        print_json(found)
        return
    _print_profile(found)


@click.command()
@owner_options
@json_option
@click.pass_context
def topics(ctx: click.Context, /, user_id: str | None, agent_id: str | None, as_json: bool) -> None:
    """The topics of a person's memory, with their keywords and timelines."""
    found = open_memory(ctx).topics(user_id=user_id, agent_id=agent_id)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no topics yet: a topic forms once a few notes are about the same thing")
    for topic in found:
        _print_topic(topic, timeline=True)


@click.command()
@click.argument("form", metavar="FORM.json", type=click.Path(dir_okay=False, path_type=Path))
@owner_options
@click.option("--instructions", metavar="TEXT", help="What the form is for, for the model.")
@json_option
@click.pass_context
def fill(
    ctx: click.Context,
    /,
    form: Path,
    user_id: str | None,
    agent_id: str | None,
    instructions: str | None,
    as_json: bool,
) -> None:
    """Fill a JSON Schema form from memory (FORM.json, or - for stdin): each field with its
    value, confidence and evidence; what memory does not say stays empty."""
    schema = _read_form(form)
    filled = open_memory(ctx).fill(
        schema, user_id=user_id, agent_id=agent_id, instructions=instructions
    )
    if as_json:
        print_json(filled)
        return
    rows = [
        [
            item.path or "/",
            "" if item.value is None else shorten(json.dumps(item.value, ensure_ascii=False), 20),
            f"{item.confidence:.2f}",
            _evidence(item.note_ids),
            shorten(item.why, 18),
        ]
        for item in filled.fields
    ]
    print_table(["field", "value", "conf", "evidence", "why"], rows)


def _evidence(note_ids: tuple[str, ...]) -> str:
    """The first note's short id, and how many more (the whole list is in --json)."""
    if not note_ids:
        return ""
    more = f" +{len(note_ids) - 1}" if len(note_ids) > 1 else ""
    return note_ids[0][-8:] + more


def _read_form(path: Path) -> Any:
    raw = sys.stdin.buffer.read(MAX_FORM_BYTES + 1) if str(path) == "-" else _read_file(path)
    if len(raw) > MAX_FORM_BYTES:
        raise InvalidInputError(f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInputError(f"the form is not a JSON document: {error}") from error


def _read_file(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(MAX_FORM_BYTES + 1)
    except OSError as error:
        raise InvalidInputError(f"cannot read the form {path}: {error.strerror}") from error


def _print_profile(found: Profile) -> None:
    who = found.person or found.scope.user_id or found.scope.agent_id
    click.echo(
        f"Profile of {who} · version {found.version} · {found.notes_seen} notes"
        f" · updated {when(found.updated_at)}"
    )
    biography = found.biography
    if biography.text:
        click.echo(f"\nBiography ({biography.by}, version {biography.version}):")
        click.echo(_wrapped(biography.text, "  ", "  "))
    if biography.status:
        click.echo("\nNow:")
        for statement in biography.status:
            click.echo(_wrapped(statement.text, "  - ", "    "))
    if found.attributes:
        click.echo("\nAttributes:")
        for attribute in found.attributes:
            click.echo(_attribute_line(attribute))
    click.echo(f"\nTopics ({len(found.topics)}):")
    for topic in found.topics:
        _print_topic(topic, timeline=False)


def _attribute_line(attribute: Attribute) -> str:
    since = f" since {attribute.valid_from:%Y-%m-%d}" if attribute.valid_from else ""
    evidence = ",".join(note_id[-8:] for note_id in attribute.note_ids[:3])
    value = shorten(attribute.value, 30)
    return f"  {attribute.slot:<12} {value:<30} {attribute.confidence:.2f}{since} [{evidence}]"


def _print_topic(topic: Topic, *, timeline: bool) -> None:
    span = f"{topic.first_at:%Y-%m-%d} to {topic.last_at:%Y-%m-%d}"
    click.echo(f"  {topic.id[-8:]}  {shorten(topic.name or topic.label, 66)}")
    click.echo(
        f"            {topic.size} notes, {topic.sessions} sessions, {span},"
        f" confidence {topic.confidence:.2f}"
    )
    click.echo(f"            keywords: {shorten(', '.join(topic.keywords), 56)}")
    for statement in topic.description:
        click.echo(_wrapped(statement.text, " " * 12, " " * 12))
    if timeline:
        for entry in topic.timeline:
            click.echo(f"            {entry.occurred_at:%Y-%m-%d}  {shorten(entry.text, 54)}")


def _wrapped(text: str, first: str, rest: str) -> str:
    return textwrap.fill(text, WIDTH, initial_indent=first, subsequent_indent=rest)


COMMANDS = [profile, topics, fill]
