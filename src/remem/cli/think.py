"""`remem think`: remember a conclusion resting on memories (`Memory.think`)."""

from __future__ import annotations

import json
import sys
from typing import Unpack

import click

from remem.cli.common import ScopeOptions, json_option, open_memory, scope_options
from remem.cli.output import print_json
from remem.cli.show import ID_HELP, resolve_id


@click.command()
@click.argument("text")
@click.option(
    "--evidence",
    "evidence",
    multiple=True,
    required=True,
    metavar="ID",
    help=f"A memory the conclusion rests on ({ID_HELP}). Repeatable; at least one.",
)
@scope_options
@click.option(
    "--occurred-at", metavar="WHEN", help="When it was concluded (ISO 8601). Default: now."
)
@click.option("--metadata", metavar="JSON", help='A JSON object, e.g. \'{"by": "agent"}\'.')
@json_option
@click.pass_context
def think(
    ctx: click.Context,
    /,
    text: str,
    evidence: tuple[str, ...],
    occurred_at: str | None,
    metadata: str | None,
    as_json: bool,
    **scope: Unpack[ScopeOptions],
) -> None:
    """Remember TEXT (or stdin when TEXT is -) as a conclusion resting on the --evidence
    memories: a thought, marked inferred in context, merged with the same conclusion
    said before, and superseded when a memory it rests on is superseded or forgotten."""
    text = sys.stdin.read().rstrip("\r\n") if text == "-" else text
    meta = None
    if metadata:
        try:
            meta = json.loads(metadata)
        except json.JSONDecodeError as error:
            raise click.BadParameter(f"not JSON: {error}", param_hint="--metadata") from None
    memory = open_memory(ctx)
    thought = memory.think(
        text,
        evidence_ids=[resolve_id(memory, given) for given in evidence],
        occurred_at=occurred_at,
        metadata=meta,
        **scope,
    )
    if as_json:
        print_json(thought)
        return
    click.echo(f"concluded {thought.id}")


COMMANDS = [think]
