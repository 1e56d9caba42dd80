"""`remem pin`, `unpin`, `archive`, `unarchive` and `sweep`: a memory's lifecycle."""

from __future__ import annotations

from collections.abc import Callable

import click

from remem.cli.common import json_option, open_memory
from remem.cli.output import print_json
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


COMMANDS = [pin, unpin, archive, unarchive, sweep]
