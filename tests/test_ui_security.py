"""The web UI under attack: forged forms, foreign hosts and origins, stolen or revoked
sessions, other tenants' ids, open redirects, and memory text that tries to be markup."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from remem import Memory
from remem.keys import create_key, revoke_key
from remem.server.app import create_app
from remem.server.ui.access import COOKIE, MAX_SESSIONS, Sessions

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LOCAL = "http://127.0.0.1:8765"
PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def local(memory: Memory) -> Iterator[TestClient]:
    """A keyless loopback server: the local user."""
    with TestClient(create_app(memory), base_url=LOCAL, follow_redirects=False) as client:
        yield client


@pytest.fixture
def keyed(memory: Memory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A server with keys for tenants a and b; a has one memory."""
    secrets = {name: create_key(memory.store, name)[1] for name in ("a", "b")}
    memory.as_tenant("a").add("a's secret: the boat is called Gaivota", user_id="ana")
    with TestClient(create_app(memory), base_url=LOCAL, follow_redirects=False) as client:
        yield client, secrets


def token(client: TestClient, path: str = "/add") -> str:
    found = CSRF.search(client.get(path).text)
    assert found is not None
    return found.group(1)


def sign_in(client: TestClient, secret: str) -> None:
    client.cookies.clear()
    answer = client.post("/signin", data={"csrf": token(client, "/signin"), "key": secret})
    assert answer.status_code == 303, answer.text


def test_a_post_needs_this_sessions_csrf_token(memory: Memory, local: TestClient) -> None:
    note_id = memory.add("keep me", user_id="ana").note_ids[0]
    good = token(local)
    for data in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": good + "0"}):
        answer = local.post(f"/memories/{note_id}/forget", data=data)
        assert answer.status_code == 403 and "did not come from this page" in answer.text
    other = TestClient(local.app, base_url=LOCAL)
    other_token = token(other)  # a valid token, of another browser's session
    assert local.post(f"/memories/{note_id}/forget", data={"csrf": other_token}).status_code == 403
    assert memory.get(note_id).deleted_at is None
    assert local.post(f"/memories/{note_id}/forget", data={"csrf": good}).status_code == 303
    header = local.post("/add", headers={"X-CSRF-Token": good}, data={"text": "t", "user": "a"})
    assert header.status_code == 303  # htmx sends the token as a header


def test_a_keyless_server_answers_only_loopback_hosts_and_origins(
    memory: Memory, local: TestClient
) -> None:
    assert local.get("/", headers={"Host": "evil.example"}).status_code == 421
    assert local.get("/", headers={"Host": "localhost:8765"}).status_code == 200
    good = token(local)
    refused = local.post(
        "/add",
        data={"csrf": good, "text": "from a web page", "user": "ana"},
        headers={"Origin": "http://evil.example"},
    )
    assert refused.status_code == 403 and memory.list().items == ()


def test_the_session_cookie_is_httponly_strict_and_holds_no_key(
    keyed: tuple[TestClient, dict[str, str]],
) -> None:
    client, secrets = keyed
    sign_in(client, secrets["a"])
    header = client.get("/").headers.get("set-cookie") or ""
    answer = client.post("/signin", data={"csrf": token(client, "/signin"), "key": secrets["a"]})
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert secrets["a"] not in cookie and secrets["a"][3:] not in cookie and header == ""


def test_without_a_session_a_keyed_server_asks_to_sign_in(
    keyed: tuple[TestClient, dict[str, str]],
) -> None:
    client, secrets = keyed
    answer = client.get("/timeline?by=week")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=%2Ftimeline%3Fby%3Dweek"
    assert client.post("/add", data={"text": "x"}).status_code == 401
    bad = client.post("/signin", data={"csrf": token(client, "/signin"), "key": "rk_guess"})
    assert bad.status_code == 401 and "not valid" in bad.text
    assert client.post("/signin", data={"key": secrets["a"]}).status_code == 403  # no token
    assert client.get("/", headers={"Authorization": f"Bearer {secrets['a']}"}).status_code == 303


