"""The red team's findings on the surfaces of c5b44ee (MCP at /mcp, `remem mcp --http`,
/v1/import, /v1/jobs), each against a real server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from remem import Memory
from remem.keys import create_key
from remem.server.app import create_app
from remem.server.mcp_http import mcp_app
from remem.testing import HashEmbedder
from remem.testing.http import running

MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
LIST = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "list_memories", "arguments": {}},
}


@pytest.fixture
def memory(db_path: Path) -> Iterator[Memory]:
    with Memory(db_path, embedder=HashEmbedder(), llm=None) as memory:
        yield memory


def _chunks(total: int) -> Iterator[bytes]:
    """A body without Content-Length (chunked), so only the bytes sent can pass a limit."""
    sent = 0
    while sent < total:
        yield b" " * 65536
        sent += 65536


def test_a_chunked_body_over_the_limit_is_a_413_not_a_500(memory: Memory) -> None:
    _, secret = create_key(memory.store, "acme")
    bearer = MCP_HEADERS | {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    with running(create_app(memory, open_without_keys=False, max_body_bytes=64 * 1024)) as url:
        answer = httpx.post(f"{url}/mcp", content=_chunks(1024 * 1024), headers=bearer)
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["type"] == "BodyTooLarge"
        # a chunked body within the limit still reaches the tools
        small = json.dumps(LIST).encode()
        answer = httpx.post(f"{url}/mcp", content=iter([small[:10], small[10:]]), headers=bearer)
        assert answer.status_code == 200 and answer.json()["result"]["isError"] is False


def test_remem_mcp_http_limits_the_body_too(memory: Memory) -> None:
    """Held before (the SDK's own 4 MiB cap); now remem's limit and JSON error, as serve."""
    _, secret = create_key(memory.store, "acme")
    bearer = MCP_HEADERS | {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    with running(mcp_app(memory, "me", open_without_keys=False)) as url:
        huge = httpx.post(f"{url}/mcp", content=_chunks(5 * 1024 * 1024), headers=bearer)
        assert huge.status_code == 413, huge.text
        assert httpx.post(f"{url}/mcp", json=LIST, headers=bearer).status_code == 200


def test_a_get_on_mcp_is_a_405_not_a_stream_that_never_ends(memory: Memory) -> None:
    _, secret = create_key(memory.store, "acme")
    accept_sse = {"Accept": "text/event-stream"}
    with running(create_app(memory, open_without_keys=False)) as url:
        keyed = httpx.get(
            f"{url}/mcp", headers=accept_sse | {"Authorization": f"Bearer {secret}"}, timeout=10
        )
        assert keyed.status_code == 405 and keyed.headers["Allow"] == "POST"
        assert keyed.json()["error"]["type"] == "MethodNotAllowed"
        assert httpx.get(f"{url}/mcp", headers=accept_sse, timeout=10).status_code == 401


def test_a_keyless_loopback_mcp_refuses_rebound_and_foreign_requests(memory: Memory) -> None:
    with running(create_app(memory, open_without_keys=True)) as url:
        for host in ("evil.example", "127.0.0.1.evil.example", "localhost.:80", "127.1:80"):
            answer = httpx.post(f"{url}/mcp", json=LIST, headers=MCP_HEADERS | {"Host": host})
            assert answer.status_code == 421, host
        for origin in ("http://evil.example", "null", "http://127.0.0.1@evil.example", ""):
            answer = httpx.post(f"{url}/mcp", json=LIST, headers=MCP_HEADERS | {"Origin": origin})
            assert answer.status_code == 403, origin
        # an SSE stream a page could open on the user's machine is not kept open either
        assert httpx.get(f"{url}/mcp", headers=MCP_HEADERS, timeout=10).status_code == 405
        assert httpx.post(f"{url}/mcp", json=LIST, headers=MCP_HEADERS).status_code == 200


def test_malformed_json_rpc_gets_a_4xx(memory: Memory) -> None:
    _, secret = create_key(memory.store, "acme")
    bearer = MCP_HEADERS | {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    lone = b'"\\ud800"'
    call = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_memory",'
    bodies = [
        b"",
        b"null",
        b"[]",
        b"[" * 100_000,
        b"\xff\xfe",
        call + b'"arguments":{"content":' + lone + b"}}}",
    ]
    with running(create_app(memory, open_without_keys=False)) as url:
        for body in bodies:
            answer = httpx.post(f"{url}/mcp", content=body, headers=bearer)
            assert 400 <= answer.status_code < 500, (body[:40], answer.text)
    assert memory.as_tenant("acme").list().items == ()


def test_an_import_cannot_reach_another_tenant(memory: Memory, tmp_path: Path) -> None:
    _, acme = create_key(memory.store, "acme")
    theirs = memory.as_tenant("umbrella")
    theirs.add("Umbrella's launch code is 0451.", user_id="me")
    theirs.export(tmp_path / "b.jsonl")
    lines = (tmp_path / "b.jsonl").read_text().splitlines()
    retenanted = [lines[0]] + [
        json.dumps({**record, "scope": {**record["scope"], "tenant": "acme"}})
        for record in map(json.loads, lines[1:])
    ]
    bearer = {"Authorization": f"Bearer {acme}"}
    with running(create_app(memory, open_without_keys=False)) as url:
        for upload in (lines, retenanted, [*lines[:-1], lines[-1][:-9]]):
            content = "\n".join(upload).encode()
            answer = httpx.post(
                f"{url}/v1/import", files={"file": ("b.jsonl", content)}, headers=bearer
            )
            assert answer.status_code == 422, answer.text
            assert "b.jsonl:" in answer.json()["error"]["message"]
        for path in ("/v1/jobs/run", "/v1/jobs/retry"):
            assert httpx.post(url + path, headers=bearer).status_code == 403
            assert httpx.post(url + path).status_code == 401
    assert memory.as_tenant("acme").list().items == ()
    assert [note.version for note in theirs.list().items] == [1]


def test_a_mem0_filter_depth_bomb_is_invalid_input(memory: Memory) -> None:
    from remem import InvalidInputError
    from remem.compat.mem0 import Memory as Mem0

    facade = Mem0(memory)
    facade.add("I like tea", user_id="ana", infer=False)
    bomb: dict[str, object] = {"a": 1}
    for _ in range(5000):  # was a RecursionError
        bomb = {"AND": [bomb]}
    with pytest.raises(InvalidInputError, match="deeper than 32"):
        facade.search("tea", user_id="ana", filters=bomb)
    nested: dict[str, object] = {"a": 1}
    for _ in range(10):
        nested = {"OR": [nested]}
    assert facade.search("tea", user_id="ana", filters=nested) is not None
