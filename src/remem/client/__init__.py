"""Clients of a remote `remem serve`, with `Memory`'s API: `Client` (blocking) and
`AsyncClient` (coroutines)."""

from remem.client.asynchronous import AsyncClient
from remem.client.sync import Client

__all__ = ["AsyncClient", "Client"]
