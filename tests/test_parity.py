"""Every public `Memory` method exists, with the same parameters, on `AsyncMemory`,
`Client` and `AsyncClient`, is served by a REST route, and (where it maps) is an MCP
tool: a method added to `Memory` and forgotten on one surface fails here.
(`python tests/test_parity.py` prints the method x surface table.)"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from remem import AsyncClient, AsyncMemory, Client, Memory
from remem.client.routes import LOCAL, ROUTES
from remem.server.app import create_app
from remem.server.mcp_tools import create_mcp_server
from remem.testing import HashEmbedder

# Memory method -> the MCP tool that does it
MCP_TOOLS = {
    "add": "add_memory",
    "search": "search_memory",
    "context": "get_context",
    "get": "get_memory",
    "update": "update_memory",
    "delete": "delete_memory",
    "list": "list_memories",
    "history": "memory_history",
    "links": "memory_links",
    "profile": "get_profile",
    "fill": "fill_form",
    "think": "remember_conclusion",
    "pin": "pin_memory",
    "unpin": "unpin_memory",
    "archive": "archive_memory",
    "unarchive": "unarchive_memory",
}
# Memory methods that are no MCP tool, and why (an agent's tools are about its user's memory)
NOT_MCP = {
    "episode": "an agent reads episodes through get_context and the hits' sources",
    "purge": "erasing for good is the person's decision, not an agent's",
    "purge_all": "erasing for good is the person's decision, not an agent's",
    "delete_all": "forgetting a whole scope is the person's decision, not an agent's",
    "topics": "get_profile carries the topics",
    "export": "files on the server's disk: the person's tools (CLI, REST, web UI)",
    "import_file": "files on the server's disk: the person's tools (CLI, REST, web UI)",
    "ingest": "files on the server's disk: the person's tools (CLI, REST, web UI)",
    "ingest_uploads": "uploads: the person's tools (REST, web UI)",
    "run_jobs": "jobs span tenants: the server's operator runs them",
    "retry_failed_jobs": "jobs span tenants: the server's operator runs them",
    "sweep_expired": "purging expired memories is the operator's periodic job",
    "consolidate": "merging near-duplicates is maintenance: the operator's periodic job",
    "set_default_expiry": "how long memories are kept is the person's decision",
    "as_tenant": "a tool acts for its server's (or key's) tenant",
    "close": "the server's lifecycle",
    "from_config": "the server's lifecycle",
}
SURFACES = [AsyncMemory, Client, AsyncClient]
ASYNC = {AsyncMemory, AsyncClient}
NOT_AWAITED = {"as_tenant", "from_config"}  # they make an object, and do no I/O


def public_methods() -> list[str]:
    return sorted(
        name
        for name, value in inspect.getmembers(Memory)
        if not name.startswith("_") and callable(value)
    )


def parameters(function: Any) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of each parameter but `self`/`cls`."""
    signature = inspect.signature(function)
    return [
        (p.name, p.kind, p.default)
        for p in signature.parameters.values()
        if p.name not in ("self", "cls")
    ]


def test_the_public_api_is_what_this_file_knows() -> None:
    """A new Memory method must be placed in both tables below (and served everywhere)."""
    known = set(MCP_TOOLS) | set(NOT_MCP)
    assert set(public_methods()) == known, "classify the new Memory method for MCP here"
    assert set(MCP_TOOLS).isdisjoint(NOT_MCP)


@pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.__name__)
@pytest.mark.parametrize("name", public_methods())
def test_every_method_exists_with_the_same_parameters(surface: type, name: str) -> None:
    if surface in (Client, AsyncClient) and name == "from_config":
        assert not hasattr(surface, name), LOCAL[name]
        return  # a client is made from a URL and a key
    method = getattr(surface, name, None)
    assert method is not None, f"{surface.__name__} has no {name}"
    assert parameters(method) == parameters(getattr(Memory, name))
    awaited = surface in ASYNC and name not in NOT_AWAITED
    assert inspect.iscoroutinefunction(method) == awaited, f"{surface.__name__}.{name}"
    if name not in LOCAL:
        assert (method.__doc__ or "").strip() == (getattr(Memory, name).__doc__ or "").strip()


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Memory]:
    with Memory(tmp_path / "memory.db", embedder=HashEmbedder(), llm=None) as memory:
        yield memory


def test_every_method_a_client_sends_has_a_rest_route(memory: Memory) -> None:
    served = {
        (method, route.path)
        for route in create_app(memory).routes
        for method in getattr(route, "methods", None) or ()
    }
    assert set(public_methods()) == set(ROUTES) | set(LOCAL)
    missing = {
        name: f"{r.method} {r.path}"
        for name, r in ROUTES.items()
        if (r.method, r.path) not in served
    }
    assert not missing, f"no REST route for {missing}"


def test_every_mapped_method_is_an_mcp_tool(memory: Memory) -> None:
    tools = {tool.name for tool in anyio.run(create_mcp_server(memory, "ana").list_tools)}
    assert set(MCP_TOOLS.values()) <= tools, f"missing MCP tools: {set(MCP_TOOLS.values()) - tools}"


def table() -> str:
    """The parity table for people: method x surface."""
    rows = [
        "| method | Memory | AsyncMemory | Client | AsyncClient | REST | MCP |",
        "|---" * 7 + "|",
    ]
    for name in public_methods():
        cells = ["yes" if hasattr(surface, name) else "-" for surface in SURFACES]
        route = ROUTES.get(name)
        rest = f"`{route.method} {route.path}`" if route else f"n/a: {LOCAL[name]}"
        mcp = f"`{MCP_TOOLS[name]}`" if name in MCP_TOOLS else "-"
        rows.append(f"| `{name}` | yes | {' | '.join(cells)} | {rest} | {mcp} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
