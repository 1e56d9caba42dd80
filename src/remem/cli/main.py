"""The `remem` command group and the options every command shares."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from remem.errors import RememError

F = TypeVar("F", bound=Callable[..., Any])


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


def settings_of(ctx: click.Context) -> Any:
    """Settings from the config file, REMEM_* and the global options."""
    from remem.config import Settings

    options = ctx.find_root().obj
    return Settings.resolve(
        config_file=options["config_file"], db=options["db"], embedder=options["embedder"]
    )


def open_memory(ctx: click.Context, **options: Any) -> Any:
    """The memory the global options and settings name; closed when the command ends."""
    from remem.embedders import create_embedder
    from remem.llms import create_llm
    from remem.memory import Memory, open_store

    settings = settings_of(ctx)
    parts = {"llm": create_llm(settings), "jobs": settings.jobs, **options}
    memory = Memory(store=open_store(settings.db), embedder=create_embedder(settings), **parts)
    ctx.call_on_close(memory.close)
    return memory


def scope_options(function: F) -> F:
    """--user, --agent, --session."""
    for name, help_text in (
        ("session", "Session id of the scope."),
        ("agent", "Agent id of the scope."),
        ("user", "User id of the scope."),
    ):
        function = click.option(f"--{name}", f"{name}_id", metavar="ID", help=help_text)(function)
    return function


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def _register() -> None:
    from remem.cli import bench, demo, jobs, memories, service, transfer

    for module in (memories, jobs, transfer, service, demo, bench):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()
