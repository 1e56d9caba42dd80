"""`remem ingest`: bring chat exports, notes and documents in."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from remem.cli.common import json_option, open_memory
from remem.cli.output import print_json

if TYPE_CHECKING:
    from remem.ingest.run import Progress
    from remem.types import IngestResult


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--user", "user_id", metavar="ID", help="User id the memories belong to.")
@click.option("--agent", "agent_id", metavar="ID", help="Agent id the memories belong to.")
@click.option(
    "--me",
    metavar="NAME",
    help="Your name as chats show it (WhatsApp, Telegram): your messages get role 'user'."
    " Asked once when a chat has several senders and this runs in a terminal.",
)
@click.option(
    "--organise",
    type=click.Choice(["now", "later"]),
    default="now",
    show_default=True,
    help="With a model: organise the imported memories now, or leave the jobs for `remem worker`.",
)
@json_option
@click.pass_context
def ingest(
    ctx: click.Context,
    paths: tuple[str, ...],
    user_id: str | None,
    agent_id: str | None,
    me: str | None,
    organise: str,
    as_json: bool,
) -> None:
    """Bring in files and folders (recursively): ChatGPT and Claude exports
    (conversations.json), WhatsApp chats (.txt), Telegram (result.json), Markdown notes
    (an Obsidian vault's [[links]] included), text, HTML, PDF and e-mail (.eml, mbox).
    Running it again writes only what changed; unreadable files are listed and skipped."""
    if not (user_id or agent_id):
        raise click.UsageError("give --user ID and/or --agent ID: whose memories these become")
    memory = open_memory(ctx)
    asking = me is None and sys.stdin.isatty() and sys.stderr.isatty()
    result = memory.ingest(
        list(paths),
        user_id=user_id,
        agent_id=agent_id,
        me=me if not asking else _ask_who,
        organise=organise,
        progress=_show_progress,
    )
    if as_json:
        print_json(result)
    else:
        _summary(result)
    if result.files == 0 and result.skipped:
        sys.exit(1)


def _ask_who(senders: list[str]) -> str | None:
    """Which sender the person is, asked on the terminal once."""
    click.echo(f"\nThis chat has several senders: {', '.join(senders[:20])}", err=True)
    answer: str = click.prompt(
        "Which one are you (empty: none)", default="", show_default=False, err=True
    )
    return answer.strip() or None


def _show_progress(progress: Progress) -> None:
    """A line per file on stderr (rewritten in place on a terminal while it goes)."""
    line = f"[{progress.index}/{progress.files}] {progress.path}: {progress.done}/{progress.total}"
    finished = progress.done >= progress.total
    if sys.stderr.isatty():
        click.echo(f"\r\x1b[K{line}", err=True, nl=finished)
    elif finished:
        click.echo(line, err=True)


def _summary(result: IngestResult) -> None:
    click.echo(
        f"{result.files} file(s): {result.added} added, {result.updated} updated,"
        f" {result.unchanged} unchanged, {result.removed} removed"
    )
    for path, reason in result.skipped:
        click.echo(f"skipped {path}: {reason}")


COMMANDS = [ingest]
