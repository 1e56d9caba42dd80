"""Fixtures shared by the tests. `memory` and `location` run each test on every store:
a SQLite file, and PostgreSQL (a fresh schema per test in the database that
`REMEM_TEST_POSTGRES` names; `scripts/test-postgres.sh start DIR` makes one). Without it
the PostgreSQL runs are skipped, unless `REMEM_REQUIRE_POSTGRES` is set (as in CI)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from remem import Memory
from remem.testing import HashEmbedder

STORES = ["sqlite", "postgres"]
# Settings the test run itself gives; every other REMEM_* of the developer's shell is hidden.
TEST_SETTINGS = ("REMEM_TEST_POSTGRES", "REMEM_REQUIRE_POSTGRES")


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
    """Where a memory can live: a SQLite path, or a PostgreSQL URL of an empty schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "memory.db")
        return
    url = os.environ.get("REMEM_TEST_POSTGRES")
    if not url:
        reason = "set REMEM_TEST_POSTGRES (scripts/test-postgres.sh start DIR) to test PostgreSQL"
        if os.environ.get("REMEM_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required here but not configured: {reason}")
        pytest.skip(reason)
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{url}?options={quote(f'-c search_path={schema},public')}"
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def memory(location: str) -> Iterator[Memory]:
    with Memory(location, embedder=HashEmbedder()) as memory:
        yield memory
