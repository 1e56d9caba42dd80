"""Settings resolve in one order: defaults < config file < REMEM_* < arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from remem import ConfigError, Memory, StoreError
from remem.config import Settings
from remem.embedders import create_embedder


def test_later_sources_win(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('db = "from-file.db"\nembedder = "hash"\nembedder_model = "file-model"\n')
    env = {"REMEM_CONFIG": str(config), "REMEM_DB": "from-env.db"}
    settings = Settings.resolve(environ=env, db=None, embedder_model="arg-model")
    assert settings.db == "from-env.db"
    assert settings.embedder == "hash"
    assert settings.embedder_model == "arg-model"


def test_defaults_need_no_file() -> None:
    settings = Settings.resolve(environ={}, config_file=None)
    assert settings.embedder == "minilm"
    assert settings.db.endswith("memory.db")


def test_mistakes_name_the_fix(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('dbb = "typo.db"\n')
    with pytest.raises(ConfigError, match="unknown setting.*dbb"):
        Settings.resolve(environ={"REMEM_CONFIG": str(config)})
    with pytest.raises(ConfigError, match="config file not found"):
        Settings.resolve(environ={"REMEM_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigError, match="unknown embedder 'nope'.*minilm"):
        create_embedder(Settings(embedder="nope"))
    with pytest.raises(ConfigError, match="REMEM_EMBEDDER_BASE_URL"):
        create_embedder(Settings(embedder="openai"))


def test_from_config_builds_a_working_memory(tmp_path: Path) -> None:
    with Memory.from_config(config_file=None, db=str(tmp_path / "m.db"), embedder="hash") as memory:
        memory.add("configured", user_id="u")
        assert memory.embedder.model_id == "hash-64"
    with pytest.raises(ConfigError, match="unsupported database URL"):
        Memory.from_config(db="mysql://localhost/remem", embedder="hash")
    with pytest.raises(StoreError, match="cannot open memory database postgresql://u:\\*\\*\\*@"):
        Memory.from_config(db="postgresql://u:secret@127.0.0.1:9/remem", embedder="hash")


def test_an_empty_db_is_a_mistake_not_a_throwaway_memory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="REMEM_DB in environment is empty"):
        Settings.resolve(environ={"REMEM_DB": ""})
    with pytest.raises(ConfigError, match="REMEM_DB in environment is empty"):
        Settings.resolve(environ={"REMEM_DB": "  "})
    with pytest.raises(ConfigError, match=r"db \(--db\) in arguments is empty"):
        Settings.resolve(environ={}, db="")
    config = tmp_path / "config.toml"
    config.write_text('db = ""\n')
    with pytest.raises(ConfigError, match=f"db in {config} is empty"):
        Settings.resolve(environ={"REMEM_CONFIG": str(config)})
    assert Settings.resolve(environ={}).db.endswith("memory.db")  # unset: the default
    with pytest.raises(ConfigError, match="is empty"):
        Memory(path="", embedder=None)


def test_an_empty_remem_config_reads_no_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "config-home"
    (home / "remem").mkdir(parents=True)
    (home / "remem" / "config.toml").write_text('embedder = "hash"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    assert Settings.resolve(environ={}).embedder == "hash"  # the user's file, by default
    assert Settings.resolve(environ={"REMEM_CONFIG": ""}).embedder == "minilm"
