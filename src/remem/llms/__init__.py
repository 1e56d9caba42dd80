"""Language models remem can use to organise memories (optional: everything works without),
and the one registry that names them.

The `llm` setting names a backend; left empty, it is `openai` (any OpenAI-compatible
endpoint) when `llm_base_url` is set, and no model otherwise. A third-party backend
registers a factory taking the resolved settings, with `register_llm(name, factory)` or
through the `remem.llms` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from remem.errors import ConfigError
from remem.llms.base import LLM, Generation, Usage
from remem.llms.openai import OpenAICompatibleLLM
from remem.registry import Registry

if TYPE_CHECKING:
    from remem.config import Settings

LLMFactory = Callable[["Settings"], LLM]

__all__ = [
    "LLM",
    "LLMS",
    "Generation",
    "LLMFactory",
    "OpenAICompatibleLLM",
    "Usage",
    "create_llm",
    "register_llm",
]

NO_LLM = "none"
LLMS: Registry[LLMFactory] = Registry("llm", "remem.llms")


def register_llm(name: str, factory: LLMFactory) -> None:
    """Make `name` a valid value of the `llm` setting."""
    LLMS.register(name, factory)


def create_llm(settings: Settings) -> LLM | None:
    """The model the settings configure, or None when none is."""
    name = settings.llm or ("openai" if settings.llm_base_url else NO_LLM)
    return None if name == NO_LLM else LLMS.get(name)(settings)


def _openai(settings: Settings) -> LLM:
    if not settings.llm_base_url:
        raise ConfigError("the openai llm needs REMEM_LLM_BASE_URL: the endpoint to ask")
    if not settings.llm_model:
        raise ConfigError("REMEM_LLM_BASE_URL is set but REMEM_LLM_MODEL is not: name the model")
    return OpenAICompatibleLLM(settings.llm_base_url, settings.llm_model, settings.llm_api_key)


register_llm("openai", _openai)
