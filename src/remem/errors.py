"""The exceptions remem raises. Catch `RememError` to catch them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from remem.llms.base import Usage

__all__ = [
    "ConfigError",
    "ConflictError",
    "EmbedderError",
    "EmptyContentError",
    "InvalidContentError",
    "InvalidDateError",
    "InvalidInputError",
    "LLMError",
    "NotFoundError",
    "RememError",
    "ScopeRequiredError",
    "StoreError",
]


class RememError(Exception):
    """Base class of every error remem raises on purpose."""


class InvalidInputError(RememError, ValueError):
    """The caller passed something remem cannot accept."""


class ScopeRequiredError(InvalidInputError):
    """Neither user_id, agent_id nor session_id was given."""

    def __init__(self, operation: str, names: str = "user_id, agent_id or session_id") -> None:
        super().__init__(f"{operation} needs a scope: pass at least one of {names}")


class EmptyContentError(InvalidInputError):
    """The content to remember is empty or only whitespace."""


class InvalidContentError(InvalidInputError):
    """The content is not a string or a list of chat messages."""


class InvalidDateError(InvalidInputError):
    """A date could not be understood."""


class NotFoundError(RememError, KeyError):
    """No memory, episode or job has this id (in this scope)."""

    def __init__(self, kind: str, item_id: str) -> None:
        super().__init__(f"no {kind} with id {item_id!r}")
        self.kind = kind
        self.item_id = item_id

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0])


class ConflictError(RememError):
    """A write expected a version of a memory that is no longer the current one."""

    def __init__(self, item_id: str, expected: int, current: int) -> None:
        super().__init__(
            f"memory {item_id!r} is at version {current}, not {expected}: read it again"
            " and apply the change to what it says now"
        )
        self.item_id = item_id
        self.expected = expected
        self.current = current


class ConfigError(RememError):
    """The configuration is incomplete or contradicts the stored memory."""


class EmbedderError(RememError):
    """The embedding model failed or answered something unusable."""


class LLMError(RememError):
    """The language model failed, or answered nothing valid, after retries."""

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage  # what the failed attempts cost


class StoreError(RememError):
    """The database failed or holds something unexpected."""
