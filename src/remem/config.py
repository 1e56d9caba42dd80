"""Settings, resolved in one order: defaults < config file < environment (REMEM_*) < arguments.

The config file is TOML (`db = "..."`, `embedder = "minilm"`, ...), read from `REMEM_CONFIG`
or else `<user config dir>/remem/config.toml` when it exists.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from remem.errors import ConfigError

ENV_PREFIX = "REMEM_"


@dataclass(frozen=True)
class Settings:
    """Everything configurable. `db` is a SQLite path (":memory:" for a throwaway memory)."""

    db: str = ""
    embedder: str = "minilm"
    embedder_base_url: str | None = None
    embedder_model: str | None = None
    embedder_api_key: str | None = None
    # the language model that organises memories: a registered name (see remem.llms); empty
    # means "openai" when llm_base_url is set, and no model otherwise
    llm: str = ""
    # an OpenAI-compatible chat model: organises memories, and is the chat proxy's upstream
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    # where organising jobs run: inline (in add), background (a thread), worker (remem worker)
    jobs: str = "inline"
    # how search ranks: "default", or a policy (recent, reinforced, important, balanced;
    # see remem.read.policy)
    ranking: str = "default"
    # seconds between sweeps of expired notes in `remem serve`, `remem mcp` and `remem
    # worker` (every tenant's; 0: never, see remem.lifecycle.sweep)
    sweep_seconds: str = "300"
    # seconds between consolidation passes (near-duplicates merged, every tenant's) in the
    # same processes; 0 (the default): never, see remem.lifecycle.consolidation_api
    consolidate_seconds: str = "0"

    @classmethod
    def resolve(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        config_file: str | Path | None = None,
        **arguments: Any,
    ) -> Settings:
        """Build settings from every source, later sources winning."""
        environ = os.environ if environ is None else environ
        settings = cls(db=str(default_db_path()))
        path = config_file or environ.get(ENV_PREFIX + "CONFIG")
        if path is None:
            path = default_config_path()  # REMEM_CONFIG="" means: no config file at all
        if path and Path(path).is_file():
            settings = settings._with(_read_file(Path(path)), source=str(path))
        elif config_file or environ.get(ENV_PREFIX + "CONFIG"):
            raise ConfigError(f"config file not found: {path}")
        from_env = {
            f.name: environ[ENV_PREFIX + f.name.upper()]
            for f in fields(cls)
            if environ.get(ENV_PREFIX + f.name.upper())
        }
        if ENV_PREFIX + "DB" in environ:  # set, even to "": an empty one is a mistake
            from_env["db"] = environ[ENV_PREFIX + "DB"]
        settings = settings._with(from_env, source="environment")
        return settings._with(
            {key: value for key, value in arguments.items() if value is not None},
            source="arguments",
        )

    def _with(self, values: Mapping[str, Any], *, source: str) -> Settings:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(unknown)} in {source}; "
                f"known settings: {', '.join(sorted(known))}"
            )
        for key, value in values.items():
            if not isinstance(value, str):
                raise ConfigError(f"setting {key} in {source} must be a string, got {value!r}")
        if "db" in values and not values["db"].strip():
            name = {"environment": ENV_PREFIX + "DB", "arguments": "db (--db)"}.get(source, "db")
            raise ConfigError(
                f"{name} in {source} is empty: name a SQLite file (':memory:' for a throwaway"
                " memory) or a postgresql:// URL, or leave it unset for the default"
            )
        return replace(self, **values)


def default_db_path() -> Path:
    """Where the memory lives when nothing says otherwise."""
    return Path(platformdirs.user_data_dir("remem")) / "memory.db"


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir("remem")) / "config.toml"


def _read_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from error
