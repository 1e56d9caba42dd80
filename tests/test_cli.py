"""Every command has help and runs, against a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from remem.cli.main import cli


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {"REMEM_DB": str(tmp_path / "cli.db"), "REMEM_EMBEDDER": "hash", "REMEM_CONFIG": ""}

    def invoke(*args: str, input: str | None = None, ok: bool = True) -> Result:
        result = CliRunner().invoke(cli, list(args), env=env, input=input)
        if ok:
            assert result.exit_code == 0, result.output + repr(result.exception)
        return result

    return invoke


def _commands() -> list[str]:
    return sorted(cli.commands)


def test_every_command_has_help(run) -> None:  # type: ignore[no-untyped-def]
    assert set(_commands()) >= {
        "add",
        "search",
        "list",
        "show",
        "history",
        "forget",
        "export",
        "import",
        "demo",
    }
    for path, command in _every_command():
        assert command.help, f"{path} has no help text"
        assert "Usage:" in run(*path, "--help").output
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts} has no help"


def _every_command() -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name in _commands():
        command = cli.commands[name]
        found.append(((name,), command))
        if isinstance(command, click.Group):
            found += [((name, sub), command.commands[sub]) for sub in sorted(command.commands)]
    return found


def test_add_search_show_history_forget(run) -> None:  # type: ignore[no-untyped-def]
    added = json.loads(
        run(
            "add",
            "I keep my bike in the garage.",
            "--user",
            "ana",
            "--name",
            "Ana",
            "--metadata",
            '{"source": "cli"}',
            "--json",
        ).output
    )
    note_id = added["note_ids"][0]
    run("add", "The dentist appointment is on Tuesday.", "--user", "ana")
    # (the test embedder hashes words, stopwords too: it puts "where is the bike" nearer the
    # dentist note, so the query names what this test is about, the CLI, not ranking)
    hits = json.loads(run("search", "bike garage", "--user", "ana", "--json").output)
    assert hits[0]["id"] == note_id and hits[0]["metadata"] == {"source": "cli"}
    assert "bike" in run("search", "bike", "--user", "ana").output
    shown = run("show", note_id).output
    assert "Ana: I keep my bike" in shown and "source" in shown
    episode_id = added["episode_ids"][0]
    assert json.loads(run("show", episode_id, "--json").output)["name"] == "Ana"
    assert run("forget", note_id).output.strip() == f"forgot {note_id}"
    actions = [e["action"] for e in json.loads(run("history", note_id, "--json").output)]
    assert actions == ["add", "delete"]
    assert "delete" in run("history", note_id).output


def test_add_reads_stdin_and_message_files(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("add", "-", "--session", "s1", input="from standard input\n")
    messages = tmp_path / "messages.json"
    messages.write_text(
        json.dumps(
            [{"role": "user", "content": "first"}, {"role": "assistant", "content": "second"}]
        )
    )
    result = json.loads(
        run(
            "add",
            "--messages",
            str(messages),
            "--session",
            "s1",
            "--occurred-at",
            "2024-01-02T03:04:05Z",
            "--json",
        ).output
    )
    assert len(result["episode_ids"]) == 2
    listed = json.loads(run("list", "--session", "s1", "--order", "added", "--json").output)
    assert [n["text"] for n in listed["items"]] == ["from standard input", "first", "second"]
    # only the final newlines go: what is inside, trailing spaces included, is kept
    run("add", "-", "--session", "s2", input="  two\n\nlines \n\n")
    kept = json.loads(run("list", "--session", "s2", "--json").output)["items"]
    assert [n["text"] for n in kept] == ["  two\n\nlines "]


def test_list_pages_and_tables(run) -> None:  # type: ignore[no-untyped-def]
    for index in range(5):
        run("add", f"fact {index}", "--user", "u")
    first = run("list", "--user", "u", "--limit", "2").output
    assert "more: --cursor" in first
    cursor = first.rsplit("--cursor", 1)[1].strip()
    second = json.loads(
        run("list", "--user", "u", "--limit", "2", "--cursor", cursor, "--json").output
    )
    assert [n["text"] for n in second["items"]] == ["fact 2", "fact 3"]


def test_forget_all_needs_confirmation(run) -> None:  # type: ignore[no-untyped-def]
    run("add", "one", "--user", "u")
    run("add", "two", "--user", "v")
    assert run("forget", "--all", "--user", "u", input="n\n", ok=False).exit_code == 1
    assert "forgot 1 memories" in run("forget", "--all", "--user", "u", "--yes").output
    assert json.loads(run("list", "--json").output)["items"][0]["text"] == "two"


def test_forget_purge_erases(run) -> None:  # type: ignore[no-untyped-def]
    added = json.loads(run("add", "my pin is quokka", "--user", "u", "--json").output)
    note_id = added["note_ids"][0]
    assert f"erased {note_id}" in run("forget", note_id, "--purge").output
    history = run("history", note_id, "--json").output
    assert "purge" in history and "quokka" not in history
    run("add", "one", "--user", "v")
    assert "erased 2 records" in run("forget", "--all", "--user", "v", "--purge", "--yes").output
    assert json.loads(run("list", "--json").output)["items"] == []


def test_export_then_import_with_progress(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("add", "exported memory", "--user", "u")
    path = tmp_path / "out.jsonl"
    assert "exported" in run("export", str(path)).output
    other = {"REMEM_DB": str(tmp_path / "other.db"), "REMEM_EMBEDDER": "hash", "REMEM_CONFIG": ""}
    result = CliRunner().invoke(cli, ["import", str(path), "--json"], env=other)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 4  # an episode, a note, two "add" events
    again = CliRunner().invoke(cli, ["import", str(path)], env=other)
    assert "imported 0 records, skipped 4 already present" in again.output


def test_errors_are_one_line_not_a_traceback(run) -> None:  # type: ignore[no-untyped-def]
    missing_scope = run("add", "text", ok=False)
    assert missing_scope.exit_code == 1
    assert "error: add needs a scope" in missing_scope.output
    unknown = run("show", "nt_NOPE", ok=False)
    assert "error: no memory with id 'nt_NOPE'" in unknown.output
    assert run("add", "x", "--user", "u", "--metadata", "{bad", ok=False).exit_code == 2


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["add", "x", "--user", "u", "--metadata", "{bad"], 2, "--metadata: not valid JSON"),
        (["add", "x", "--user", "u", "--messages", "-"], 2, "TEXT or --messages, not both"),
        (["add", "--user", "u", "--messages", "-"], 2, "not valid JSON"),
        (["add", "--user", "u"], 2, "nothing to remember"),
        (["forget", "--all"], 2, "forget --all needs a scope"),
        (["forget", "--all", "--user", "  "], 2, "forget --all needs a scope"),
        (["forget", "nt_x", "--all", "--user", "u"], 2, "not both"),
        (["search"], 2, "Missing argument 'QUERY'"),
        (["search", "x", "--limit", "many"], 2, "'many' is not a valid integer"),
        (["list", "--bogus"], 2, "No such option '--bogus'"),
        (["--bogus", "list"], 2, "No such option '--bogus'"),
        (["nosuchcommand"], 2, "No such command 'nosuchcommand'"),
        (["jobs", "--status", "lost"], 2, "'lost' is not one of"),
        (["--db", "", "list"], 1, "db (--db) in arguments is empty"),
        (["--db", "postgresql://u:pw@127.0.0.1:9/remem", "list"], 1, "Connection refused"),
        (["worker", "--once"], 2, "no language model"),
        (["show", "nt_\x00"], 1, "NUL character"),
    ],
)
def test_every_error_is_one_line(run, args: list[str], code: int, says: str) -> None:  # type: ignore[no-untyped-def]
    result = run(*[arg.replace("\\x00", "\x00") for arg in args], input="", ok=False)
    assert result.exit_code == code, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert says in result.output
    assert "Usage:" not in result.output and "Traceback" not in result.output


def test_forget_all_without_a_scope_asks_nothing(run) -> None:  # type: ignore[no-untyped-def]
    result = run("forget", "--all", input="y\n", ok=False)  # an answer it must not read
    assert "forget every memory" not in result.output
    assert result.output == "error: forget --all needs a scope: --user, --agent or --session\n"


def test_an_empty_remem_db_is_refused(tmp_path: Path) -> None:
    env = {"REMEM_DB": "", "REMEM_EMBEDDER": "hash", "REMEM_CONFIG": ""}
    result = CliRunner().invoke(cli, ["list"], env=env)
    assert result.exit_code == 1 and result.output.startswith("error: REMEM_DB in environment")


def test_migrate_refuses_a_missing_source_and_creates_nothing(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    typo, target = tmp_path / "typo.db", tmp_path / "copy.db"
    result = run("migrate", "--from", str(typo), "--to", str(target), ok=False)
    assert result.exit_code == 1 and "no such file" in result.output
    assert not typo.exists() and not target.exists()
    run("add", "kept", "--user", "u")
    copied = run("migrate", "--from", str(tmp_path / "cli.db"), "--to", str(target))
    assert "copied" in copied.output and target.exists()


def test_demo_runs_offline_with_the_bundled_model(tmp_path: Path) -> None:
    env = {**os.environ, "REMEM_DB": str(tmp_path / "unused.db"), "HF_HUB_OFFLINE": "1"}
    env.pop("REMEM_EMBEDDER", None)
    result = subprocess.run(
        [sys.executable, "-m", "remem", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Remembered 21 messages" in result.stdout
    assert "allergic to peanuts" in result.stdout
    profile = result.stdout.split("Who memory says", 1)[1]
    assert "health     allergic to peanuts" in profile and "Hannah (sister)" in profile
    assert not (tmp_path / "unused.db").exists()


def test_keys_create_list_revoke(run) -> None:  # type: ignore[no-untyped-def]
    created = json.loads(run("keys", "create", "--tenant", "acme", "--name", "ci", "--json").output)
    assert created["secret"].startswith("rk_")
    listed = run("keys", "list").output
    assert created["id"] in listed and "acme" in listed and created["secret"] not in listed
    assert "digest" not in run("keys", "list", "--json").output
    assert run("keys", "revoke", created["id"]).output.startswith(f"revoked {created['id']}")
    assert json.loads(run("keys", "list", "--json").output)[0]["revoked_at"]
    bad = run("keys", "create", "--tenant", "no spaces", ok=False)
    assert bad.exit_code == 1 and "tenant" in bad.output


def test_context_prints_the_block(run) -> None:  # type: ignore[no-untyped-def]
    run("add", "My sister Bea lives in Porto.", "--user", "ana", "--name", "Ana")
    output = run("context", "where does Bea live", "--user", "ana").output
    assert "Relevant memories" in output and "Ana: My sister Bea lives in Porto." in output


def test_serve_refuses_other_hosts_without_keys(run) -> None:  # type: ignore[no-untyped-def]
    refused = run("serve", "--host", "0.0.0.0", ok=False)
    assert refused.exit_code == 1 and "without API keys" in refused.output


@pytest.mark.slow
def test_serve_runs_beside_the_cli(tmp_path: Path) -> None:
    import socket
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "REMEM_DB": str(tmp_path / "s.db"), "REMEM_EMBEDDER": "hash"}
    server = subprocess.Popen(
        [sys.executable, "-m", "remem", "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{url}/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        added = httpx.post(f"{url}/v1/memories", json={"content": "served", "user_id": "u"})
        assert added.status_code == 201
        listed = subprocess.run(
            [sys.executable, "-m", "remem", "list", "--user", "u", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert [n["text"] for n in json.loads(listed.stdout)["items"]] == ["served"]
    finally:
        server.terminate()
        server.wait(10)


def test_jobs_worker_and_stats_with_a_scripted_model(tmp_path: Path) -> None:
    from remem.testing import ScriptedOpenAIServer

    with ScriptedOpenAIServer() as model:
        model.reply('{"facts": [{"text": "Ana plays the cello."}]}', when='"name": "extract"')
        model.reply('{"notes": []}', when='"name": "enrich"')
        env = {
            "REMEM_DB": str(tmp_path / "jobs.db"),
            "REMEM_EMBEDDER": "hash",
            "REMEM_CONFIG": "",
            "REMEM_LLM_BASE_URL": model.base_url,
            "REMEM_LLM_MODEL": "scripted",
            "REMEM_JOBS": "worker",
        }

        def run(*args: str) -> str:
            result = CliRunner().invoke(cli, list(args), env=env)
            assert result.exit_code == 0, result.output + repr(result.exception)
            return result.output

        run("add", "I play the cello.", "--user", "ana")
        (job,) = json.loads(run("jobs", "--status", "pending", "--json"))
        assert job["kind"] == "organise"
        run("worker", "--once")
        assert json.loads(run("jobs", "--status", "done", "--json"))[0]["id"] == job["id"]
        stats = json.loads(run("stats", "--json"))
        assert stats["counts"]["fact notes"] == 1 and stats["counts"]["turn notes"] == 1
        assert [row["step"] for row in stats["llm"]] == ["extract", "enrich"]
        assert "extract" in run("stats")


def test_worker_needs_a_model(run) -> None:  # type: ignore[no-untyped-def]
    result = run("worker", "--once", ok=False)
    assert result.exit_code == 2 and "no language model" in result.output


def test_add_names_the_kind_of_job_it_left_pending(tmp_path: Path) -> None:
    from remem.testing import ScriptedOpenAIServer

    with ScriptedOpenAIServer() as model:
        env = {
            "REMEM_DB": str(tmp_path / "organise.db"),
            "REMEM_EMBEDDER": "hash",
            "REMEM_CONFIG": "",
            "REMEM_LLM_BASE_URL": model.base_url,
            "REMEM_LLM_MODEL": "scripted",
            "REMEM_JOBS": "worker",
        }
        organise = CliRunner().invoke(cli, ["add", "I play the cello.", "--user", "ana"], env=env)
        assert "warning: 1 organise job pending" in organise.output
        assert "embedding" not in organise.output
        env = {
            "REMEM_DB": str(tmp_path / "embed.db"),
            "REMEM_EMBEDDER": "openai",
            "REMEM_EMBEDDER_BASE_URL": model.base_url,
            "REMEM_EMBEDDER_MODEL": "scripted",
            "REMEM_CONFIG": "",
        }
        CliRunner().invoke(cli, ["add", "the embedder works", "--user", "ana"], env=env)
        model.fail_next(503, times=3)  # then it is down for the next add
        embed = CliRunner().invoke(cli, ["add", "the embedder is down", "--user", "ana"], env=env)
        assert "warning: 1 embedding job pending" in embed.output
        assert "organise" not in embed.output


# commands where --json means nothing, and why
WITHOUT_JSON = {
    ("serve",): "a long-running server: it prints nothing but a startup line",
    ("mcp",): "speaks the MCP protocol on stdout itself",
    ("ui",): "opens a browser (or serves the UI) and prints only where",
    ("bench",): "a group: its commands have --json",
    ("keys",): "a group: its commands have --json",
}


def test_every_command_has_json() -> None:
    for path, command in _every_command():
        if path in WITHOUT_JSON:
            continue
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert "--json" in options, f"{' '.join(path)} has no --json"
    assert {path for path, _ in _every_command()} >= set(WITHOUT_JSON)


def test_json_of_export_forget_revoke_and_migrate(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    note = json.loads(run("add", "one", "--user", "u", "--json").output)["note_ids"][0]
    run("add", "two", "--user", "u")
    exported = json.loads(run("export", str(tmp_path / "out.jsonl"), "--json").output)
    assert exported["exported"] > 0
    copied = json.loads(
        run(
            "migrate",
            "--from",
            str(tmp_path / "cli.db"),
            "--to",
            str(tmp_path / "copy.db"),
            "--json",
        ).stdout  # the progress bar is on stderr
    )
    assert copied["added"] > 0
    assert json.loads(run("forget", note, "--json").output) == {"forgotten": [note]}
    everything = run("forget", "--all", "--user", "u", "--yes", "--json").output
    assert json.loads(everything) == {"forgotten": 1}
    key = json.loads(run("keys", "create", "--tenant", "t", "--json").output)
    revoked = json.loads(run("keys", "revoke", key["id"], "--json").output)
    assert revoked["id"] == key["id"] and revoked["revoked_at"]


def test_tables_fit_80_columns(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "80")
    long = "I keep the spare key under the blue flowerpot by the back door, left of the shed. " * 2
    for user in ("ana-maria-de-souza", "bob"):
        run("add", long, "--user", user, "--occurred-at", "2024-01-02T03:04:05Z")
    for args in (("list",), ("search", "spare key", "--user", "bob"), ("list", "--user", "bob")):
        output = run(*args).output
        lines = output.splitlines()
        assert all(len(line) <= 80 for line in lines), output
        # the memory column starts by column 40, so it has at least 40 of the 80
        starts = [line.index("I keep") for line in lines if "I keep" in line]
        assert starts and all(start <= 40 for start in starts), output


def test_short_ids_are_what_show_history_and_forget_take(run) -> None:  # type: ignore[no-untyped-def]
    note = json.loads(run("add", "I like tea.", "--user", "u", "--json").output)["note_ids"][0]
    listed = run("list", "--user", "u").output
    assert note[-8:] in listed and note not in listed
    assert note in run("list", "--user", "u", "--full-ids").output
    assert note in run("search", "tea", "--user", "u", "--full-ids").output
    found = run("search", "tea", "--user", "u", "--include-superseded").output
    assert note[-8:] in found and " turn " in found  # what the note is, not "note"
    assert f"id:           {note}" in run("show", note[-8:]).output
    assert "add" in run("history", note[-8:].lower()).output
    assert run("forget", note[-8:]).output.strip() == f"forgot {note}"
    missing = run("show", note[-8:], ok=False)
    assert missing.exit_code == 1 and "error:" in missing.output


def test_list_orders(run) -> None:  # type: ignore[no-untyped-def]
    for text, when in (("later", "2001-01-01T00:00:00Z"), ("earlier", "1999-01-01T00:00:00Z")):
        run("add", text, "--user", "u", "--occurred-at", when)

    def texts(*order: str) -> list[str]:
        page = json.loads(run("list", "--user", "u", *order, "--json").output)
        return [note["text"] for note in page["items"]]

    assert texts() == ["earlier", "later"] == texts("--order", "oldest")
    assert texts("--order", "newest") == ["later", "earlier"]
    assert texts("--order", "added") == ["later", "earlier"]
    first = run("list", "--user", "u", "--order", "newest", "--limit", "1").output
    assert first.rstrip().endswith("--order newest")
    bad = run("list", "--order", "sideways", ok=False)
    assert bad.exit_code == 2 and "sideways" in bad.output
