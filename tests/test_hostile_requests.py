"""Hostile requests against a live server (real HTTP on 127.0.0.1), on both stores.

Each attack is one request. One that is `refused` must get a 4xx with a JSON error body; one
that may be accepted (a date at year 9999, a 600-word query) must never get a 5xx, and its
error, if any, must be JSON too. After every attack the attacked user's memories must still
read (list, search, context), so an accepted input cannot break later reads.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from remem import Memory
from remem.keys import create_key
from remem.server.app import create_app
from remem.server.proxy import Upstream
from remem.testing import HashEmbedder, ScriptedTransport
from remem.testing.http import running

LIMIT = 64_000  # the body limit of the server under attack


@dataclass(frozen=True)
class Attack:
    name: str
    method: str
    path: str
    body: Any = None  # JSON; bytes are sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    refused: bool = True  # False: it may be accepted, but must not fail
    user: str = "victim"  # whose memories must still read afterwards


def _deep(levels: int) -> str:
    """JSON text of dicts nested `levels` deep (as text: Python cannot print it)."""
    return '{"k": ' * levels + '"bottom"' + "}" * levels


def _raw(**fields: str) -> bytes:
    """A JSON object whose values are raw JSON text (for escapes Python would not send)."""
    return ("{" + ", ".join(f'"{key}": {value}' for key, value in fields.items()) + "}").encode()


def _add(user: str, **fields: Any) -> dict[str, Any]:
    return {"content": "hostile input", "user_id": user, **fields}


def _chat(user: str, content: Any, **fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], "user": user, **fields}


READS = [("GET", "/v1/export", None), ("GET", "/v1/memories", None)]
WRITES = [
    ("POST", "/v1/memories", _add("host")),
    ("POST", "/v1/search", {"query": "x", "user_id": "host"}),
    ("POST", "/v1/context", {"query": "x", "user_id": "host"}),
    ("DELETE", "/v1/memories?user_id=host", None),
    ("PATCH", "/v1/memories/nt_x", {"text": "y"}),
    ("DELETE", "/v1/memories/nt_x", None),
    ("POST", "/v1/chat/completions", _chat("host", "hi")),
]
BAD_HOSTS = [
    "evil.example",
    "evil.example:8765",
    "localhost.evil.example",
    "127.0.0.1.nip.io",
    "localhost:8765.evil.example",
    "[::1].evil.example",
    "localhost:http",
    "0.0.0.0:8765",
]
BAD_ORIGINS = [
    "http://evil.example",
    "https://evil.example:443",
    "null",
    "http://localhost.evil.example",
    "http://127.0.0.1.nip.io:8765",
    "file://",
]


def _host_attacks() -> list[Attack]:
    return [
        Attack(f"host {host!r} {method} {path}", method, path, body, {"Host": host})
        for host in BAD_HOSTS
        for method, path, body in [*READS, *WRITES]
    ]


def _origin_attacks() -> list[Attack]:
    return [
        Attack(f"origin {origin!r} {method} {path}", method, path, body, {"Origin": origin})
        for origin in BAD_ORIGINS
        for method, path, body in WRITES
    ]


def _size_attacks() -> list[Attack]:
    big = "word " * (LIMIT // 4)
    return [
        Attack("huge content", "POST", "/v1/memories", _add("size", content=big)),
        Attack("huge query", "POST", "/v1/search", {"query": big, "user_id": "size"}),
        Attack("huge chat", "POST", "/v1/chat/completions", _chat("size", big)),
        Attack("huge patch", "PATCH", "/v1/memories/nt_x", {"text": big}),
        Attack(
            "query over its limit", "POST", "/v1/search", {"query": "q" * 10_001, "user_id": "u"}
        ),
        Attack("id of 5000 chars", "GET", "/v1/memories/nt_" + "x" * 5000),
        Attack("scope id of 300 chars", "GET", "/v1/memories?user_id=" + "u" * 300),
        Attack(
            "1001 messages", "POST", "/v1/memories", _add("size", content=[{"content": "m"}] * 1001)
        ),
    ]


def _type_attacks() -> list[Attack]:
    add, search = "/v1/memories", "/v1/search"
    wrong: list[tuple[str, str, Any]] = [
        *[(add, "content", value) for value in (5, True, None, {}, [], [1], [{"content": 5}])],
        (add, "content", [{"role": 5, "content": "x"}]),
        (add, "content", [{"content": "x", "metadata": []}]),
        *[(add, "user_id", value) for value in (5, ["a"], {}, True)],
        *[(add, "metadata", value) for value in ([], "x", 5)],
        *[(add, "occurred_at", value) for value in (5, [], "soon", "2024-13-01", "2024-02-30")],
        *[(search, "limit", value) for value in ("10", 10.5, True, -1, 10**30, 0)],
        *[(search, "filters", value) for value in ([], "x")],
        (search, "include_superseded", "yes"),
        *[(search, "query", value) for value in (5, [], {}, "   ")],
        *[("/v1/context", "budget_tokens", value) for value in (1e308, -5, "many")],
    ]
    base = {add: _add("types"), search: {"query": "x", "user_id": "types"}}
    base["/v1/context"] = base[search]
    attacks = [
        Attack(f"{path} {key}={value!r}", "POST", path, {**base[path], key: value})
        for path, key, value in wrong
    ]
    chat = "/v1/chat/completions"
    attacks += [
        Attack(f"chat {key}={value!r}", "POST", chat, {**_chat("types", "hi"), key: value})
        for key, value in [
            ("messages", "x"),
            ("messages", []),
            ("messages", [5]),
            ("messages", [{"role": 5, "content": "x"}]),
            ("messages", [{"content": "x"}]),
            ("user", 5),
            ("user", ""),
            ("stream", "yes"),
            ("model", 5),
        ]
    ]
    attacks += [
        Attack(f"patch {key}={value!r}", "PATCH", "/v1/memories/nt_x", {key: value})
        for key, value in [("text", 5), ("text", "  "), ("metadata", []), ("colour", 1)]
    ]
    attacks.append(Attack("patch with nothing", "PATCH", "/v1/memories/nt_x", {}))
    return attacks


def _text_attacks() -> list[Attack]:
    """NUL and lone surrogates, written as JSON escapes, wherever a string goes."""
    attacks = []
    for escape, label in (("\\u0000", "NUL"), ("\\ud800", "surrogate")):
        text = f'"a{escape}b"'
        for key in ("content", "user_id", "agent_id", "session_id"):
            values = {"content": '"x"', "user_id": '"text"', key: text}
            attacks.append(Attack(f"{label} in {key}", "POST", "/v1/memories", _raw(**values)))
        for message_key in ("content", "name", "role"):
            message = {"content": '"x"', message_key: text}
            inner = "{" + ", ".join(f'"{k}": {v}' for k, v in message.items()) + "}"
            body = _raw(content=f"[{inner}]", user_id='"text"')
            attacks.append(
                Attack(f"{label} in message {message_key}", "POST", "/v1/memories", body)
            )
        attacks += [
            Attack(f"{label} in query", "POST", "/v1/search", _raw(query=text, user_id='"text"')),
            Attack(f"{label} in patch", "PATCH", "/v1/memories/nt_x", _raw(text=text)),
            Attack(
                f"{label} in occurred_at",
                "POST",
                "/v1/memories",
                _raw(content='"x"', user_id='"text"', occurred_at=text),
            ),
            Attack(
                f"{label} in a chat message",
                "POST",
                "/v1/chat/completions",
                _raw(messages=f'[{{"role": "user", "content": {text}}}]', user='"text"'),
            ),
            Attack(
                f"{label} in a streamed chat message",
                "POST",
                "/v1/chat/completions",
                _raw(
                    messages=f'[{{"role": "user", "content": {text}}}]',
                    user='"text"',
                    stream="true",
                ),
            ),
            Attack(
                f"{label} in the chat user",
                "POST",
                "/v1/chat/completions",
                _raw(messages='[{"role": "user", "content": "hi"}]', user=text),
            ),
        ]
    for where in ("metadata", "filters"):
        for inner in (
            '{"k": "a\\u0000b"}',
            '{"a\\u0000b": 1}',
            '{"k": ["a\\u0000b"]}',
            '{"k": "a\\ud800b"}',
            '{"a\\ud800b": 1}',
        ):
            path = "/v1/memories" if where == "metadata" else "/v1/search"
            body = _raw(content='"x"', query='"x"', user_id='"text"', **{where: inner})
            refused = where == "metadata"  # a filter that matches nothing may be asked
            attacks.append(Attack(f"{where} {inner}", "POST", path, body, refused=refused))
    for value in ("%00", "%ED%A0%80", "%FF"):
        attacks += [
            Attack(f"id {value}", "GET", f"/v1/memories/nt_{value}"),
            Attack(f"episode id {value}", "GET", f"/v1/episodes/ep_{value}"),
            Attack(f"history id {value}", "GET", f"/v1/memories/nt_{value}/history"),
            Attack(
                f"user_id {value}",
                "GET",
                f"/v1/memories?user_id=a{value}",
                refused=value == "%00",  # the others arrive as U+FFFD: a user with no memories
            ),
        ]
    return attacks


def _cursor_attacks() -> list[Attack]:
    cursors = [
        "²",
        "١٢٣",
        "\uff11\uff12",
        "+1",
        "-1",
        " 1",
        "1e3",
        "9" * 19,
        "0x10",
        "1_000",
        "\x00",
    ]
    return [
        Attack(f"cursor {cursor!r}", "GET", f"/v1/memories?user_id=u&cursor={quote(cursor)}")
        for cursor in cursors
    ]


def _depth_attacks() -> list[Attack]:
    attacks = []
    for levels in (64, 255, 300, 1000, 5000):
        user, deep = f"deep{levels}", _deep(levels)
        shallow = levels < 300  # keeping it is fine; deeper must be refused
        scope = f'"user_id": "{user}"'
        for name, path, body, refused in [
            ("metadata", "/v1/memories", f'{{"content": "x", {scope}, "metadata": {deep}}}', True),
            ("filters", "/v1/search", f'{{"query": "x", {scope}, "filters": {deep}}}', False),
            (
                "message metadata",
                "/v1/memories",
                f'{{"content": [{{"content": "x", "metadata": {deep}}}], {scope}}}',
                True,
            ),
            (
                "chat content",
                "/v1/chat/completions",
                f'{{"messages": [{{"role": "user", "content": [{deep}]}}], "user": "{user}"}}',
                False,
            ),
        ]:
            attacks.append(
                Attack(
                    f"{name} {levels} deep",
                    "POST",
                    path,
                    body.encode(),
                    refused=refused and not shallow,
                    user=user,
                )
            )
    lists = b'{"content": "x", "user_id": "u", "metadata": ' + b"[" * 20_000 + b"]" * 20_000
    attacks.append(Attack("metadata of lists 20000 deep", "POST", "/v1/memories", lists + b"}"))
    return attacks


def _query_attacks() -> list[Attack]:
    many = " ".join(f"word{i}" for i in range(600))
    most = " ".join(f"w{i}" for i in range(1500))
    odd = [
        '"unbalanced',
        "AND OR NOT",
        "NEAR(a b)",
        "*",
        "^a",
        "a:b",
        "'; DROP TABLE notes; --",
        "\\",
        "%_",
        "\u200b",
        "🙂" * 50,
        "a" * 5000,
    ]
    attacks = []
    for query in [many, most, *odd]:
        for path in ("/v1/search", "/v1/context"):
            label = f"{path} {query[:24]!r} ({len(query.split())} words)"
            attacks.append(
                Attack(label, "POST", path, {"query": query, "user_id": "victim"}, refused=False)
            )
    return attacks


def _date_attacks() -> list[Attack]:
    times = [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:30:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:59.999999Z",
        "0001-01-01",
        "9999-12-31",
        "0001-01-01T00:00:00Z",
    ]
    said = [
        "yesterday I was born",
        "next month I move",
        "tomorrow is the day",
        "last year was good",
        "in two weeks I leave",
        "next year on March 3",
    ]
    attacks = [
        Attack(
            f"occurred_at {when} {text!r}",
            "POST",
            "/v1/memories",
            _add("dates", content=text, occurred_at=when),
            refused=False,
            user="dates",
        )
        for when in times
        for text in said
    ]
    attacks += [
        Attack(f"occurred_at {when!r}", "POST", "/v1/memories", _add("dates", occurred_at=when))
        for when in (
            "10000-01-01",
            "0000-01-01",
            "-0001-01-01",
            "9999-12-31T24:00:00Z",
            "2024-01-01T12:99:00Z",
        )
    ]
    for query in (
        "what happened on 9999-12-31",
        "on 0001-01-01",
        "in the year 9999",
        "next month",
        "10000-01-01",
    ):
        for path in ("/v1/search", "/v1/context"):
            attacks.append(
                Attack(
                    f"{path} {query!r}",
                    "POST",
                    path,
                    {"query": query, "user_id": "dates"},
                    refused=False,
                    user="dates",
                )
            )
    return attacks


def _wire_attacks() -> list[Attack]:
    json_type = {"Content-Type": "application/json"}
    bodies = [
        b'{"content": "x", "user_id": "u"',
        b'{"content": NaN, "user_id": "u"}',
        b"Infinity",
        b"\xef\xbb\xbf{}",
        b"",
        b"null",
        b"[]",
        b'"x"',
        b"\xff\xfe",
        b'{"content": "x", "user_id": "u"} trailing',
    ]
    attacks = [Attack(f"body {raw!r}", "POST", "/v1/memories", raw, json_type) for raw in bodies]
    attacks += [
        Attack(
            "search limit NaN",
            "POST",
            "/v1/search",
            b'{"query": "x", "user_id": "u", "limit": NaN}',
            json_type,
        ),
        Attack(
            "chat temperature NaN",
            "POST",
            "/v1/chat/completions",
            _raw(messages='[{"role": "user", "content": "hi"}]', user='"u"', temperature="NaN"),
        ),
        Attack(
            "form post",
            "POST",
            "/v1/memories",
            b"content=x&user_id=u",
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        Attack(
            "text/plain post",
            "POST",
            "/v1/memories",
            b'{"content": "x", "user_id": "u"}',
            {"Content-Type": "text/plain"},
        ),
        Attack(
            "chat user header of 300",
            "POST",
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}]},
            {"X-Remem-User": "u" * 300},
        ),
    ]
    attacks += [
        Attack(f"{method} {path}", method, path)
        for method, path in [
            ("PUT", "/v1/memories"),
            ("TRACE", "/v1/search"),
            ("PATCH", "/healthz"),
            ("DELETE", "/v1/export"),
            ("PUT", "/v1/chat/completions"),
            ("POST", "/v1/memories/nt_x/history"),
        ]
    ]
    attacks += [
        Attack(f"path {path}", "GET", path)
        for path in [
            "/v1/memories/..",
            "/v1/memories/%2e%2e/history",
            "/v1/episodes/" + "9" * 100,
            "/v1/memories/🙂",
            "/v1/nowhere",
        ]
    ]
    return attacks


ATTACKS = {
    "host": _host_attacks(),
    "origin": _origin_attacks(),
    "size": _size_attacks(),
    "types": _type_attacks(),
    "text": _text_attacks(),
    "cursor": _cursor_attacks(),
    "depth": _depth_attacks(),
    "query": _query_attacks(),
    "date": _date_attacks(),
    "wire": _wire_attacks(),
}
CASES = [attack for group in ATTACKS.values() for attack in group]


@dataclass
class Target:
    url: str
    upstream: ScriptedTransport
    store: str


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    with _location(request.param, tmp_path_factory.mktemp("hostile")) as location:
        model = ScriptedTransport()
        with Memory(location, embedder=HashEmbedder()) as memory:
            upstream = Upstream(model.base_url, model="m", transport=model)
            with running(create_app(memory, max_body_bytes=LIMIT, upstream=upstream)) as url:
                yield Target(url, model, request.param)


@pytest.mark.parametrize("attack", CASES, ids=[attack.name for attack in CASES])
def test_a_hostile_request_gets_a_json_4xx_and_the_memory_still_reads(
    target: Target, attack: Attack
) -> None:
    asked = len(target.upstream.chat_requests())
    answer = _send(target.url, attack)
    assert answer.status_code < 500, f"{answer.status_code}: {answer.text[:300]}"
    if attack.refused:
        assert 400 <= answer.status_code < 500, (
            f"accepted: {answer.status_code} {answer.text[:200]}"
        )
    if answer.status_code >= 400:
        assert answer.json()["error"]["message"], answer.text
        if attack.path.startswith("/v1/chat"):
            assert len(target.upstream.chat_requests()) == asked, "the model was asked anyway"
    if answer.status_code == 405:
        assert answer.headers["allow"]
    _still_reads(target.url, attack.user)


def _send(url: str, attack: Attack) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=30) as client:
        if isinstance(attack.body, bytes):
            headers = {"Content-Type": "application/json", **attack.headers}
            return client.request(attack.method, attack.path, content=attack.body, headers=headers)
        return client.request(attack.method, attack.path, json=attack.body, headers=attack.headers)


def _still_reads(url: str, user: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for answer in (
            client.get("/v1/memories", params={"user_id": user}),
            client.post("/v1/search", json={"query": "hostile input", "user_id": user}),
            client.post("/v1/context", json={"query": "hostile input", "user_id": user}),
        ):
            assert answer.status_code == 200, f"reads of {user} broke: {answer.text[:300]}"


class _location:
    """A SQLite file, or a fresh PostgreSQL schema (skipped without REMEM_TEST_POSTGRES)."""

    def __init__(self, store: str, folder: Path) -> None:
        self.store, self.folder, self.schema = store, folder, f"test_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> str:
        if self.store == "sqlite":
            return str(self.folder / "memory.db")
        url = os.environ.get("REMEM_TEST_POSTGRES")
        if not url:
            if os.environ.get("REMEM_REQUIRE_POSTGRES"):
                pytest.fail("PostgreSQL is required here but REMEM_TEST_POSTGRES is not set")
            pytest.skip("set REMEM_TEST_POSTGRES to test PostgreSQL")
        self._admin(f"CREATE SCHEMA {self.schema}")
        return f"{url}?options={quote(f'-c search_path={self.schema},public')}"

    def __exit__(self, *exc: object) -> None:
        if self.store == "postgres":
            self._admin(f"DROP SCHEMA {self.schema} CASCADE")

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(os.environ["REMEM_TEST_POSTGRES"], autocommit=True) as admin:
            admin.execute(statement)


def test_the_corpus_covers_every_class() -> None:
    assert all(ATTACKS.values()) and len(CASES) > 300
    assert len({attack.name for attack in CASES}) == len(CASES)  # ids are unique


BAD_KEYS: list[str | bytes] = [
    "",
    "Bearer",
    "Bearer rk_nope",
    "Basic YWRtaW46YWRtaW4=",
    "Bearer " + "k" * 10_000,
    b"Bearer rk_\xe9\xff",
]


def test_a_server_with_keys_answers_every_bad_key_with_a_json_401(memory: Memory) -> None:
    _, secret = create_key(memory.store, "acme")
    with running(create_app(memory)) as url, httpx.Client(base_url=url) as client:
        for key in BAD_KEYS:
            answer = client.get("/v1/memories", headers={"Authorization": key} if key else {})
            assert answer.status_code == 401 and answer.json()["error"]["message"], key
        host = {"Host": "evil.example", "Authorization": f"Bearer {secret}"}
        assert client.get("/v1/memories", headers=host).status_code == 200  # the key decides


def test_a_declared_length_over_the_limit_is_refused_before_the_body(memory: Memory) -> None:
    with running(create_app(memory, max_body_bytes=LIMIT)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(
                b"POST /v1/memories HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 999999999999\r\n\r\n{"
            )
            answer = b""
            while not answer.endswith(b"}"):  # the whole JSON error, however it arrives
                chunk = connection.recv(65536)
                assert chunk, answer
                answer += chunk
    head, _, body = answer.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413") and json.loads(body)["error"]["type"] == "BodyTooLarge"
