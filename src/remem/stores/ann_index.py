"""An HNSW graph (usearch) beside the exact index, for memories too big to scan.

Below `ANN_THRESHOLD` vectors search is exact. Above it a graph answers, keyed by the
notes' stable row keys, and is saved beside the SQLite file (`<db>.hnsw` and
`<db>.hnsw.json`, which records the note revision it reflects). On open a saved graph is
loaded and caught up with the notes written since; one that is missing, unreadable, newer
than the file or described by an unreadable sidecar is rebuilt from the vectors (and kept
only in memory if it cannot be written back). A scope too small for the graph to find
enough of its notes among the nearest (fewer than `EXACT_SCOPE_LIMIT` notes) is searched
exactly, so a scoped search always fills its limit.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from remem.embedders.base import Vectors
from remem.stores.vector_index import ExactIndex
from remem.types import Scope

if TYPE_CHECKING:
    from usearch.index import Index

ANN_THRESHOLD = 50_000  # exact search costs ~8 ms here at 50k 384-d vectors
EXACT_SCOPE_LIMIT = 20_000  # scopes up to this size: exact over their rows (~5 ms)
CONNECTIVITY = 16  # graph degree (usearch's default)
EXPANSION_ADD = 128
EXPANSION_SEARCH = 96  # candidates per search; raised to the number asked for
log = logging.getLogger("remem.index")
# note revision -> (note id, still live?) for every note written after it
ChangedSince = Callable[[int], Iterable[tuple[str, bool]]]


class ApproximateIndex:
    """The exact index, plus an HNSW graph once it holds `threshold` vectors."""

    def __init__(
        self,
        path: Path | None,
        threshold: int = ANN_THRESHOLD,
        exact_scope_limit: int = EXACT_SCOPE_LIMIT,
    ) -> None:
        self.exact = ExactIndex()
        self.path = path
        self.threshold = threshold
        self.exact_scope_limit = exact_scope_limit
        self.graph: Index | None = None
        self.revision = 0  # the highest note revision the graph reflects
        self._key_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        # key -> exact-index row (-1: none), so a search maps the graph's answers in numpy
        self._row_by_key: npt.NDArray[np.int64] = np.full(0, -1, dtype=np.int64)
        self._dirty = False

    def __len__(self) -> int:
        return len(self.exact)

    def reserve(self, rows: int) -> None:
        self.exact.reserve(rows)

    def upsert_many(
        self, ids: list[str], matrix: Vectors, scopes: list[Scope], keys: list[int]
    ) -> None:
        for item_id, key in zip(ids, keys, strict=True):
            if self._key_of.get(item_id, key) != key:  # re-added under another key
                self._forget_key(self._key_of[item_id], item_id)
        self.exact.upsert_many(ids, matrix, scopes)
        self._place(keys, self.exact.rows_of(ids))
        self._key_of.update(zip(ids, keys, strict=True))
        self._id_of.update(zip(keys, ids, strict=True))
        if self.graph is not None:
            present = [key for key in keys if self.graph.contains(key)]
            if present:
                self.graph.remove(present)
            self.graph.add(np.array(keys, dtype=np.uint64), matrix)
            self._dirty = True

    def remove(self, item_id: str) -> None:
        self.exact.remove(item_id)
        key = self._key_of.pop(item_id, None)
        if key is not None:
            self._forget_key(key, item_id)

    def _forget_key(self, key: int, item_id: str) -> None:
        """Drop `item_id`'s entry under `key`, unless the key now belongs to another note
        (SQLite gives a purged newest note's row key to the next note)."""
        if self._id_of.get(key) != item_id:
            return
        del self._id_of[key]
        if key < len(self._row_by_key):
            self._row_by_key[key] = -1
        if self.graph is not None and self.graph.contains(key):
            self.graph.remove(key)
            self._dirty = True

    def scores(self, vector: Vectors, ids: Sequence[str]) -> dict[str, float]:
        """The exact cosine of a unit vector with each of these ids that is stored."""
        return self.exact.scores(vector, ids)

    def _place(self, keys: list[int], rows: npt.NDArray[np.int64]) -> None:
        """Record the exact-index row of each key the array can hold (keys are row ids,
        dense from 1; a far larger one is looked up through the dicts instead)."""
        keyed = np.asarray(keys, dtype=np.int64)
        fits = keyed < 8 * (len(self.exact) + 100_000)
        size = len(self._row_by_key)
        needed = int(keyed[fits].max()) + 1 if fits.any() else 0
        if needed > size:
            grown = np.full(max(needed, 2 * size), -1, dtype=np.int64)
            grown[:size] = self._row_by_key
            self._row_by_key = grown
        fits &= keyed < len(self._row_by_key)
        self._row_by_key[keyed[fits]] = rows[fits]

    def _rows_of_keys(self, keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """The exact-index row of each of the graph's keys (-1: unknown). Mapping 2,000
        answers one by one through dicts cost ~3 ms at 1M notes."""
        rows = np.full(len(keys), -1, dtype=np.int64)
        known = keys < len(self._row_by_key)
        rows[known] = self._row_by_key[keys[known].astype(np.int64)]
        for i in np.flatnonzero(~known):  # a key too large for the array, if any
            item_id = self._id_of.get(int(keys[i]))
            rows[i] = self.exact.rows_of([item_id])[0]
        return rows

    def search(self, vector: Vectors, scope: Scope, limit: int) -> list[tuple[str, float]]:
        if self.graph is None:
            return self.exact.search(vector, scope, limit)
        mask = self.exact.mask(scope)
        if mask is None or limit <= 0:
            return []
        in_scope = int(mask.sum())
        if in_scope <= self.exact_scope_limit:
            return self.exact.search_rows(vector, np.flatnonzero(mask), limit)
        total = len(self.graph)
        # ask for enough neighbours that `limit` of them are likely in the scope
        wanted = min(total, max(2 * limit, math.ceil(2 * limit * total / in_scope)))
        while True:
            self.graph.expansion_search = max(EXPANSION_SEARCH, wanted)  # type: ignore[misc]
            matches = self.graph.search(vector, wanted)
            rows = self._rows_of_keys(matches.keys)
            found = np.flatnonzero((rows >= 0) & mask[np.maximum(rows, 0)])
            if len(found) >= limit or wanted >= total:
                distances = matches.distances
                return [
                    (self.exact.id_at(int(rows[i])), 1.0 - float(distances[i]))
                    for i in found[:limit]
                ]
            wanted = min(total, wanted * 4)

    # -- the graph's life --------------------------------------------------------------------

    def open_graph(self, revision: int, changed_since: ChangedSince) -> None:
        """After the exact index is loaded at note `revision`: load the saved graph and
        catch it up, or build it, when the memory is big enough to need one."""
        if len(self.exact) < self.threshold:
            return
        saved = self._load(revision)
        if saved is not None:
            self.graph, since = saved
            for item_id, alive in changed_since(since):
                key = self._key_of.get(item_id)
                if key is not None and self.graph.contains(key):
                    self.graph.remove(key)
                if alive and key is not None:
                    self.graph.add(key, self.exact.vectors([item_id])[0])
            if len(self.graph) == len(self.exact):
                self.revision, self._dirty = revision, since != revision
                return
            log.warning("saved vector graph disagrees with the memory; rebuilding it")
        self._build(revision)

    def grow(self, revision: int) -> None:
        """Build the graph when the memory has just become big enough."""
        self.revision = revision
        if self.graph is None and len(self.exact) >= self.threshold:
            self._build(revision)

    def save(self) -> None:
        """Write the graph beside the database (atomically), if it changed. A graph that
        cannot be written (a folder in its place, a full disk) is only a lost shortcut:
        the memory works without it, and the next open rebuilds it."""
        if self.graph is None or self.path is None or not self._dirty:
            return
        meta = {"revision": self.revision, "ndim": self.graph.ndim, "count": len(self.graph)}
        try:
            partial = self.path.with_name(self.path.name + ".partial")
            self.graph.save(str(partial))
            os.replace(partial, self.path)
            _write_atomically(self.path.with_name(self.path.name + ".json"), json.dumps(meta))
        except (OSError, RuntimeError, ValueError) as error:
            log.warning("cannot save the vector graph %s: %s", self.path, error)
            return
        self._dirty = False

    def _build(self, revision: int) -> None:
        ids = self.exact.ids()
        log.info("building the vector graph over %d notes", len(ids))
        graph = _new_graph(self.exact.dimensions or 0)
        keys = np.array([self._key_of[item_id] for item_id in ids], dtype=np.uint64)
        for start in range(0, len(ids), 50_000):  # bounded copies of the matrix
            chunk = ids[start : start + 50_000]
            graph.add(keys[start : start + len(chunk)], self.exact.vectors(chunk))
        self.graph, self.revision, self._dirty = graph, revision, True
        self.save()

    def _load(self, revision: int) -> tuple[Index, int] | None:
        """The saved graph and the revision it reflects, if usable."""
        if self.path is None or not self.path.exists():
            return None
        try:
            meta = json.loads(self.path.with_name(self.path.name + ".json").read_text())
            saved = meta["revision"]
            if isinstance(saved, bool) or not isinstance(saved, int):
                raise ValueError(f"revision {saved!r} is not a number")
            graph = _usearch().Index.restore(str(self.path))
        # a sidecar edited by hand ({}, [], garbage), or a folder where a file should be
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as error:
            log.warning("cannot read the saved vector graph %s: %s", self.path, error)
            return None
        if graph is None or graph.ndim != self.exact.dimensions or not 0 <= saved <= revision:
            return None  # another embedder, or a graph of a later state of the file
        graph.expansion_search = EXPANSION_SEARCH
        return graph, saved


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def _usearch() -> Any:
    """usearch, imported when a memory first needs a graph (after onnxruntime: importing
    usearch first makes onnxruntime's import segfault)."""
    import onnxruntime  # noqa: F401
    import usearch.index

    return usearch.index


def _new_graph(dimensions: int) -> Index:
    graph: Index = _usearch().Index(
        ndim=dimensions,
        metric="cos",
        dtype="f16",  # half the memory of f32 (recall measured by benchmarks/bench_scale.py)
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
        expansion_search=EXPANSION_SEARCH,
    )
    return graph
