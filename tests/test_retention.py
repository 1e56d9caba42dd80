"""A default expiry per scope: notes added to the scope afterwards expire that long after
being added, unless the add gives its own; the most specific scope's default wins. On every
store, through Python, REST (real HTTP on 127.0.0.1) and the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from remem import InvalidInputError, Memory, ScopeRequiredError, clock
from remem.cli.main import cli
from remem.keys import create_key
from remem.server.app import create_app
from remem.testing import HashEmbedder
from remem.testing.http import running

DAY = timedelta(days=1)


def _expiry(memory: Memory, **scope: Any) -> timedelta | None:
    """How long after now a note added to the scope expires (None: never)."""
    before = clock.now()
    note = memory.get(memory.add("I park on level 3", **scope).note_ids[0])
    return None if note.expires_at is None else note.expires_at - before


def _about(after: timedelta | None, expected: timedelta) -> bool:
    return after is not None and abs(after - expected) < timedelta(seconds=30)


def test_notes_added_after_a_default_is_set_expire_that_long_after(memory: Memory) -> None:
    kept = memory.add("I park on level 2", user_id="ana").note_ids[0]
    memory.set_default_expiry(30 * DAY, user_id="ana")
    assert _about(_expiry(memory, user_id="ana"), 30 * DAY)
    assert memory.get(kept).expires_at is None  # added before: unchanged
    own = memory.add("Gate code 1234", user_id="ana", expires_at="2999-01-01").note_ids[0]
    assert memory.get(own).expires_at is not None and memory.get(own).expires_at.year == 2999
    assert _expiry(memory, user_id="bo") is None  # another owner


def test_the_most_specific_default_wins_and_none_clears_it(memory: Memory) -> None:
    memory.set_default_expiry(30 * DAY, user_id="ana")
    memory.set_default_expiry(3600, user_id="ana", session_id="support")
    assert _about(_expiry(memory, user_id="ana", session_id="support"), timedelta(hours=1))
    # the user's default covers their other sessions
    assert _about(_expiry(memory, user_id="ana", session_id="chat"), 30 * DAY)
    memory.set_default_expiry(None, user_id="ana", session_id="support")
    assert _about(_expiry(memory, user_id="ana", session_id="support"), 30 * DAY)
    memory.set_default_expiry(None, user_id="ana")
    assert _expiry(memory, user_id="ana", session_id="support") is None


def test_defaults_belong_to_their_tenant(memory: Memory) -> None:
    acme, umbrella = memory.as_tenant("acme"), memory.as_tenant("umbrella")
    acme.set_default_expiry(DAY, user_id="ana")
    assert _expiry(acme, user_id="ana") is not None
    assert _expiry(umbrella, user_id="ana") is None
    assert _expiry(memory, user_id="ana") is None


@pytest.mark.parametrize(
    "bad", [0, -5, float("nan"), float("inf"), True, "30d", timedelta(days=-1), 10**12]
)
def test_a_bad_duration_is_refused(memory: Memory, bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="after"):
        memory.set_default_expiry(bad, user_id="ana")


def test_a_default_needs_a_scope(memory: Memory) -> None:
    with pytest.raises(ScopeRequiredError):
        memory.set_default_expiry(DAY)


def test_rest_sets_and_clears_a_default_for_the_callers_tenant(memory: Memory) -> None:
    _, secret = create_key(memory.store, "acme")
    with running(create_app(memory, open_without_keys=False)) as url:
        headers = {"Authorization": f"Bearer {secret}"}
        body = {"user_id": "ana", "after_seconds": 7200}
        done = httpx.put(f"{url}/v1/default-expiry", json=body, headers=headers)
        assert done.status_code == 204, done.text
        assert _about(_expiry(memory.as_tenant("acme"), user_id="ana"), timedelta(hours=2))
        assert _expiry(memory, user_id="ana") is None  # the local tenant is another one
        for bad in ({"user_id": "ana", "after_seconds": -1}, {"after_seconds": 60}, {"x": 1}):
            refused = httpx.put(f"{url}/v1/default-expiry", json=bad, headers=headers)
            assert refused.status_code in (400, 422), (bad, refused.text)
        cleared = {"user_id": "ana", "after_seconds": None}
        assert httpx.put(f"{url}/v1/default-expiry", json=cleared, headers=headers).is_success
        assert _expiry(memory.as_tenant("acme"), user_id="ana") is None


def test_cli_default_expiry(tmp_path: Path) -> None:
    db = str(tmp_path / "memory.db")
    runner = CliRunner()
    env = {"REMEM_EMBEDDER": "hash"}
    done = runner.invoke(cli, ["--db", db, "default-expiry", "12h", "--user", "ana"], env=env)
    assert done.exit_code == 0, done.output
    with Memory(db, embedder=HashEmbedder()) as memory:
        assert _about(_expiry(memory, user_id="ana"), timedelta(hours=12))
    bad = runner.invoke(cli, ["--db", db, "default-expiry", "soon", "--user", "ana"], env=env)
    assert bad.exit_code != 0 and "soon" in bad.output
    never = runner.invoke(cli, ["--db", db, "default-expiry", "never", "--user", "ana"], env=env)
    assert never.exit_code == 0 and "no default expiry" in never.output


def test_cli_default_expiry_json(tmp_path: Path) -> None:
    db = str(tmp_path / "memory.db")
    args = ["--db", db, "default-expiry", "2h", "--user", "ana", "--json"]
    done = CliRunner().invoke(cli, args, env={"REMEM_EMBEDDER": "hash"})
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["after_seconds"] == 7200
