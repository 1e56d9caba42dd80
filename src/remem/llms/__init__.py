"""Language models remem can use to organise memories (optional: everything works without)."""

from __future__ import annotations

from remem.config import Settings
from remem.errors import ConfigError
from remem.llms.base import LLM, Generation, Usage
from remem.llms.openai import OpenAICompatibleLLM

__all__ = ["LLM", "Generation", "OpenAICompatibleLLM", "Usage", "create_llm"]


def create_llm(settings: Settings) -> LLM | None:
    """The model the settings configure, or None when none is."""
    if not settings.llm_base_url:
        return None
    if not settings.llm_model:
        raise ConfigError("REMEM_LLM_BASE_URL is set but REMEM_LLM_MODEL is not: name the model")
    return OpenAICompatibleLLM(settings.llm_base_url, settings.llm_model, settings.llm_api_key)
