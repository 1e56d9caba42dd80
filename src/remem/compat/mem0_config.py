"""mem0's nested config dict as remem settings: the parts remem has an equivalent for.

    settings_of({"llm": {"provider": "openai", "config": {"model": "gpt-4o-mini"}}})
    -> {"llm": "openai", "llm_base_url": "https://api.openai.com/v1", "llm_model": ...}

mem0 names a provider per part (`vector_store`, `embedder`, `llm`); remem keeps vectors in
its own SQLite file or PostgreSQL, and speaks to any OpenAI-compatible endpoint. Whatever
has no remem equivalent raises ConfigError naming it, never silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from remem.errors import ConfigError

OPENAI_URL = "https://api.openai.com/v1"
# top-level keys remem needs nothing from: history lives in remem's own store
IGNORED = frozenset({"history_db_path", "version"})
PARTS = ("vector_store", "embedder", "llm")
# mem0 provider -> (the config key naming its endpoint, the endpoint when it names none)
OPENAI_COMPATIBLE = {
    "openai": ("openai_base_url", OPENAI_URL),
    "openai_structured": ("openai_base_url", OPENAI_URL),
    "ollama": ("ollama_base_url", "http://localhost:11434"),
    "lmstudio": ("lmstudio_base_url", "http://localhost:1234/v1"),
    "vllm": ("vllm_base_url", "http://localhost:8000/v1"),
}
# config keys that tune a provider in ways remem decides itself
TUNING = frozenset(
    {
        "temperature",
        "max_tokens",
        "top_p",
        "top_k",
        "embedding_dims",
        "embedding_model_dims",
        "collection_name",
        "enable_vision",
        "vision_details",
        "hnsw",
        "diskann",
        "on_disk",
    }
)


def settings_of(config: Mapping[str, Any]) -> dict[str, str]:
    """remem settings (names as in `remem.config.Settings`) for a mem0 config dict."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"a mem0 config must be a dict, got {type(config).__name__}")
    unknown = sorted(set(config) - set(PARTS) - IGNORED)
    if unknown:
        raise ConfigError(
            f"mem0 config key(s) {', '.join(unknown)} have no remem equivalent; remem reads"
            f" {', '.join(PARTS)} (and ignores {', '.join(sorted(IGNORED))})"
        )
    settings: dict[str, str] = {}
    if "vector_store" in config:
        settings |= _vector_store(_part(config, "vector_store"))
    if "embedder" in config:
        settings |= _endpoint(_part(config, "embedder"), "embedder")
    if "llm" in config:
        settings |= _endpoint(_part(config, "llm"), "llm")
    return settings


def _part(config: Mapping[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """(provider, its config) of one part, checked."""
    part = config[name]
    if not isinstance(part, Mapping) or not isinstance(part.get("provider"), str):
        raise ConfigError(f"mem0 config {name} must be a dict with a 'provider' string")
    extra = sorted(set(part) - {"provider", "config"})
    if extra:
        raise ConfigError(f"mem0 config {name} has unknown key(s): {', '.join(extra)}")
    options = part.get("config") or {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"mem0 config {name}.config must be a dict")
    return part["provider"], dict(options)


def _vector_store(part: tuple[str, dict[str, Any]]) -> dict[str, str]:
    provider, options = part
    if provider == "pgvector":
        return {"db": _postgres_url(options)}
    if provider in ("sqlite", "remem"):  # remem's own: a SQLite file
        _refuse_unknown(options, {"path"}, "vector_store")
        return {"db": str(options["path"])} if options.get("path") else {}
    raise ConfigError(
        f"mem0 vector_store provider {provider!r} has no remem equivalent: remem keeps"
        " vectors in its own SQLite file (leave vector_store out, or provider 'sqlite' with"
        " config.path) or in PostgreSQL with pgvector (provider 'pgvector')"
    )


def _postgres_url(options: dict[str, Any]) -> str:
    """A postgresql:// URL from mem0's pgvector options."""
    named = {"connection_string", "user", "password", "host", "port", "dbname", "sslmode"}
    _refuse_unknown(options, named, "vector_store")
    if options.get("connection_string"):
        return str(options["connection_string"])
    user = quote(str(options.get("user") or ""), safe="")
    password = quote(str(options.get("password") or ""), safe="")
    login = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    address = f"{options.get('host') or 'localhost'}:{options.get('port') or 5432}"
    url = f"postgresql://{login}{address}/{options.get('dbname') or 'postgres'}"
    return url + (f"?sslmode={options['sslmode']}" if options.get("sslmode") else "")


def _endpoint(part: tuple[str, dict[str, Any]], kind: str) -> dict[str, str]:
    """An embedder or llm part as remem's OpenAI-compatible settings of that kind."""
    provider, options = part
    if provider not in OPENAI_COMPATIBLE:
        hint = " (remem bundles an offline model: leave embedder out)" if kind == "embedder" else ""
        raise ConfigError(
            f"mem0 {kind} provider {provider!r} has no remem equivalent; remem speaks to"
            f" OpenAI-compatible endpoints: {', '.join(OPENAI_COMPATIBLE)}{hint}"
        )
    url_key, default_url = OPENAI_COMPATIBLE[provider]
    _refuse_unknown(options, {"model", "api_key", url_key}, kind)
    url = str(options.get(url_key) or default_url).rstrip("/")
    if provider == "ollama":
        url += "/v1"  # Ollama's OpenAI-compatible API
    if not options.get("model"):
        raise ConfigError(f"mem0 {kind} config needs a 'model' for remem")
    settings = {kind: "openai", f"{kind}_base_url": url, f"{kind}_model": str(options["model"])}
    api_key = options.get("api_key") or (
        os.environ.get("OPENAI_API_KEY") if provider.startswith("openai") else None
    )
    if api_key:
        settings[f"{kind}_api_key"] = str(api_key)
    return settings


def _refuse_unknown(options: dict[str, Any], known: set[str], part: str) -> None:
    unknown = sorted(set(options) - known - TUNING)
    if unknown:
        raise ConfigError(
            f"mem0 {part} option(s) {', '.join(unknown)} have no remem equivalent"
            f" (remem reads {', '.join(sorted(known))})"
        )
