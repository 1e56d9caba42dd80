"""Commands that move memories in and out: export, import."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from remem.cli.common import json_option, open_memory
from remem.cli.output import print_json
from remem.errors import ConfigError

PROGRESS_SECONDS = 10.0  # between two progress lines in a log


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@json_option
@click.pass_context
def export(ctx: click.Context, path: str, as_json: bool) -> None:
    """Write the whole memory, history and vectors included, to a JSONL file."""
    count = open_memory(ctx).export(path)
    if as_json:
        print_json({"exported": count, "path": path})
    else:
        click.echo(f"exported {count} records to {path}")


@click.command(name="import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@json_option
@click.pass_context
def import_(ctx: click.Context, path: str, as_json: bool) -> None:
    """Load a JSONL export; records already present are skipped."""
    memory = open_memory(ctx)
    size = Path(path).stat().st_size
    with _progress(size, "importing", "MB", 2**20) as advance:
        result = memory.import_file(path, progress=advance)
    if as_json:
        print_json(result)
    else:
        click.echo(f"imported {result.added} records, skipped {result.skipped} already present")


@click.command()
@click.option("--from", "source", required=True, metavar="PATH_OR_URL", help="The memory to copy.")
@click.option(
    "--to", "target", required=True, metavar="PATH_OR_URL", help="Where to copy it (may exist)."
)
@json_option
def migrate(source: str, target: str, as_json: bool) -> None:
    """Copy a whole memory between stores, losslessly: episodes, notes, versions and
    history, links, jobs, vectors and API keys, ids kept. A SQLite path or a
    postgresql:// URL on either side; records already in the target are skipped, so an
    interrupted copy can simply be run again."""
    from remem.stores import open_store
    from remem.transfer import copy_store

    if source == target:
        raise click.UsageError("--from and --to name the same memory")
    for option, location in (("--from", source), ("--to", target)):
        if not location.strip():
            raise click.UsageError(f"{option} is empty: name a SQLite file or a postgresql:// URL")
    if _is_missing_file(source):  # opening it would create an empty memory to copy
        raise ConfigError(f"--from {source}: no such file, so no memory to copy")
    origin = open_store(source)
    destination = open_store(target)
    try:
        total = origin.counts()["records"]
        with _progress(total, "copying", "records") as advance:
            result = copy_store(origin, destination, advance, size=total)
    finally:
        origin.close()
        destination.close()
    if as_json:
        print_json(result)
    else:
        click.echo(f"copied {result.added} records ({result.skipped} already there)")


@contextmanager
def _progress(total: int, label: str, unit: str, scale: int = 1) -> Iterator[Callable[[int], None]]:
    """Progress on stderr: how much is done of `total`, and at what rate. A terminal gets
    a bar; a log (not a terminal) a line every PROGRESS_SECONDS, and one at the end."""
    start = time.monotonic()
    done = 0

    def shown(_: object = None) -> str:
        rate = done / scale / max(time.monotonic() - start, 1e-3)
        return f"{done // scale:,}/{total // scale:,} {unit}, {rate:,.0f} {unit}/s"

    if sys.stderr.isatty():
        with click.progressbar(
            length=total, label=label, file=sys.stderr, item_show_func=shown
        ) as bar:

            def advance(count: int) -> None:
                nonlocal done
                done += count
                bar.update(count, done)

            yield advance
        return
    last = start

    def log(count: int) -> None:
        nonlocal done, last
        done += count
        if time.monotonic() - last >= PROGRESS_SECONDS:
            last = time.monotonic()
            click.echo(f"{label}: {shown()}", err=True)

    yield log
    click.echo(f"{label}: {shown()}", err=True)


def _is_missing_file(location: str) -> bool:
    """True for a SQLite path (a location without a URL scheme) where nothing exists."""
    if "://" in location or location == ":memory:":
        return False
    return not Path(location).expanduser().exists()


COMMANDS = [export, import_, migrate]
