"""What every command shares: the settings and memory the global options name, and the
scope and --json options. Below the command modules, which import it (never `main`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import click

if TYPE_CHECKING:
    from remem.config import Settings
    from remem.memory import Memory

F = TypeVar("F", bound=Callable[..., Any])


def settings_of(ctx: click.Context) -> Settings:
    """Settings from the config file, REMEM_* and the global options."""
    from remem.config import Settings

    options = ctx.find_root().obj
    return Settings.resolve(
        config_file=options["config_file"], db=options["db"], embedder=options["embedder"]
    )


def open_memory(ctx: click.Context, **options: Any) -> Memory:
    """The memory the global options and settings name (built the way `Memory()` builds
    one); closed when the command ends."""
    from remem.memory import Memory

    settings = settings_of(ctx)
    if settings.jobs == "background" and "jobs" not in options:
        # a background thread belongs to a long-running process (`remem serve`): a short
        # command only queues its jobs, for the server or a `remem worker`
        options["jobs"] = "worker"
    memory = Memory(settings=settings, **options)
    ctx.call_on_close(memory.close)
    return memory


def sweeping(ctx: click.Context, memory: Memory) -> None:
    """Purge the expired notes of every tenant on a thread while a long-running command
    runs, every REMEM_SWEEP_SECONDS (0: never; see `remem.lifecycle.sweep`), and merge
    near-duplicates every REMEM_CONSOLIDATE_SECONDS (0, the default: never)."""
    from remem.lifecycle.consolidation_api import consolidate_all
    from remem.lifecycle.sweep import Sweeper, interval_of

    settings = settings_of(ctx)
    sweeper = Sweeper(memory, interval_of(settings)).start()
    ctx.call_on_close(sweeper.stop)  # before the memory closes (callbacks run last first)
    every = interval_of(settings, "consolidate_seconds")
    merger = Sweeper(memory, every, consolidate_all, "consolidating near-duplicates").start()
    ctx.call_on_close(merger.stop)


class ScopeOptions(TypedDict):
    """What `scope_options` passes a command: `**scope: Unpack[ScopeOptions]`."""

    user_id: str | None
    agent_id: str | None
    session_id: str | None


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


def full_ids_option(function: F) -> F:
    return click.option(
        "--full-ids", is_flag=True, help="Whole ids in the table, not their last 8 characters."
    )(function)
