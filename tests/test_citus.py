"""What only a Citus cluster checks: remem's own migrations place its tables (per-owner
ones distributed by owner and co-located, shared ones as reference tables), a user's reads
are routed to one shard, what spans owners (counts, export, keys, purge, jobs) works
across shards, and tables made before Citus are placed when a store opens. The rest of
the store's behaviour runs on Citus through the `location` fixture's "citus" value.

Needs REMEM_TEST_CITUS (`scripts/test-citus.sh start DIR`); skipped without it, unless
REMEM_REQUIRE_CITUS is set."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from remem import Memory, clock, ids
from remem.keys import authenticate, create_key
from remem.stores.base import Changes
from remem.stores.citus import BY_KEY, PER_OWNER, SHARED
from remem.stores.postgres import PostgresStore
from remem.testing import HashEmbedder
from remem.types import Job, Scope


class RecordingStore(PostgresStore):
    """The real store, keeping each statement it sends through `_rows` (to EXPLAIN)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.sent: list[tuple[str, list[Any]]] = []

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.sent.append((sql, list(params)))
        return super()._rows(sql, params)


@pytest.fixture
def cluster(citus_location: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain connection to the test's schema on the coordinator."""
    with psycopg.connect(citus_location, autocommit=True) as conn:
        yield conn


def placement(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, str | None, int]]:
    """Each table of the schema Citus knows: (method, distribution column, colocation)."""
    rows = conn.execute(
        "SELECT c.relname, p.partmethod, column_to_column_name(p.logicalrelid, p.partkey),"
        " p.colocationid FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid"
        " WHERE c.relnamespace = current_schema()::regnamespace"
    ).fetchall()
    return {name: (method, column, colocation) for name, method, column, colocation in rows}


def shard_of(conn: psycopg.Connection[Any], owner: str) -> int:
    row = conn.execute("SELECT get_shard_id_for_distribution_column('notes', %s::text)", (owner,))
    return int(row.fetchone()[0])  # type: ignore[index]


def users_on_two_shards(conn: psycopg.Connection[Any]) -> tuple[str, str]:
    """Two user ids whose rows land on different shards (of tables already made)."""
    first = "ana"
    other = next(
        f"user{i}" for i in range(100) if shard_of(conn, f":user{i}") != shard_of(conn, ":ana")
    )
    return first, other


def task_counts(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any]) -> list[int]:
    """How many shards each distributed step of a statement's plan runs on."""
    plan = conn.execute(f"EXPLAIN {sql}", params).fetchall()
    return [int(n) for (line,) in plan for n in re.findall(r"Task Count: (\d+)", line)]


def test_migrations_distribute_per_owner_tables_and_replicate_shared_ones(
    citus_location: str, cluster: psycopg.Connection[Any]
) -> None:
    with Memory(citus_location, embedder=HashEmbedder(), llm=None) as memory:
        memory.add("I keep bees on the roof.", user_id="ana")
    placed = placement(cluster)
    assert {table: placed[table][:2] for table in PER_OWNER} == {
        t: ("h", "owner") for t in PER_OWNER
    }
    assert len({placed[table][2] for table in PER_OWNER}) == 1  # co-located
    assert {table: placed[table][0] for table in SHARED} == {t: "n" for t in SHARED}
    assert placed["meta"][:2] == ("h", "key")  # upserted by most adds: never locked cluster-wide
    nodes = cluster.execute(
        "SELECT count(DISTINCT groupid) FROM pg_dist_shard s JOIN pg_dist_placement p"
        " USING (shardid) WHERE s.logicalrelid = 'notes'::regclass"
    ).fetchone()
    assert nodes is not None and nodes[0] == 2  # spread over both workers


def test_a_users_reads_go_to_one_shard(
    citus_location: str, cluster: psycopg.Connection[Any]
) -> None:
    store = RecordingStore(citus_location)
    try:
        with Memory(store=store, embedder=HashEmbedder(), llm=None) as memory:
            memory.add(
                [{"role": "user", "name": "Ana", "content": "My sister Lena moved to Porto."}],
                user_id="ana",
                session_id="s1",
            )
            store.sent.clear()
            assert memory.search("where did Lena move", user_id="ana")
            memory.list(user_id="ana")
            store.search_passages(["porto"], Scope(user_id="ana"), 5)
            store.speakers_named(["ana", "bob"], Scope(user_id="ana"))
            store.recent_episodes(Scope(user_id="ana"), 5)
        # scope reads name the user; lookups of the notes found name their owner
        scoped = [(sql, ps) for sql, ps in store.sent if {"ana", ":ana"} & set(map(str, ps))]
        assert len(scoped) >= 8
        assert any("previous" in sql for sql, _ in scoped)  # describe, with its subqueries
        for sql, params in scoped:
            counts = task_counts(cluster, sql, params)
            assert counts and set(counts) == {1}, (sql, counts)
        # an agent's scope does not decide the owner: the same reads go to every shard
        unrouted = store.dialect.scope(Scope(agent_id="helper"), "")
        counts = task_counts(cluster, f"SELECT id FROM notes WHERE {unrouted[0]}", unrouted[1])
        assert counts == [4]
    finally:
        store.close()


