"""Blobs kept in memory between reads (the SQLite store's sentence vectors: reading them
costs ~1 ms a search), within a bound."""

from __future__ import annotations

from collections.abc import Mapping

ENTRY_BYTES = 100  # what an entry costs besides its blob


class Blobs:
    """Blobs (or None: the id has none) by id, up to `limit` bytes in all; past it every
    entry is forgotten and read again as needed."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._blobs: dict[str, bytes | None] = {}
        self._bytes = 0

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._blobs

    def get(self, item_id: str) -> bytes | None:
        return self._blobs.get(item_id)

    def remember(self, blobs: Mapping[str, bytes | None]) -> None:
        size = sum(_size(blob) for blob in blobs.values())
        if self._bytes + size > self._limit:
            self._blobs.clear()
            self._bytes = 0
        for item_id, blob in blobs.items():
            self.forget(item_id)
            self._blobs[item_id] = blob
            self._bytes += _size(blob)

    def forget(self, item_id: str) -> None:
        if item_id in self._blobs:
            self._bytes -= _size(self._blobs.pop(item_id))


def _size(blob: bytes | None) -> int:
    return len(blob or b"") + ENTRY_BYTES
