"""The query's vector and the notes nearest it, found while the full-text search runs.

Embedding the query is about a third of a search, and the full-text search does not need
it (unless it ranks among the dense candidates: see `Retrieval.search_text`). ONNX and
SQLite both let go of the GIL while they work, so on two cores the two overlap.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import TypeVar

from remem.embedders.base import Embedder, Vectors
from remem.errors import EmbedderError
from remem.stores.base import ScoredIds, SearchStore
from remem.types import Scope

T = TypeVar("T")
log = logging.getLogger("remem")


class Dense:
    """The dense retriever of one search (used by its own thread only): the query's
    embedding starts at once, on a thread of its own; the vector search runs when its hits
    are first asked for. (Not `cached_property`: on Python 3.11 it locks the attribute for
    every instance, and one slow embedding would hold up every other search.)"""

    def __init__(
        self, store: SearchStore, embedder: Embedder, query: str, scope: Scope, limit: int
    ) -> None:
        self._store, self._scope, self._limit = store, scope, limit
        self._embedding = started(lambda: _embed(embedder, query))
        self._hits: ScoredIds | None = None

    def vector(self) -> Vectors | None:
        """The query's vector; None when the embedder failed (keywords alone then)."""
        return self._embedding.result()

    def hits(self) -> ScoredIds:
        """The `limit` notes of the scope nearest the query, nearest first."""
        if self._hits is None:
            vector = self.vector()
            found: ScoredIds = []
            if vector is not None:
                found = self._store.search_vector(vector, self._scope, self._limit)
            self._hits = found
        return self._hits

    def ids(self) -> list[str]:
        """The ids of `hits`: what a text search asks for when it ranks among them."""
        return [item_id for item_id, _ in self.hits()]


def started(call: Callable[[], T]) -> Future[T]:
    """`call()` running on a thread of its own, in a copy of the caller's context (a thread
    per call rather than a pool: a pool's idle threads do not survive a fork, and its
    queue would wait for them). Not a daemon: the interpreter waits for it at exit rather
    than tear the model's runtime down under it (a crash). Where no thread can be started,
    it runs at once, on the caller's."""
    future: Future[T] = Future()
    context = contextvars.copy_context()
    # (on its thread, anything is handed to whoever asks for the result)
    run = partial(_settle, future, partial(context.run, call), BaseException)
    try:
        threading.Thread(target=run, name="remem-query-embedding").start()
        return future
    except RuntimeError:  # (no thread to be had, at the process's limit: run it here)
        pass
    # (outside the except block: what goes wrong is not "during" the failed start; an
    # interrupt here is the caller's, and goes up at once)
    _settle(future, partial(context.run, call), Exception)
    return future


def _settle(future: Future[T], call: Callable[[], T], catching: type[BaseException]) -> None:
    """`future` given what `call()` returns, or what it raises of `catching`."""
    try:
        future.set_result(call())
    except catching as error:
        future.set_exception(error)


def _embed(embedder: Embedder, query: str) -> Vectors | None:
    try:
        return embedder.embed(query)
    except EmbedderError as error:
        log.warning("query embedding failed, searching by keyword only: %s", error)
        return None
