"""The `remem` command group and the options every command shares."""

from __future__ import annotations

import sys
from typing import Any

import click

from remem.errors import RememError


class MemoryGroup(click.Group):
    """Turns remem's own errors into one clear line and exit code 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RememError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)


@click.group(cls=MemoryGroup)
@click.option(
    "--db",
    envvar="REMEM_DB",
    metavar="PATH",
    help="The memory: a SQLite file or a postgresql:// URL. [env: REMEM_DB; default: a"
    " SQLite file in the user data dir]",
)
@click.option(
    "--embedder",
    envvar="REMEM_EMBEDDER",
    metavar="NAME",
    help="Embedding backend: minilm (bundled, default), openai. [env: REMEM_EMBEDDER]",
)
@click.option(
    "--config",
    "config_file",
    envvar="REMEM_CONFIG",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="A TOML config file. [env: REMEM_CONFIG]",
)
@click.version_option(package_name="remem")
@click.pass_context
def cli(ctx: click.Context, db: str | None, embedder: str | None, config_file: str | None) -> None:
    """remem: long-term memory for people and the agents that act for them.

    Memories live in one SQLite file (or PostgreSQL) and are searched with a bundled,
    offline embedding model. Start with `remem demo`.
    """
    ctx.obj = {"db": db, "embedder": embedder, "config_file": config_file}


def _register() -> None:
    from remem.cli import bench, demo, jobs, memories, service, transfer

    for module in (memories, jobs, transfer, service, demo, bench):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()
