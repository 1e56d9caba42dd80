"""`remem demo`: a tour on a built-in conversation, in a throwaway memory."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import click

from remem.cli.common import json_option, settings_of
from remem.cli.output import print_json, shorten, when


@click.command()
@click.option("--limit", "-n", default=3, show_default=True, help="Results per question.")
@json_option
@click.pass_context
def demo(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Load a short built-in conversation into a temporary memory and search it.

    Works offline: it uses the bundled embedding model and leaves nothing behind.
    """
    from remem.memory import Memory

    script = json.loads(files("remem").joinpath("data/demo_conversation.json").read_text("utf-8"))
    with tempfile.TemporaryDirectory(prefix="remem-demo-") as folder:
        settings = replace(settings_of(ctx), db=str(Path(folder) / "demo.db"))
        with Memory(settings=settings) as memory:
            user = script["user_id"]
            turns = _load(memory, script["sessions"], user)
            if as_json:
                print_json(
                    {
                        "remembered": turns,
                        "answers": [
                            {
                                "query": query,
                                "hits": memory.search(query, user_id=user, limit=limit),
                            }
                            for query in script["queries"]
                        ],
                    }
                )
                return
            click.echo(
                f"Remembered {turns} messages from {len(script['sessions'])} conversations "
                f"with {user} (in a temporary memory).\n"
            )
            for query in script["queries"]:
                _show_search(memory, query, user, limit)
            _show_profile(memory, user)


def _load(memory: Any, sessions: list[dict[str, Any]], user: str) -> int:
    turns = 0
    for session in sessions:
        memory.add(session["messages"], user_id=user, occurred_at=session["occurred_at"])
        turns += len(session["messages"])
    return turns


def _show_search(memory: Any, query: str, user: str, limit: int) -> None:
    click.secho(f"? {query}", bold=True)
    for hit in memory.search(query, user_id=user, limit=limit):
        source = memory.episode(hit.episode_ids[0])
        speaker = source.name or source.role or "?"
        click.echo(f"  {hit.score:.3f}  {shorten(hit.text, 90)}")
        click.secho(
            f"         source: {speaker}, {when(source.occurred_at)}  ({source.id})", dim=True
        )
    click.echo()


def _show_profile(memory: Any, user: str) -> None:
    """What memory says of the person, with no model: attributes and main topics."""
    profile = memory.profile(user_id=user)
    click.secho(f"Who memory says {user} is (remem profile --user {user}):", bold=True)
    for attribute in profile.attributes:
        click.echo(f"  {attribute.slot:<10} {shorten(attribute.value, 50)}")
    topics = ", ".join(topic.label for topic in profile.topics[:4])
    if topics:
        click.echo(f"  topics     {shorten(topics, 66)}")


COMMANDS = [demo]
