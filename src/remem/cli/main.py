"""The `remem` command group and the options every command shares."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click
from click.exceptions import NoArgsIsHelpError

from remem.errors import RememError


class MemoryGroup(click.Group):
    """Turns every error into one line `error: ...`: remem's own (exit 1, not a traceback)
    and click's usage errors (exit 2, without the usage text)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with one_line_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with one_line_errors():
            return super().invoke(ctx)


@contextmanager
def one_line_errors() -> Iterator[None]:
    try:
        yield
    except NoArgsIsHelpError:
        raise  # `remem` alone prints the help, as it should
    except click.ClickException as error:
        _fail(error.format_message(), error.exit_code)
    except RememError as error:
        _fail(str(error), 1)


def _fail(message: str, code: int) -> NoReturn:
    # a driver's message may span lines (psycopg adds hints): one line, its parts kept
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    click.echo(f"error: {'; '.join(lines) or 'failed'}", err=True)
    sys.exit(code)


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
    from remem.cli import (
        bench,
        demo,
        ingest,
        jobs,
        lifecycle,
        memories,
        profile,
        service,
        show,
        think,
        transfer,
        ui,
    )

    modules = (
        memories,
        lifecycle,
        think,
        show,
        profile,
        jobs,
        transfer,
        ingest,
        service,
        ui,
        demo,
        bench,
    )
    for module in modules:
        for command in module.COMMANDS:
            cli.add_command(command)


_register()
