"""Embedder backends, and the one registry that names them.

A third-party embedder registers itself the same way the built-ins do: a factory taking
the resolved settings, added with `register_embedder(name, factory)` or through the
`remem.embedders` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from remem.embedders.base import Embedder, Vectors
from remem.errors import ConfigError
from remem.registry import Registry

if TYPE_CHECKING:
    from remem.config import Settings

EmbedderFactory = Callable[["Settings"], Embedder]

__all__ = [
    "EMBEDDERS",
    "Embedder",
    "EmbedderFactory",
    "Vectors",
    "create_embedder",
    "register_embedder",
]

EMBEDDERS: Registry[EmbedderFactory] = Registry("embedder", "remem.embedders")


def register_embedder(name: str, factory: EmbedderFactory) -> None:
    """Make `name` a valid value of the `embedder` setting."""
    EMBEDDERS.register(name, factory)


def create_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name."""
    return EMBEDDERS.get(settings.embedder)(settings)


def _minilm(settings: Settings) -> Embedder:
    from remem.embedders.minilm import MiniLMEmbedder

    return MiniLMEmbedder()


def _openai(settings: Settings) -> Embedder:
    from remem.embedders.openai import OpenAIEmbedder

    if not settings.embedder_base_url or not settings.embedder_model:
        raise ConfigError(
            "the openai embedder needs REMEM_EMBEDDER_BASE_URL and REMEM_EMBEDDER_MODEL "
            "(or embedder_base_url / embedder_model in the config file)"
        )
    return OpenAIEmbedder(
        settings.embedder_base_url, settings.embedder_model, settings.embedder_api_key
    )


def _hash(settings: Settings) -> Embedder:
    from remem.embedders.hashing import HashEmbedder

    return HashEmbedder()


register_embedder("minilm", _minilm)
register_embedder("openai", _openai)
register_embedder("hash", _hash)
