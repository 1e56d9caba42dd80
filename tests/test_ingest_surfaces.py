"""Ingest through every door: `POST /v1/ingest` over real HTTP with tenant keys, `remem
ingest` end to end, and, with a (scripted) model, organising inline or left for later."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from remem import Memory
from remem.cli.main import cli
from remem.keys import create_key
from remem.llms import OpenAICompatibleLLM
from remem.server.app import create_app
from remem.testing import HashEmbedder, ScriptedOpenAIServer
from remem.testing.http import running

CHAT = "12/31/23, 9:41 PM - Ada: I adopted a cat named Miso\n12/31/23, 9:42 PM - Bo: Cute!\n"


@pytest.fixture
def server(memory: Memory) -> Iterator[str]:
    with running(create_app(memory, max_body_bytes=256_000)) as url:
        yield url


def test_rest_upload_is_tenant_scoped(memory: Memory, server: str) -> None:
    _, acme = create_key(memory.store, "acme")
    _, umbrella = create_key(memory.store, "umbrella")
    files = [
        ("files", ("../../etc/WhatsApp Chat.txt", CHAT.encode(), "text/plain")),
        ("files", ("notes.md", b"# Pets\n\nMiso sleeps all day.", "text/markdown")),
        ("files", ("photo.jpg", b"\xff\xd8\xff\x00\x00binary", "image/jpeg")),
    ]
    form = {"user_id": "ada", "me": "Ada"}
    with httpx.Client(base_url=server, timeout=30) as client:
        answer = client.post("/v1/ingest", files=files, data=form, headers=_bearer(acme))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["files"], body["added"]) == (2, 3)
        assert body["skipped"] == [["photo.jpg", "a binary file"]]
        again = client.post("/v1/ingest", files=files, data=form, headers=_bearer(acme))
        assert (again.json()["added"], again.json()["unchanged"]) == (0, 3)
        nobody = client.post("/v1/ingest", files=files, data={"user_id": "ada"})
        assert nobody.status_code == 401
        no_owner = client.post("/v1/ingest", files=files, headers=_bearer(acme))
        assert no_owner.status_code == 422 and "owner" in no_owner.text
        seen = client.get("/v1/memories", params={"user_id": "ada"}, headers=_bearer(umbrella))
        assert seen.json()["items"] == []
        listed = client.get("/v1/memories", params={"user_id": "ada"}, headers=_bearer(acme))
        paths = {note["metadata"]["path"] for note in listed.json()["items"]}
        # the name sent, cleaned: never a path out of nowhere (`..`, absolute)
        assert paths == {"etc/WhatsApp Chat.txt", "notes.md"}
        big = [("files", ("big.txt", b"word " * 60_000, "text/plain"))]
        assert client.post("/v1/ingest", files=big, data=form).status_code in (401, 413)
        document = client.get("/openapi.json").json()
        assert (
            "multipart/form-data"
            in document["paths"]["/v1/ingest"]["post"]["requestBody"]["content"]
        )


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_cli_ingest_end_to_end(tmp_path: Path) -> None:
    env = {"REMEM_DB": str(tmp_path / "cli.db"), "REMEM_EMBEDDER": "hash", "REMEM_CONFIG": ""}
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "chat.txt").write_text(CHAT)
    (folder / "broken.json").write_text("[{")
    runner = CliRunner()
    first = runner.invoke(cli, ["ingest", str(folder), "--user", "ada", "--me", "Ada"], env=env)
    assert first.exit_code == 0, first.output
    assert "1 file(s): 2 added, 0 updated, 0 unchanged, 0 removed" in first.output
    assert "skipped broken.json: not valid JSON" in first.output
    again = runner.invoke(
        cli, ["ingest", str(folder), "--user", "ada", "--me", "Ada", "--json"], env=env
    )
    assert again.exit_code == 0, again.output
    result = json.loads(again.stdout)
    assert (result["added"], result["unchanged"]) == (0, 2)
    listed = runner.invoke(cli, ["list", "--user", "ada", "--json"], env=env)
    items = json.loads(listed.stdout)["items"]
    roles = {(item["text"], item["metadata"]["source"]) for item in items}
    assert roles == {("I adopted a cat named Miso", "whatsapp"), ("Cute!", "whatsapp")}
    no_owner = runner.invoke(cli, ["ingest", str(folder)], env=env)
    assert no_owner.exit_code == 2 and "--user" in no_owner.output
    nothing = runner.invoke(cli, ["ingest", str(folder / "broken.json"), "--user", "a"], env=env)
    assert nothing.exit_code == 1


def _model(server: ScriptedOpenAIServer) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(server.base_url, "scripted", timeout=5.0, backoff=0.01)


def _script(server: ScriptedOpenAIServer) -> None:
    fact = {"facts": [{"text": "Ada has a cat named Miso.", "occurred_on": None}]}
    server.reply(json.dumps(fact), when='"name": "extract"', times=None)
    server.reply('{"decisions": []}', when='"name": "reconcile"', times=None)
    server.reply('{"notes": []}', when='"name": "enrich"', times=None)
    server.reply('{"links": []}', when='"name": "link"', times=None)
    server.reply('{"updates": []}', when='"name": "evolve"', times=None)


def test_with_a_model_ingest_organises_now_or_later(location: str, tmp_path: Path) -> None:
    chat = tmp_path / "chat.txt"
    chat.write_text(CHAT)
    with ScriptedOpenAIServer() as server:
        _script(server)
        with Memory(location, embedder=HashEmbedder(), llm=_model(server)) as memory:
            later = memory.ingest(chat, user_id="later", me="Ada", organise="later")
            assert later.added == 2
            kinds = [n.kind for n in memory.list(user_id="later").items]
            assert kinds == ["turn", "turn"]  # queued, not run
            pending = [job for job in memory.store.jobs("pending") if job.kind == "organise"]
            assert len(pending) == 1
            assert memory.run_jobs() >= 1  # what `remem worker` does
            facts = [n.text for n in memory.list(user_id="later").items if n.kind == "fact"]
            assert facts == ["Ada has a cat named Miso."]
            memory.ingest(chat, user_id="now", me="Ada")
            facts = [n.text for n in memory.list(user_id="now").items if n.kind == "fact"]
            assert facts == ["Ada has a cat named Miso."]
            assert memory.ingest(chat, user_id="now", me="Ada").added == 0
            assert not [j for j in memory.store.jobs("pending") if j.kind == "organise"]
