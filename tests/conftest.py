"""Fixtures shared by the tests. `memory` and `location` run each test on every store:
a SQLite file, PostgreSQL (a fresh schema per test in the database that
`REMEM_TEST_POSTGRES` names; `scripts/test-postgres.sh start DIR` makes one), and a Citus
cluster the same way (`REMEM_TEST_CITUS`; `scripts/test-citus.sh start DIR`). Without its
URL a server store's runs are skipped, unless `REMEM_REQUIRE_POSTGRES` (or
`REMEM_REQUIRE_CITUS`) is set (as in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from remem import Memory
from remem.testing import HashEmbedder

STORES = ["sqlite", "postgres", "citus"]
# Settings the test run itself gives; every other REMEM_* of the developer's shell is hidden.
TEST_SETTINGS = (
    "REMEM_TEST_POSTGRES",
    "REMEM_REQUIRE_POSTGRES",
    "REMEM_TEST_CITUS",
    "REMEM_REQUIRE_CITUS",
)
# A server store's URL, what starts one, and the setting that makes its absence a failure.
SERVERS = {
    "postgres": ("REMEM_TEST_POSTGRES", "scripts/test-postgres.sh", "REMEM_REQUIRE_POSTGRES"),
    "citus": ("REMEM_TEST_CITUS", "scripts/test-citus.sh", "REMEM_REQUIRE_CITUS"),
}
# Shards per distributed table in a test's schema: few, so creating one stays quick.
TEST_SHARDS = 4


@pytest.fixture(autouse=True, scope="session")
def hermetic_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Memories built from settings (`Memory()`, the CLI) see no REMEM_* variable and no
    config file of the machine's user: an empty config file stands in for it."""
    empty = tmp_path_factory.mktemp("config") / "config.toml"
    empty.write_text("")
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("REMEM_")]:
            if name not in TEST_SETTINGS:
                patch.delenv(name)
        patch.setenv("REMEM_CONFIG", str(empty))
        yield


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A SQLite file, for tests of what only the SQLite store does."""
    return tmp_path / "memory.db"


@pytest.fixture(params=STORES)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a memory can live: a SQLite path, or a PostgreSQL (or Citus) URL of an empty
    schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "memory.db")
        return
    yield from server_schema(request.param)


@pytest.fixture
def citus_location() -> Iterator[str]:
    """The URL of an empty schema on the Citus cluster (for what only Citus does)."""
    yield from server_schema("citus")


def server_schema(store: str) -> Iterator[str]:
    """A fresh schema on the server `store` names, dropped afterwards (skipped, or failed
    where required, when that server is not configured)."""
    variable, script, required = SERVERS[store]
    url = os.environ.get(variable)
    if not url:
        reason = f"set {variable} ({script} start DIR) to test {store}"
        if os.environ.get(required):
            pytest.fail(f"{store} is required here but not configured: {reason}")
        pytest.skip(reason)
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    options = f"-c search_path={schema},public"
    if store == "citus":
        options += f" -c citus.shard_count={TEST_SHARDS}"
    try:
        yield f"{url}?options={quote(options)}"
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def memory(location: str) -> Iterator[Memory]:
    with Memory(location, embedder=HashEmbedder()) as memory:
        yield memory


NOT_HERE = 77  # a script's exit code for "this platform cannot run this test"
PythonRun = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_python() -> PythonRun:
    """Runs a Python script in a process of its own, with arguments; its exit code
    NOT_HERE skips the test."""

    def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
        ran = subprocess.run(
            [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120
        )
        if ran.returncode == NOT_HERE:
            pytest.skip("this platform cannot run the test (its script says so)")
        return ran

    return run
