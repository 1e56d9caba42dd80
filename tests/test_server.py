"""The REST API over real HTTP on 127.0.0.1: every route, keys and tenants, bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from remem import Memory
from remem.keys import create_key, revoke_key
from remem.server.app import create_app
from remem.testing.http import running


@pytest.fixture
def server(memory: Memory) -> Iterator[str]:
    with running(create_app(memory, max_body_bytes=64_000)) as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=10) as client:
        yield client


def _add(client: httpx.Client, text: str, **scope: str) -> str:
    answer = client.post("/v1/memories", json={"content": text, **scope})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["note_ids"][0])


def test_every_route_round_trips(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    note_id = _add(client, "Ana's cat is called Miso", user_id="ana")
    messages = [{"role": "user", "name": "Ana", "content": "I adopted a second cat, Tofu."}]
    added = client.post("/v1/memories", json={"content": messages, "user_id": "ana"}).json()
    hits = client.post("/v1/search", json={"query": "cat name", "user_id": "ana"}).json()
    assert {hit["id"] for hit in hits} == {note_id, *added["note_ids"]}
    context = client.post("/v1/context", json={"query": "cats", "user_id": "ana"}).json()
    assert "Miso" in context["text"] and context["tokens"] <= context["budget"]
    assert client.get(f"/v1/memories/{note_id}").json()["text"] == "Ana's cat is called Miso"
    episode = client.get(f"/v1/episodes/{added['episode_ids'][0]}").json()
    assert episode["name"] == "Ana"
    page = client.get("/v1/memories", params={"user_id": "ana", "limit": 1}).json()
    second = client.get("/v1/memories", params={"user_id": "ana", "cursor": page["cursor"]})
    assert [n["id"] for n in page["items"] + second.json()["items"]] == [
        note_id,
        *added["note_ids"],
    ]
    updated = client.patch(f"/v1/memories/{note_id}", json={"text": "Ana's cat is Miso Soup"})
    assert updated.json()["version"] == 2
    history = client.get(f"/v1/memories/{note_id}/history").json()
    assert [event["action"] for event in history] == ["add", "update_text"]
    exported = client.get("/v1/export")
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    assert json.loads(exported.text.splitlines()[0])["type"] == "remem-export"
    assert client.delete(f"/v1/memories/{note_id}").status_code == 204
    assert client.get(f"/v1/memories/{note_id}").status_code == 404
    assert client.delete("/v1/memories", params={"user_id": "ana"}).json() == {"deleted": 1}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "names"),
    [
        ("post", "/v1/memories", {"content": "x"}, 422, "user_id"),
        ("post", "/v1/memories", {"content": 5, "user_id": "a"}, 422, "content"),
        ("post", "/v1/memories", {"content": "x", "user_id": "a", "colour": 1}, 422, "colour"),
        ("post", "/v1/memories", {"content": "  ", "user_id": "a"}, 422, "empty"),
        (
            "post",
            "/v1/memories",
            {"content": "x", "user_id": "a", "occurred_at": "soon"},
            422,
            "soon",
        ),
        ("post", "/v1/search", {"query": "", "user_id": "a"}, 422, "query"),
        ("post", "/v1/search", {"query": "x", "user_id": "a", "limit": 0}, 422, "limit"),
        ("post", "/v1/context", {"query": "x", "user_id": "a", "budget_tokens": 1}, 422, "budget"),
        ("get", "/v1/memories/nt_missing", None, 404, "nt_missing"),
        ("get", "/v1/episodes/ep_missing", None, 404, "ep_missing"),
        ("patch", "/v1/memories/nt_missing", {"text": "y"}, 404, "nt_missing"),
        ("delete", "/v1/memories", None, 422, "scope"),
        ("get", "/v1/memories?cursor=zz", None, 422, "cursor"),
        ("get", "/v1/nowhere", None, 404, "Not Found"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(
    client: httpx.Client, method: str, path: str, body: object, status: int, names: str
) -> None:
    answer = client.request(method, path, json=body)
    assert answer.status_code == status, answer.text
    assert names in answer.json()["error"]["message"]


def test_invalid_utf8_and_oversized_bodies_are_refused(client: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    bad = client.post(
        "/v1/memories", content=b'{"content": "\xff\xfe", "user_id": "a"}', headers=headers
    )
    assert bad.status_code == 400 and "UTF-8" in bad.json()["error"]["message"]
    huge = json.dumps({"content": "word " * 20_000, "user_id": "a"})
    answer = client.post("/v1/memories", content=huge, headers=headers)
    assert answer.status_code == 413 and "64000" in answer.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"content": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'", "user_id": "a"}'

    streamed = client.post("/v1/memories", content=chunks(), headers=headers)
    assert streamed.status_code == 413


def test_keys_separate_tenants(memory: Memory, client: httpx.Client) -> None:
    _, acme = create_key(memory.store, "acme")
    umbrella_key, umbrella = create_key(memory.store, "umbrella")
    as_acme = {"Authorization": f"Bearer {acme}"}
    as_umbrella = {"Authorization": f"Bearer {umbrella}"}
    assert client.get("/v1/memories").status_code == 401  # keys exist: no more open access
    note = client.post(
        "/v1/memories", json={"content": "acme secret", "user_id": "ana"}, headers=as_acme
    ).json()["note_ids"][0]
    assert client.get(f"/v1/memories/{note}", headers=as_umbrella).status_code == 404
    assert (
        client.post(
            "/v1/search", json={"query": "acme secret", "user_id": "ana"}, headers=as_umbrella
        ).json()
        == []
    )
    assert client.get("/v1/memories", headers=as_umbrella).json()["items"] == []
    assert "acme secret" not in client.get("/v1/export", headers=as_umbrella).text
    assert client.get(f"/v1/memories/{note}", headers=as_acme).status_code == 200
    revoke_key(memory.store, umbrella_key.id)
    assert client.get("/v1/memories", headers=as_umbrella).status_code == 401


def test_a_non_loopback_server_always_needs_a_key(memory: Memory) -> None:
    with running(create_app(memory, open_without_keys=False)) as url:
        answer = httpx.get(f"{url}/v1/memories")
    assert answer.status_code == 401 and "remem keys create" in answer.json()["error"]["message"]


def test_cli_and_server_write_the_same_file_without_losing_any(server: str, location: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from remem.testing import HashEmbedder

    with (
        Memory(location, embedder=HashEmbedder()) as second,
        httpx.Client(base_url=server) as client,
    ):

        def over_http(i: int) -> str:
            return _add(client, f"http note {i}", user_id="both")

        def direct(i: int) -> str:
            return second.add(f"direct note {i}", user_id="both").note_ids[0]

        with ThreadPoolExecutor(4) as pool:
            written = list(pool.map(over_http, range(40))) + list(pool.map(direct, range(40)))
        listed = client.get("/v1/memories", params={"user_id": "both", "limit": 1000}).json()
    assert {note["id"] for note in listed["items"]} == set(written)


@pytest.mark.parametrize(
    "host", ["localhost", "LocalHost:8765", "127.0.0.1", "127.0.0.1:1", "[::1]", "[::1]:8765"]
)
def test_a_keyless_server_serves_requests_addressed_to_this_machine(
    client: httpx.Client, host: str
) -> None:
    headers = {"Host": host, "Origin": "http://localhost:3000"}
    answer = client.post("/v1/memories", json={"content": "x", "user_id": "a"}, headers=headers)
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example"}, 421),  # DNS rebinding: the browser names the page's host
        ({"Host": "localhost.evil.example:8765"}, 421),
        ({"Host": "127.0.0.1:port"}, 421),
        ({"Origin": "http://evil.example"}, 403),  # a page elsewhere posting to 127.0.0.1
        ({"Origin": "null"}, 403),
        ({"Origin": "http://127.0.0.1.nip.io"}, 403),
    ],
)
def test_a_keyless_server_refuses_what_a_web_page_elsewhere_sends(
    client: httpx.Client, headers: dict[str, str], status: int
) -> None:
    answer = client.post("/v1/memories", json={"content": "x", "user_id": "a"}, headers=headers)
    assert answer.status_code == status and answer.json()["error"]["message"]
    assert client.get("/v1/export", headers=headers).status_code == (
        421 if status == 421 else 200  # reads from another origin: the browser hides them
    )
    assert client.get("/v1/memories", params={"user_id": "a"}).json()["items"] == []


def test_with_keys_any_host_and_origin_may_use_a_key(memory: Memory, client: httpx.Client) -> None:
    _, secret = create_key(memory.store, "acme")
    headers = {"Host": "memory.example", "Origin": "https://app.example"}
    assert client.get("/v1/memories", headers=headers).status_code == 401
    headers["Authorization"] = f"Bearer {secret}"
    added = client.post("/v1/memories", json={"content": "x", "user_id": "a"}, headers=headers)
    assert added.status_code == 201, added.text


def test_a_wrong_method_names_every_method_of_the_path(client: httpx.Client) -> None:
    answer = client.put("/v1/memories")
    assert answer.status_code == 405 and answer.json()["error"]["type"] == "MethodNotAllowed"
    assert set(answer.headers["allow"].split(", ")) == {"GET", "POST", "DELETE"}
    allowed = client.post("/v1/memories/nt_x").headers["allow"]
    assert set(allowed.split(", ")) == {"GET", "PATCH", "DELETE"}


def test_if_match_guards_an_update(client: httpx.Client) -> None:
    note_id = _add(client, "Ana's bike is blue", user_id="ana")
    got = client.get(f"/v1/memories/{note_id}")
    assert got.headers["etag"] == '"1"'
    changed = client.patch(
        f"/v1/memories/{note_id}", json={"text": "Ana's bike is red"}, headers={"If-Match": '"1"'}
    )
    assert changed.status_code == 200 and changed.headers["etag"] == '"2"'
    stale = client.patch(
        f"/v1/memories/{note_id}", json={"text": "Ana's bike is green"}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["error"]["type"] == "PreconditionFailed"
    conflict = client.patch(
        f"/v1/memories/{note_id}", json={"text": "Ana's bike is green", "expected_version": 1}
    )
    assert conflict.status_code == 409 and conflict.json()["error"]["type"] == "ConflictError"
    garbled = client.patch(
        f"/v1/memories/{note_id}", json={"text": "x"}, headers={"If-Match": "version one"}
    )
    assert garbled.status_code == 412
    anything = client.patch(
        f"/v1/memories/{note_id}", json={"metadata": {"k": 1}}, headers={"If-Match": "*"}
    )
    assert anything.status_code == 200
    assert client.get(f"/v1/memories/{note_id}").json()["text"] == "Ana's bike is red"
    listed = client.patch(  # a list of ETags matches any of them (RFC 9110)
        f"/v1/memories/{note_id}",
        json={"text": "Ana's bike is teal"},
        headers={"If-Match": '"1", "3"'},
    )
    assert listed.status_code == 200 and listed.headers["etag"] == '"4"'
    any_but_stale_body = client.patch(
        f"/v1/memories/{note_id}",
        json={"text": "x", "expected_version": 1},
        headers={"If-Match": "*"},
    )
    assert any_but_stale_body.status_code == 409  # the body's expectation failed, not If-Match


def test_purge_over_rest(client: httpx.Client) -> None:
    note_id = _add(client, "Ana's pin is quokka", user_id="ana")
    client.patch(f"/v1/memories/{note_id}", json={"text": "Ana's pin is wombat"})
    assert client.delete(f"/v1/memories/{note_id}", params={"purge": "true"}).status_code == 204
    assert client.get(f"/v1/memories/{note_id}").status_code == 404
    history = client.get(f"/v1/memories/{note_id}/history").json()
    assert history[-1]["action"] == "purge"
    assert "quokka" not in json.dumps(history) and "wombat" not in json.dumps(history)
    _add(client, "Bo's pin is numbat", user_id="bo")
    _add(client, "Bo's other pin is bilby", user_id="bo")
    erased = client.delete("/v1/memories", params={"user_id": "bo", "purge": "true"})
    assert erased.json() == {"deleted": 4}  # two episodes, two notes
    exported = client.get("/v1/export").text
    # Words, not digits: event times and ids are digits, and once held "1111" by chance.
    assert "numbat" not in exported and "bilby" not in exported


def test_links_over_rest(client: httpx.Client) -> None:
    text = "Ana keeps her bike in the garage next to the car."
    first = _add(client, text, user_id="ana")
    second = _add(client, text + " Always.", user_id="ana")
    (link,) = client.get(f"/v1/memories/{second}/links").json()
    assert (link["source_id"], link["target_id"], link["relation"]) == (second, first, "similar")
    assert client.get(f"/v1/memories/{first}/links").json() == [link]
    assert client.get("/v1/memories/nt_missing/links").status_code == 404
    history = client.get(f"/v1/memories/{second}/history").json()
    assert [event["action"] for event in history] == ["add", "link"]
