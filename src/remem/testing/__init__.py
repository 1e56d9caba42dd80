"""Test doubles that ship with remem, so tests (yours and ours) never patch import paths."""

from remem.testing.embedders import FailingEmbedder, HashEmbedder
from remem.testing.script import OpenAIScript
from remem.testing.server import ScriptedOpenAIServer
from remem.testing.transport import ScriptedTransport

__all__ = [
    "FailingEmbedder",
    "HashEmbedder",
    "OpenAIScript",
    "ScriptedOpenAIServer",
    "ScriptedTransport",
]