def test_what_spans_owners_works_across_shards(
    citus_location: str, cluster: psycopg.Connection[Any], tmp_path: Path
) -> None:
    with Memory(citus_location, embedder=HashEmbedder(), llm=None) as memory:
        first, second = users_on_two_shards(cluster)
        for user in (first, second):
            for day in range(3):
                memory.add(f"{user} planted tomatoes on day {day}.", user_id=user, session_id="g")
        key, secret = create_key(memory.store, "acme", "ci")
        counts = memory.store.counts()
        assert counts["turn notes"] == 6 and counts["episodes"] == 6
        assert memory.export(tmp_path / "all.jsonl") == counts["records"]
        assert [k.id for k in memory.store.list_keys()] == [key.id]
        assert authenticate(memory.store, secret) == key
        assert memory.purge_all(user_id=first) == 6  # three episodes, three notes
        assert memory.search("tomatoes", user_id=first) == []
        assert len(memory.search("tomatoes", user_id=second)) == 3
        assert len(memory.list().items) == 3
    with Memory(tmp_path / "copy.db", embedder=HashEmbedder(), llm=None) as copy:
        copy.import_file(tmp_path / "all.jsonl")
        assert {n.scope.user_id for n in copy.list().items} == {first, second}


def test_racing_workers_claim_each_job_once(citus_location: str) -> None:
    store = PostgresStore(citus_location)
    now = clock.now()
    jobs = [
        Job(ids.new_id(ids.JOB), "organise", f"nt_missing{i}", "pending", 0, None, now, now)
        for i in range(24)
    ]
    store.apply(Changes(jobs=jobs))
    claimed: list[str] = []
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            while (job := store.claim_job(name, now + timedelta(minutes=5))) is not None:
                claimed.append(job.id)
        except BaseException as error:  # reported in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    store.close()
    assert not errors
    assert sorted(claimed) == sorted(job.id for job in jobs)  # each once, none lost


def test_tables_made_before_citus_are_placed_when_a_store_opens(
    citus_location: str, cluster: psycopg.Connection[Any]
) -> None:
    with Memory(citus_location, embedder=HashEmbedder(), llm=None) as memory:
        kept = memory.add("The boiler was serviced in May.", user_id="ana").note_ids[0]
    every = PER_OWNER + SHARED + tuple(BY_KEY)
    for table in every:  # as if Citus came after remem's tables
        cluster.execute("SELECT undistribute_table(%s)", (table,))
    assert placement(cluster) == {}
    with Memory(citus_location, embedder=HashEmbedder(), llm=None) as memory:
        assert set(placement(cluster)) == set(every)
        assert memory.search("boiler service", user_id="ana")[0].id == kept
        memory.add("The boiler is due again in May.", user_id="ana")
        assert len(memory.search("boiler", user_id="ana")) == 2


def test_remem_migrate_copies_a_sqlite_memory_into_the_cluster(
    citus_location: str, cluster: psycopg.Connection[Any], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from remem.cli.main import cli

    PostgresStore(citus_location).close()  # the cluster's tables, to pick users by shard
    first, second = users_on_two_shards(cluster)
    source = tmp_path / "local.db"
    with Memory(source, embedder=HashEmbedder(), llm=None) as local:
        for user in (first, second):
            local.add(f"{user}'s passport expires in 2031.", user_id=user, session_id="docs")
        expected = local.store.counts()
    env = {"REMEM_EMBEDDER": "hash", "REMEM_CONFIG": ""}
    result = CliRunner().invoke(
        cli, ["migrate", "--from", str(source), "--to", citus_location], env=env
    )
    assert result.exit_code == 0, result.output
    with Memory(citus_location, embedder=HashEmbedder(), llm=None) as copy:
        assert copy.store.counts() == expected
        for user in (first, second):
            assert copy.search("passport expiry", user_id=user)[0].text.startswith(user)
    shards = cluster.execute(
        "SELECT count(DISTINCT get_shard_id_for_distribution_column('notes', owner)) FROM notes"
    )
    assert shards.fetchone() == (2,)


def test_hnsw_settings_of_a_search_reach_the_workers(citus_location: str) -> None:
    """The ANN search's ef_search and iterative scan are per transaction; on Citus the shard
    scan runs on a worker, which must see them too (a coordinator-only setting would leave
    a filtered scope with a handful of candidates)."""
    from remem.stores.postgres import _tune_hnsw

    store = PostgresStore(citus_location)
    try:
        with Memory(store=store, embedder=HashEmbedder(), llm=None) as memory:
            memory.add("Seen on a worker.", user_id="ana")
            with store._conn() as conn, conn.transaction():
                _tune_hnsw(conn, 123, sharded=store.dialect.sharded)
                row = conn.execute(
                    "SELECT current_setting('hnsw.ef_search', true) AS ef,"
                    " current_setting('hnsw.iterative_scan', true) AS scan"
                    " FROM notes WHERE owner = ':ana' LIMIT 1"
                ).fetchone()
            assert row == {"ef": "123", "scan": "relaxed_order"}
    finally:
        store.close()


@pytest.mark.parametrize("user", ["a?b", "50%", "o'brien", "x\\y", "ünï:cødé"])
def test_hostile_user_ids_are_searched_and_described_on_citus(
    citus_location: str, user: str
) -> None:
    """An owner is written into routed SQL as a literal only when plain; others stay
    parameters. Either way the user's notes come back, with their neighbours."""
    with Memory(citus_location, embedder=HashEmbedder(), llm=None) as memory:
        memory.add(
            [
                {"role": "user", "content": "We adopted a grey cat."},
                {"role": "user", "content": "The cat is called Smoke."},
            ],
            user_id=user,
            session_id="pets",
        )
        memory.add("Another user's cat is black.", user_id="someone else")
        hits = memory.search("what is the cat called", user_id=user)
        assert {hit.text for hit in hits} == {"We adopted a grey cat.", "The cat is called Smoke."}
        facts = memory.store.describe([hit.id for hit in hits])
        assert sorted(bool(f.previous) for f in facts.values()) == [False, True]
