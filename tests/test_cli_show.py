"""`remem show` and `remem list` say what a note is: its kind, whether a later fact
superseded it (and which), what organising added, and its links in both directions."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from remem import Memory
from remem.cli.main import cli
from remem.cli.memories import _kind
from remem.cli.show import _note_fields

SIMILAR = "Ana keeps her bike in the garage next to the car."


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {"REMEM_DB": str(tmp_path / "cli.db"), "REMEM_EMBEDDER": "hash", "REMEM_CONFIG": ""}

    def invoke(*args: str) -> Result:
        result = CliRunner().invoke(cli, list(args), env=env)
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result

    return invoke


def test_show_prints_kind_validity_and_links_both_ways(run) -> None:  # type: ignore[no-untyped-def]
    first = json.loads(run("add", SIMILAR, "--user", "ana", "--json").output)["note_ids"][0]
    second = json.loads(run("add", SIMILAR + " Always.", "--user", "ana", "--json").output)
    second = second["note_ids"][0]
    shown = run("show", second).output
    assert "kind:         turn" in shown and "superseded:   no" in shown
    (link,) = [line for line in shown.splitlines() if line.startswith("link:")]
    assert f"-> similar {first} 'Ana keeps her bike" in link and "cosine similarity" in link
    back = [line for line in run("show", first).output.splitlines() if line.startswith("link:")]
    assert len(back) == 1 and f"<- similar {second}" in back[0]
    data = json.loads(run("show", second, "--json").output)
    assert data["record"]["kind"] == "turn" and data["links"][0]["target_id"] == first
    listed = run("list", "--user", "ana").output
    assert all(" turn " in line for line in listed.splitlines()[1:])


def test_a_superseded_fact_says_by_what(memory: Memory) -> None:
    old = memory.add("Ana lives in Lisbon.", user_id="ana").note_ids[0]
    new = memory.add("Ana lives in Berlin.", user_id="ana").note_ids[0]
    note = replace(
        memory.get(old),
        kind="fact",
        valid_to=datetime(2025, 3, 1, tzinfo=UTC),
        superseded_by=new,
        context="where Ana lives",
        keywords=("Lisbon", "home"),
        tags=("place",),
    )
    fields = dict(_note_fields(memory, note))
    assert fields["valid to"] == "2025-03-01 00:00"
    assert fields["superseded"] == f"yes, by {new} 'Ana lives in Berlin.'"
    assert (fields["context"], fields["keywords"], fields["tags"]) == (
        "where Ana lives",
        "Lisbon, home",
        "place",
    )
    assert _kind(note) == "superseded" and _kind(memory.get(new)) == "turn"
