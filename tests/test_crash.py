"""kill -9 in the middle of a long ingest: every add that returned is still there."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from remem import Memory
from remem.testing import HashEmbedder

WRITER = textwrap.dedent(
    """
    import sys
    from remem import Memory
    from remem.testing import HashEmbedder

    memory = Memory(sys.argv[1], embedder=HashEmbedder())
    for turn in range(1_000_000):
        if turn % 3:
            ids = memory.add(f"turn {turn} about the weather", user_id="u").note_ids
        else:
            batch = [{"role": "user", "content": f"turn {turn} part {i}"} for i in range(5)]
            ids = memory.add(batch, user_id="u", session_id=f"s{turn}").note_ids
        print(*ids, flush=True)  # printed only after add returned
    """
)


def test_every_returned_add_survives_kill_9(db_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db_path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    acknowledged: list[str] = []
    while len(acknowledged) < 400:
        line = writer.stdout.readline()
        assert line, "writer stopped early"
        acknowledged += line.split()
    writer.send_signal(signal.SIGKILL)
    acknowledged += writer.stdout.read().split()  # anything printed before the kill landed
    writer.wait(timeout=10)

    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Memory(db_path, embedder=HashEmbedder()) as memory:
        stored = memory.store.get_notes(acknowledged)
        assert set(stored) == set(acknowledged)
        assert all(note.deleted_at is None for note in stored.values())
        last = memory.get(acknowledged[-1])
        assert memory.search(last.text, user_id="u", limit=3)[0].id == last.id
        assert memory.add("after the crash", user_id="u").note_ids
