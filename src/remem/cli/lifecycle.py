"""`remem pin`, `unpin`, `archive`, `unarchive`, `sweep`, `consolidate` and
`default-expiry`: a memory's lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Unpack

import click

from remem.cli.common import ScopeOptions, json_option, open_memory, scope_options
from remem.cli.output import print_json, shorten
from remem.cli.show import ID_HELP, resolve_id
from remem.memory import Memory
from remem.types import Note


def _command(
    name: str, done: str, method: Callable[[Memory, str], Note], help: str
) -> click.Command:
    @click.command(name=name, help=f"{help} ID: {ID_HELP}.")
    @click.argument("item_ids", metavar="ID...", nargs=-1, required=True)
    @json_option
    @click.pass_context
    def command(ctx: click.Context, /, item_ids: tuple[str, ...], as_json: bool) -> None:
        memory = open_memory(ctx)
        notes = [method(memory, resolve_id(memory, given)) for given in item_ids]
        if as_json:
            print_json(notes)
            return
        for note in notes:
            click.echo(f"{done} {note.id}")

    return command


pin = _command(
    "pin",
    "pinned",
    Memory.pin,
    "Pin memories: they never decay and are always eligible for context.",
)
unpin = _command("unpin", "unpinned", Memory.unpin, "Unpin memories.")
archive = _command(
    "archive",
    "archived",
    Memory.archive,
    "Archive memories: out of search, context and lists, kept (`remem list --archived`).",
)
unarchive = _command("unarchive", "unarchived", Memory.unarchive, "Bring archived memories back.")


@click.command()
@json_option
@click.pass_context
def sweep(ctx: click.Context, /, as_json: bool) -> None:
    """Purge every memory whose expiry (`remem add --expires-at`) has passed."""
    purged = open_memory(ctx).sweep_expired()
    if as_json:
        print_json({"purged": purged})
    else:
        click.echo(f"purged {purged} expired memories")


@click.command()
@scope_options
@click.option("--since", metavar="WHEN", help="Compare only memories added since (ISO 8601).")
@click.option("--dry-run", is_flag=True, help="Show what would merge; merge nothing.")
@click.option(
    "--no-model", is_flag=True, help="Keep to the model-free rules even with a model set."
)
@json_option
@click.pass_context
def consolidate(
    ctx: click.Context,
    /,
    since: str | None,
    dry_run: bool,
    no_model: bool,
    as_json: bool,
    **scope: Unpack[ScopeOptions],
) -> None:
    """Merge near-duplicate memories (the same thing said again, a fact extracted twice)
    into one: the oldest keeps all their sources, the others' ids resolve to it. Every
    owner's memories when no --user/--agent/--session is given."""
    memory = open_memory(ctx)
    model = "never" if no_model else "auto"
    done = memory.consolidate(since=since, dry_run=dry_run, model=model, **scope)
    if as_json:
        print_json(done)
        return
    verb = "would merge" if dry_run else "merged"
    click.echo(
        f"{verb} {done.merged} memories into {len(done.merges)}"
        f" ({done.examined} examined, {done.candidates} close pairs looked at)"
    )
    texts = memory.store.get_notes([merge.survivor_id for merge in done.merges])
    for merge in done.merges:
        text = texts[merge.survivor_id].text if merge.survivor_id in texts else ""
        click.echo(f"  {merge.survivor_id}  {shorten(text, 70)}")
        how = f"{merge.decided_by}, cosine {merge.similarity:.3f}"
        click.echo(f"    <- {', '.join(merge.merged_ids)}  ({how})")


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@click.command("default-expiry")
@click.argument("after", metavar="AFTER")
@scope_options
@json_option
@click.pass_context
def default_expiry(
    ctx: click.Context, /, after: str, as_json: bool, **scope: Unpack[ScopeOptions]
) -> None:
    """Make the memories added to a scope from now on expire AFTER being added (30d, 12h,
    90m, 45s, or seconds; "never" clears the scope's default). An add's own --expires-at
    wins; the most specific scope's default wins over a broader one's."""
    seconds = None if after == "never" else _seconds(after)
    open_memory(ctx).set_default_expiry(seconds, **scope)
    if as_json:
        print_json({"after_seconds": seconds, **scope})
    elif seconds is None:
        click.echo("no default expiry")
    else:
        click.echo(f"memories expire {after} after added")


def _seconds(text: str) -> float:
    number, unit = (text[:-1], text[-1]) if text[-1:] in UNITS else (text, "s")
    try:
        return float(number) * UNITS[unit]
    except ValueError:
        raise click.BadParameter(f"{text!r}: give e.g. 30d, 12h, 90m, 45s or never") from None


COMMANDS = [pin, unpin, archive, unarchive, sweep, consolidate, default_expiry]
