"""Commands that move memories in and out: export, import."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from remem.cli.main import json_option, open_memory
from remem.cli.output import print_json


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@click.pass_context
def export(ctx: click.Context, path: str) -> None:
    """Write the whole memory, history and vectors included, to a JSONL file."""
    count = open_memory(ctx).export(path)
    click.echo(f"exported {count} records to {path}")


@click.command(name="import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@json_option
@click.pass_context
def import_(ctx: click.Context, path: str, as_json: bool) -> None:
    """Load a JSONL export; records already present are skipped."""
    memory = open_memory(ctx)
    size = Path(path).stat().st_size
    with click.progressbar(length=size, label="importing", file=sys.stderr) as bar:
        result = memory.import_file(path, progress=bar.update)
    if as_json:
        print_json(result)
    else:
        click.echo(f"imported {result.added} records, skipped {result.skipped} already present")


COMMANDS = [export, import_]
