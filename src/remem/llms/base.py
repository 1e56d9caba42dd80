"""The LLM protocol: ask for JSON that fits a pydantic model, get it validated, with usage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Usage:
    """What one step cost: calls made (retries included), tokens, wall time."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.calls + other.calls,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.latency_ms + other.latency_ms,
        )

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Generation(Generic[M]):
    value: M
    usage: Usage


class LLM(Protocol):
    """A language model that answers a prompt with JSON matching `schema`."""

    model_id: str

    def generate(self, name: str, system: str, user: str, schema: type[M]) -> Generation[M]:
        """One structured answer; `name` names the step (for logs and JSON-schema names).
        Raises `LLMError` when no valid answer came after retries."""
        ...

    def close(self) -> None: ...
