"""Commands that serve remem to other programs: serve (REST, chat proxy, MCP), mcp, keys;
and import-mem0, for memories coming from mem0."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import click

from remem.cli.common import json_option, open_memory, settings_of, sweeping
from remem.cli.output import print_json, print_table, when
from remem.errors import ConfigError
from remem.serialize import to_data
from remem.types import ApiKey


def _require_serving_extras() -> None:
    try:
        import fastapi  # noqa: F401
        import mcp  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise ConfigError(
            f"serving needs remem's serve extras ({error.name} is missing):"
            " pip install 'remem[serve]'"
        ) from None


USER_OPTION = click.option(
    "--user",
    "user_id",
    envvar="REMEM_USER",
    default="me",
    show_default=True,
    help="Whose memory MCP tools act on when a call names no user. [env: REMEM_USER]",
)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8765, show_default=True, help="Port to listen on.")
@USER_OPTION
@click.option(
    "--conclude",
    is_flag=True,
    envvar="REMEM_PROXY_CONCLUDE",
    help="After each chat proxy answer, ask the model what it concluded worth remembering"
    " and keep it as thoughts (one more model call per exchange). [env: REMEM_PROXY_CONCLUDE]",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, user_id: str, conclude: bool) -> None:
    """Serve the web UI (/), the REST API (/v1/..., docs at /docs) and, when an upstream
    model is configured (REMEM_LLM_BASE_URL, REMEM_LLM_MODEL, REMEM_LLM_API_KEY), the
    OpenAI-compatible chat proxy at /v1/chat/completions. MCP clients reach the same
    tools as `remem mcp` at /mcp (streamable HTTP), with the same keys and tenants.

    With a model configured, adds are organised on a background thread, which also picks
    up jobs left pending before (REMEM_JOBS=worker leaves that to `remem worker`). Expired
    notes of every tenant are purged every REMEM_SWEEP_SECONDS (300; 0: never). Without
    API keys the server binds only to loopback and serves the local user, and only
    requests addressed to localhost, 127.0.0.1 or [::1] (and writes from no other web
    origin), so a web page cannot reach it by DNS rebinding; with keys (`remem keys
    create`) every request needs one and sees only its tenant.
    """
    _require_serving_extras()
    import uvicorn

    from remem.server.app import create_app
    from remem.server.proxy import Upstream

    settings = settings_of(ctx)
    # a request should not wait for the model: organise on a thread unless a worker does
    memory = open_memory(ctx, jobs="worker" if settings.jobs == "worker" else "background")
    loopback = _is_loopback(host)
    live_keys = [key for key in memory.store.list_keys() if key.revoked_at is None]
    if not loopback and not live_keys:
        raise ConfigError(
            f"refusing to serve on {host} without API keys: anyone who can reach it would read"
            " every memory. Create one with `remem keys create --tenant NAME`, or bind to"
            " 127.0.0.1"
        )
    upstream = None
    if settings.llm_base_url:
        upstream = Upstream(
            settings.llm_base_url, settings.llm_api_key, settings.llm_model, conclude=conclude
        )
    sweeping(ctx, memory)
    app = create_app(memory, open_without_keys=loopback, upstream=upstream, mcp_user=user_id)
    access = f"{len(live_keys)} API key(s)" if live_keys else "no API keys: local user only"
    proxy = f", chat proxy to {settings.llm_base_url}" if upstream else ""
    click.echo(
        f"remem serving http://{host}:{port} ({access}{proxy}): the web UI at /, the API under"
        " /v1, its docs at /docs, MCP at /mcp",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


@click.command()
@USER_OPTION
@click.option("--http", "over_http", is_flag=True, help="Serve streamable HTTP, not stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address for --http.")
@click.option("--port", default=8766, show_default=True, help="Port for --http.")
@click.pass_context
def mcp(ctx: click.Context, user_id: str, over_http: bool, host: str, port: int) -> None:
    """Serve remem's tools to MCP clients, over stdio (default) or streamable HTTP at /mcp.

    Over HTTP, as with `remem serve`: without API keys only on loopback, for the local
    user and only requests addressed to localhost; with keys (`remem keys create`) every
    request needs one and its tools see only the key's tenant. Either way, as `remem serve`
    does, expired notes are purged every REMEM_SWEEP_SECONDS.
    """
    _require_serving_extras()
    memory = open_memory(ctx, jobs=settings_of(ctx).jobs)
    sweeping(ctx, memory)
    if not over_http:
        from remem.server.mcp_tools import create_mcp_server

        create_mcp_server(memory, user_id).run("stdio")
        return
    import uvicorn

    from remem.server.mcp_http import mcp_app

    loopback = _is_loopback(host)
    live_keys = [key for key in memory.store.list_keys() if key.revoked_at is None]
    if not loopback and not live_keys:
        raise ConfigError(
            f"refusing to serve MCP on {host} without API keys: anyone who can reach it would"
            " read every memory. Create one with `remem keys create --tenant NAME`, or bind"
            " to 127.0.0.1"
        )
    access = f"{len(live_keys)} API key(s)" if live_keys else "no API keys: local user only"
    click.echo(f"remem MCP at http://{host}:{port}/mcp ({access})", err=True)
    app = mcp_app(memory, user_id, open_without_keys=loopback)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@click.group()
def keys() -> None:
    """API keys of the server: each acts for one tenant and sees only its memories."""


@keys.command()
@click.option("--tenant", required=True, help="The tenant the key acts for.")
@click.option("--name", default="", help="A label to recognise the key by.")
@json_option
@click.pass_context
def create(ctx: click.Context, tenant: str, name: str, as_json: bool) -> None:
    """Make a key. Its secret is printed once; remem keeps only a digest."""
    from remem.keys import create_key

    key, secret = create_key(open_memory(ctx).store, tenant, name)
    if as_json:
        print_json({"id": key.id, "tenant": key.tenant, "name": key.name, "secret": secret})
        return
    click.echo(f"created {key.id} for tenant {key.tenant}; the key (shown only now):")
    click.echo(secret)


@keys.command(name="list")
@json_option
@click.pass_context
def list_keys(ctx: click.Context, as_json: bool) -> None:
    """Every key, revoked ones included (never the secrets)."""
    found = open_memory(ctx).store.list_keys()
    if as_json:
        print_json([_key_data(key) for key in found])
        return
    print_table(
        ["id", "tenant", "created", "revoked", "name"],
        [[k.id, k.tenant, when(k.created_at), when(k.revoked_at), k.name] for k in found],
    )


@keys.command()
@click.argument("key_id", metavar="ID")
@json_option
@click.pass_context
def revoke(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Stop a key from working, at once (servers check keys on every request)."""
    from remem.keys import revoke_key

    key = revoke_key(open_memory(ctx).store, key_id)
    if as_json:
        print_json(_key_data(key))
    else:
        click.echo(f"revoked {key.id} (tenant {key.tenant})")


def _key_data(key: ApiKey) -> dict[str, Any]:
    """What a listing shows of a key: everything but the digest."""
    data = to_data(key)
    del data["digest"]
    return data


def _is_loopback(host: str) -> bool:
    """True when `host` only ever resolves to loopback addresses."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


@click.command(name="import-mem0")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--user", "user_id", help="The user of memories that name no user, agent or run.")
@json_option
@click.pass_context
def import_mem0(ctx: click.Context, path: str, user_id: str | None, as_json: bool) -> None:
    """Import a mem0 export: the JSON its get_all returns ({"results": [...]}) or a list
    of its memories. Each keeps its scope (a mem0 run is a remem session), date, speaker
    and metadata (plus its mem0_id); running it again skips what is already imported."""
    from remem.compat.mem0_import import import_mem0 as load
    from remem.compat.mem0_import import read_export

    result = load(open_memory(ctx), read_export(path), user_id=user_id)
    if as_json:
        print_json(result)
        return
    click.echo(f"imported {result.added} memories; {result.present} were already here")
    for index, why in result.skipped:
        click.echo(f"skipped #{index}: {why}", err=True)


COMMANDS = [serve, mcp, keys, import_mem0]