def test_after_sign_in_only_a_path_on_this_site_is_followed(
    keyed: tuple[TestClient, dict[str, str]],
) -> None:
    client, secrets = keyed
    for target, expected in (
        ("/timeline", "/timeline"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
    ):
        client.cookies.clear()
        data = {"csrf": token(client, "/signin"), "key": secrets["a"], "next": target}
        assert client.post("/signin", data=data).headers["location"] == expected


def test_a_tenant_sees_and_changes_only_its_own_memories(
    memory: Memory, keyed: tuple[TestClient, dict[str, str]]
) -> None:
    client, secrets = keyed
    a_note = memory.as_tenant("a").list().items[0].id
    sign_in(client, secrets["b"])
    assert "Gaivota" not in client.get("/").text
    assert "Gaivota" not in client.get("/?q=secret+boat&user=ana").text
    assert "Gaivota" not in client.get("/context?q=boat&user=ana").text
    assert "Gaivota" not in client.get("/timeline").text
    a_episode = memory.as_tenant("a").get(a_note).episode_ids[0]
    for path in (f"/memories/{a_note}", f"/graph?id={a_note}", f"/episodes/{a_episode}"):
        assert client.get(path).status_code == 404
    csrf = token(client)
    for action in ("forget", "edit", "purge"):
        data = {"csrf": csrf, "text": "b was here", "expected_version": "1", "confirm": "purge"}
        assert client.post(f"/memories/{a_note}/{action}", data=data).status_code == 404
    assert memory.as_tenant("a").get(a_note).text == "a's secret: the boat is called Gaivota"
    client.post("/add", data={"csrf": csrf, "text": "b's own note", "user": "ana"})
    assert [n.text for n in memory.as_tenant("b").list().items] == ["b's own note"]
    health = client.get("/health").text
    assert "What the store holds" not in health  # store-wide figures: the local user only
    assert client.post("/health/retry", data={"csrf": csrf}).status_code == 403
    memory.as_tenant("a").delete(a_note)  # even its fate stays a's own
    assert "forgotten" not in client.get(f"/memories/{a_note}").text


def test_a_revoked_key_ends_its_sessions_at_once(
    memory: Memory, keyed: tuple[TestClient, dict[str, str]]
) -> None:
    client, secrets = keyed
    sign_in(client, secrets["a"])
    assert client.get("/").status_code == 200
    key = next(k for k in memory.store.list_keys() if k.tenant == "a")
    revoke_key(memory.store, key.id)
    assert client.get("/").status_code == 303


def test_signing_out_ends_the_session(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, secrets = keyed
    sign_in(client, secrets["a"])
    session = client.cookies[COOKIE]
    csrf = token(client)
    assert client.post("/signout", data={"csrf": "nope"}).status_code == 403
    assert client.post("/signout", data={"csrf": csrf}).status_code == 303
    client.cookies.set(COOKIE, session)  # the old cookie, replayed
    assert client.get("/").status_code == 303


def test_memory_text_is_escaped_on_every_page(memory: Memory, local: TestClient) -> None:
    note_id = memory.add(PAYLOAD, user_id="ana", session_id=PAYLOAD).note_ids[0]
    memory.update(note_id, metadata={PAYLOAD: PAYLOAD})
    for path in (
        "/",
        "/?q=script+alert&user=ana",
        f"/memories/{note_id}",
        "/timeline",
        "/context?q=script+alert&user=ana",
        f"/graph?id={note_id}",
    ):
        page = local.get(path).text
        assert "<script>alert" not in page and "<img src=x" not in page, path
        assert "alert" in page, path  # the text is there, as text
    assert PAYLOAD not in local.get("/add", params={"user": PAYLOAD}).text


def test_pages_forbid_inline_scripts_and_framing(local: TestClient) -> None:
    answer = local.get("/")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";")[0]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in answer.text  # every script is a file of this site


def test_sessions_are_bounded_and_expire() -> None:
    sessions = Sessions()
    first = sessions.start("a", None)
    for _ in range(MAX_SESSIONS):
        sessions.start("a", None)
    assert sessions.find(first.id) is None  # the oldest went first
    assert sessions.find("") is None and sessions.find(None) is None
    newest = sessions.start("b", "digest")
    assert sessions.csrf_ok(newest, sessions.csrf_token(newest))
    assert not sessions.csrf_ok(newest, sessions.csrf_token(first))
    assert not sessions.csrf_ok(newest, None)


@pytest.mark.parametrize(
    "path",
    [
        "/?user=%00",
        "/?user=" + "u" * 5000,
        "/?q=%00&user=ana",
        "/?q=" + "word " * 2000 + "&user=ana",
        "/?cursor=%C2%B2%C2%B2.1",
        "/?cursor=999999999999999999999.1",
        "/?before=%00",
        "/memories/%00",
        "/episodes/%00",
        "/episodes/nt_not_an_episode",
        "/memories/" + "x" * 3000,
        "/memories/..%2F..%2Fetc%2Fpasswd",
        "/context?q=%F0%9F%90%88&user=ana&budget=-5&recent=abc&memories=999999",
        "/context?q=" + "x" * 20000 + "&user=ana",
        "/timeline?by=%00&cursor=nope",
        "/graph?id=%00",
        "/graph?topic=%00&user=ana",
        "/profile?user=%00",
        "/profile?user=" + "\u202e" * 10,
    ],
)
def test_odd_requests_get_a_page_never_a_crash(
    memory: Memory, local: TestClient, path: str
) -> None:
    memory.add("something to list", user_id="ana")
    answer = local.get(path)
    assert answer.status_code < 500, answer.text[:500]
    assert answer.headers["content-type"].startswith("text/html")


def test_odd_forms_get_a_page_never_a_crash(memory: Memory, local: TestClient) -> None:
    note_id = memory.add("edit me", user_id="ana").note_ids[0]
    csrf = token(local)
    for path, data in (
        (f"/memories/{note_id}/edit", {"text": "x\x00y", "expected_version": "1"}),
        (f"/memories/{note_id}/edit", {"text": "new", "expected_version": "many"}),
        (f"/memories/{note_id}/edit", {"text": "new", "expected_version": "-1"}),
        (f"/memories/{note_id}/edit", {"text": "new", "metadata": '{"a": NaN}'}),
        ("/add", {"text": "\x00", "user": "ana"}),
        ("/add", {"text": "x", "user": "a" * 10_000}),
        ("/add", {"text": "x", "user": "ana", "occurred_at": "9999-99-99"}),
        ("/add", {"text": "x", "user": "ana", "metadata": "[]"}),
        ("/profile/correct", {"slot": "home", "value": "", "user": "ana"}),
        ("/profile/correct", {"slot": "home", "value": "Lisbon"}),
    ):
        answer = local.post(path, data={"csrf": csrf, **data})
        assert 400 <= answer.status_code < 500, (path, data, answer.status_code)
        assert answer.headers["content-type"].startswith("text/html")
    assert memory.get(note_id).text == "edit me"
    assert [note.text for note in memory.list().items] == ["edit me"]


def test_anonymous_sessions_never_push_out_a_signed_in_one() -> None:
    sessions = Sessions(limit=3)
    signed_in = sessions.start("acme", "digest")
    for _ in range(10):  # anyone can ask for the sign-in page this often
        sessions.start(None, None)
    assert sessions.find(signed_in.id) is not None


def test_sessions_no_browser_came_back_with_never_push_out_the_local_user_s() -> None:
    """On a keyless server every session is anonymous: another site's images asking our
    pages make sessions that no browser comes back with, and those go first."""
    sessions = Sessions(limit=3)
    local = sessions.start(None, None)
    assert sessions.find(local.id) is not None  # the page's own requests come back with it
    for _ in range(10):  # another site, asking again and again
        sessions.start(None, None)
    assert sessions.find(local.id) is not None


def test_metadata_nested_past_the_decoder_is_a_clear_refusal(memory: Memory) -> None:
    note_id = memory.add("A note.", user_id="u").note_ids[0]
    deep = "[" * 50_000 + "]" * 50_000
    with TestClient(create_app(memory), base_url=LOCAL, follow_redirects=False) as client:
        page = client.get("/add").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None
        added = client.post(
            "/add", data={"csrf": token.group(1), "text": "x", "user": "u", "metadata": deep}
        )
        assert added.status_code < 500 and "nested too deeply" in added.text
        found = client.get(
            "/", params={"q": "x", "user": "u", "meta": "a=" + "[" * 3000 + "]" * 3000}
        )
        assert found.status_code < 500 and "nested too deeply" in found.text
        assert client.get(f"/memories/{note_id}").status_code == 200


def test_the_profile_of_someone_unknown_is_a_page_not_a_404(memory: Memory) -> None:
    memory.add("I live in Porto.", user_id="u")
    with TestClient(create_app(memory), base_url=LOCAL) as client:
        page = client.get("/profile", params={"user": "nobody"})
        assert page.status_code == 200 and "There is no page here" not in page.text
        assert 'name="user"' in page.text  # the form to pick someone else is there
