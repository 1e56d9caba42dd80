"""One wiring path: `Memory()`, `Memory.from_config()` and the CLI build their parts from
the same settings, and every backend kind is named through a registry a third party can
add to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from remem import ConfigError, Memory
from remem.cli.main import cli
from remem.config import Settings
from remem.embedders import EMBEDDERS, register_embedder
from remem.llms import LLMS, OpenAICompatibleLLM, register_llm
from remem.stores import STORES, Store, open_store, register_store
from remem.stores.sqlite import SQLiteStore
from remem.testing import HashEmbedder, ScriptedOpenAIServer


def test_memory_honours_the_embedder_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REMEM_EMBEDDER", "hash")
    with Memory(tmp_path / "m.db") as memory:
        assert memory.embedder.model_id == "hash-64"
        memory.add("the spare key is under the blue flowerpot", user_id="ana")
    # the CLI opens the same file with the same embedder: no "embedded with another" error
    result = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "m.db"), "search", "spare key", "--user", "ana", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "flowerpot" in json.loads(result.output)[0]["text"]


def test_memory_honours_the_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'db = "{tmp_path / "from-file.db"}"\nembedder = "hash"\n')
    monkeypatch.setenv("REMEM_CONFIG", str(config))
    with Memory() as memory:
        assert memory.embedder.model_id == "hash-64"
        assert isinstance(memory.store, SQLiteStore)
        assert Path(memory.store.path) == tmp_path / "from-file.db"
    with Memory.from_config() as configured:
        assert configured.embedder.model_id == "hash-64"


def test_parts_passed_win_over_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REMEM_EMBEDDER", "no-such-embedder")
    with Memory(tmp_path / "m.db", embedder=HashEmbedder(32)) as memory:
        assert memory.embedder.model_id == "hash-32"
    with pytest.raises(ConfigError, match="unknown embedder 'no-such-embedder'.*hash"):
        Memory(tmp_path / "other.db")


def test_the_model_comes_from_settings_unless_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with ScriptedOpenAIServer() as server:
        monkeypatch.setenv("REMEM_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("REMEM_LLM_MODEL", "scripted")
        monkeypatch.setenv("REMEM_JOBS", "worker")
        with Memory(tmp_path / "m.db", embedder=HashEmbedder()) as memory:
            assert isinstance(memory.llm, OpenAICompatibleLLM)
            assert memory.llm.model_id == "scripted"
            result = memory.add("I moved to Lisbon", user_id="ana")
            assert len(result.pending_jobs) == 1  # queued for `remem worker`
        with Memory(tmp_path / "m2.db", embedder=HashEmbedder(), llm=None) as plain:
            assert plain.llm is None
            assert plain.add("hello", user_id="ana").pending_jobs == ()
        monkeypatch.setenv("REMEM_JOBS", "sometimes")
        with pytest.raises(ConfigError, match="jobs must be one of inline, background, worker"):
            Memory(tmp_path / "m3.db", embedder=HashEmbedder())


@pytest.fixture
def registries() -> Iterator[None]:
    """Registries as they were: a test's plug-ins do not leak into other tests."""
    saved = [dict(registry._factories) for registry in (STORES, EMBEDDERS, LLMS)]
    yield
    for registry, factories in zip((STORES, EMBEDDERS, LLMS), saved, strict=True):
        registry._factories = factories


@pytest.mark.usefixtures("registries")
def test_third_parties_plug_in_every_kind(tmp_path: Path) -> None:
    opened: list[str] = []

    def vault(location: str) -> Store:
        opened.append(location)
        return SQLiteStore(tmp_path / "vault.db")

    register_store("vault", vault)
    register_embedder("tiny", lambda settings: HashEmbedder(16))
    with ScriptedOpenAIServer() as server:
        register_llm("house", lambda s: OpenAICompatibleLLM(server.base_url, "house-model"))
        settings = {"db": "vault://team/a", "embedder": "tiny", "llm": "house", "jobs": "worker"}
        with Memory.from_config(**settings) as memory:
            assert opened == ["vault://team/a"]
            assert memory.embedder.model_id == "hash-16"
            assert memory.llm is not None and memory.llm.model_id == "house-model"


def test_unknown_names_list_the_choices() -> None:
    with pytest.raises(ConfigError, match="unsupported database URL 'mysql://x'.*postgresql://"):
        open_store("mysql://x")
    with pytest.raises(ConfigError, match="unknown llm 'gpt'; choose one of .*openai"):
        Memory.from_config(db=":memory:", embedder="hash", llm="gpt")
    with pytest.raises(ConfigError, match="openai llm needs REMEM_LLM_BASE_URL"):
        Memory.from_config(db=":memory:", embedder="hash", llm="openai")
    assert Settings.resolve(llm="none").llm == "none"
    with Memory.from_config(db=":memory:", embedder="hash", llm="none") as memory:
        assert memory.llm is None
