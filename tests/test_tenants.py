"""A tenant never sees another tenant's records, through any method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remem import InvalidInputError, Memory, NotFoundError
from remem.keys import authenticate, create_key, revoke_key


@pytest.fixture
def two_tenants(memory: Memory) -> tuple[Memory, Memory, str, str]:
    acme, umbrella = memory.as_tenant("acme"), memory.as_tenant("umbrella")
    acme_note = acme.add("the launch code is tulip", user_id="ana").note_ids[0]
    umbrella_note = umbrella.add("the launch code is orchid", user_id="ana").note_ids[0]
    return acme, umbrella, acme_note, umbrella_note


def test_search_list_and_context_see_one_tenant(two_tenants: tuple[Memory, Memory, str, str]):
    acme, umbrella, acme_note, umbrella_note = two_tenants
    assert [hit.id for hit in acme.search("launch code", user_id="ana")] == [acme_note]
    assert [note.id for note in umbrella.list().items] == [umbrella_note]
    context = acme.context("launch code", user_id="ana")
    assert "tulip" in context.text and "orchid" not in context.text


def test_ids_of_another_tenant_are_not_found(two_tenants: tuple[Memory, Memory, str, str]):
    acme, umbrella, acme_note, _ = two_tenants
    episode = acme.get(acme_note).episode_ids[0]
    for attempt in (
        lambda: umbrella.get(acme_note),
        lambda: umbrella.episode(episode),
        lambda: umbrella.history(acme_note),
        lambda: umbrella.update(acme_note, text="overwritten"),
        lambda: umbrella.delete(acme_note),
        lambda: umbrella.delete(episode),
    ):
        with pytest.raises(NotFoundError):
            attempt()
    assert acme.get(acme_note).text == "the launch code is tulip"


def test_delete_all_stays_inside_the_tenant(two_tenants: tuple[Memory, Memory, str, str]):
    acme, umbrella, _, umbrella_note = two_tenants
    assert acme.delete_all(user_id="ana") == 1
    assert umbrella.get(umbrella_note).text == "the launch code is orchid"


def test_export_holds_only_the_tenant(two_tenants: tuple[Memory, Memory, str, str], tmp_path: Path):
    acme, _, _, _ = two_tenants
    acme.export(tmp_path / "acme.jsonl")
    text = (tmp_path / "acme.jsonl").read_text()
    assert "tulip" in text and "orchid" not in text
    scopes = [json.loads(line).get("scope") for line in text.splitlines()[1:]]
    assert {scope["tenant"] for scope in scopes if scope} == {"acme"}


def test_local_use_is_its_own_tenant(memory: Memory, two_tenants: tuple[Memory, Memory, str, str]):
    assert memory.search("launch code", user_id="ana") == []
    assert memory.list().items == ()


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "ümlaut", None])
def test_bad_tenant_names_are_refused(memory: Memory, name: object) -> None:
    with pytest.raises(InvalidInputError, match="tenant"):
        memory.as_tenant(name)  # type: ignore[arg-type]


def test_keys_authenticate_until_revoked(memory: Memory) -> None:
    key, secret = create_key(memory.store, "acme", "ci")
    assert secret.startswith("rk_") and secret not in repr(memory.store.list_keys())
    found = authenticate(memory.store, secret)
    assert found is not None and found.tenant == "acme" and found.id == key.id
    assert authenticate(memory.store, secret + "x") is None
    revoke_key(memory.store, key.id)
    assert authenticate(memory.store, secret) is None
    assert memory.store.list_keys()[0].revoked_at is not None
    with pytest.raises(NotFoundError):
        revoke_key(memory.store, "key_missing")
