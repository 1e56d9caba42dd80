"""Test doubles that ship with remem, so tests (yours and ours) never patch import paths."""

from remem.testing.embedders import FailingEmbedder, HashEmbedder
from remem.testing.server import ScriptedOpenAIServer

__all__ = ["FailingEmbedder", "HashEmbedder", "ScriptedOpenAIServer"]
