"""The vector side of topics: unit centroids as rows of one matrix for best-match lookups,
and the rebuild's refinement.

A rebuild refines as spherical k-means with a threshold: every note is reassigned to its
most similar centroid, or left out when none is close enough; clusters under the minimum
size are dropped and close centroids merged, for a few rounds. Only a rebuild can do this,
since the incremental state keeps no vector per note."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from remem.profile.topic_state import Cluster

__all__ = ["Chunk", "Pool", "refined"]


class Pool:
    """Unit centroids of some clusters as rows of one matrix, for fast best-match lookups."""

    def __init__(self, dims: int) -> None:
        self.ids: list[str] = []
        self.rows: dict[str, int] = {}
        self.matrix = np.zeros((16, dims), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.ids)

    def fill(self, clusters: Sequence[Cluster]) -> None:
        """Start with these clusters (all at once: one matrix operation, not one per row)."""
        if not clusters:
            return
        totals = np.stack([cluster.total for cluster in clusters])
        norms = np.linalg.norm(totals, axis=1, keepdims=True)
        self.matrix = (totals / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        self.ids = [cluster.id for cluster in clusters]
        self.rows = {cluster_id: row for row, cluster_id in enumerate(self.ids)}

    def put(self, cluster: Cluster) -> None:
        row = self.rows.get(cluster.id)
        if row is None:
            row = len(self.ids)
            if row == len(self.matrix):
                self.matrix = np.concatenate([self.matrix, np.zeros_like(self.matrix)])
            self.ids.append(cluster.id)
            self.rows[cluster.id] = row
        self.matrix[row] = cluster.centroid()

    def drop(self, cluster_id: str) -> None:
        row = self.rows.pop(cluster_id, None)
        if row is None:
            return
        last = len(self.ids) - 1
        if row != last:
            moved = self.ids[last]
            self.ids[row] = moved
            self.rows[moved] = row
            self.matrix[row] = self.matrix[last]
        self.ids.pop()

    def similarities(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        result: npt.NDArray[np.float32] = vectors @ self.matrix[: len(self.ids)].T
        return result

    def best(self, vector: npt.NDArray[np.float32], skip: str | None = None) -> tuple[str, float]:
        """The closest cluster and its similarity ("", -inf when there is none)."""
        if not self.ids:
            return "", -math.inf
        sims = self.similarities(vector[None, :])[0]
        if skip is not None and skip in self.rows:
            sims[self.rows[skip]] = -math.inf
        row = int(np.argmax(sims))
        return self.ids[row], float(sims[row])


class Chunk:
    """Similarities of a chunk's notes to the waiting groups, computed at once; groups begun
    or grown while the chunk is placed are compared afresh."""

    def __init__(self, pool: Pool, matrix: npt.NDArray[np.float32]) -> None:
        self.pool = pool
        self.matrix = matrix
        self.before = list(pool.ids)
        self.column = {cluster_id: column for column, cluster_id in enumerate(self.before)}
        self.sims = pool.similarities(matrix) if self.before else None
        self.fresh: dict[str, None] = {}

    def changed(self, cluster_id: str) -> None:
        self.fresh[cluster_id] = None

    def best(self, index: int) -> tuple[str, float]:
        """The closest waiting group to note `index` ("", -inf when there is none)."""
        group, similarity = "", -math.inf
        if self.sims is not None:
            row = self.sims[index]
            stale = [self.column[c] for c in self.fresh if c in self.column]
            if stale:
                row = row.copy()
                row[stale] = -np.inf
            column = int(np.argmax(row))
            if row[column] > similarity:
                group, similarity = self.before[column], float(row[column])
        if self.fresh:
            ids = list(self.fresh)
            sims = self.pool.matrix[[self.pool.rows[c] for c in ids]] @ self.matrix[index]
            column = int(np.argmax(sims))
            if sims[column] > similarity:
                group, similarity = ids[column], float(sims[column])
        return group, similarity


# -- rebuild: spherical k-means with a threshold -------------------------------------------


def refined(
    matrix: npt.NDArray[np.float32],
    centroids: list[npt.NDArray[np.float32]],
    join: float,
    merge: float,
    min_size: int,
    rounds: int,
) -> npt.NDArray[np.int64]:
    """Each row's cluster (-1: outlier) after reassigning every note to its best centroid,
    dropping clusters under `min_size` and merging close centroids, a few rounds."""
    current = np.stack(centroids)
    labels = np.full(len(matrix), -1, dtype=np.int64)
    for _ in range(max(rounds, 1)):
        labels = _assign(matrix, current, join)
        sums, counts = _sums(matrix, labels, len(current))
        keep = counts >= min_size
        sums, counts = sums[keep], counts[keep]
        if not len(sums):
            return np.full(len(matrix), -1, dtype=np.int64)
        current = _merged(sums, counts, merge)
    labels = _assign(matrix, current, join)
    _, counts = _sums(matrix, labels, len(current))
    small = np.flatnonzero(counts < min_size)
    labels[np.isin(labels, small)] = -1
    return labels


def _assign(
    matrix: npt.NDArray[np.float32], centroids: npt.NDArray[np.float32], threshold: float
) -> npt.NDArray[np.int64]:
    labels = np.empty(len(matrix), dtype=np.int64)
    for start in range(0, len(matrix), 8192):
        sims = matrix[start : start + 8192] @ centroids.T
        best = sims.argmax(axis=1)
        found = sims[np.arange(len(best)), best] >= threshold
        labels[start : start + 8192] = np.where(found, best, -1)
    return labels


def _sums(
    matrix: npt.NDArray[np.float32], labels: npt.NDArray[np.int64], size: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    placed = labels >= 0
    sums = np.zeros((size, matrix.shape[1]), dtype=np.float64)
    if np.any(placed):
        order = np.argsort(labels[placed], kind="stable")
        sorted_labels = labels[placed][order]
        starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
        sums[sorted_labels[starts]] = np.add.reduceat(matrix[placed][order], starts, axis=0)
    counts = np.bincount(labels[placed], minlength=size).astype(np.int64)
    return sums, counts


def _merged(
    sums: npt.NDArray[np.float64], counts: npt.NDArray[np.int64], threshold: float
) -> npt.NDArray[np.float32]:
    """Unit centroids, those closer than `threshold` merged (largest first absorbs)."""
    order = np.argsort(-counts, kind="stable")
    sums, counts = sums[order].copy(), counts[order]
    alive = np.ones(len(sums), dtype=bool)
    units = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    for index in range(len(sums)):
        if not alive[index]:
            continue
        close = (units @ units[index] >= threshold) & alive
        close[index] = False
        if np.any(close):
            sums[index] += sums[close].sum(axis=0)
            alive[close] = False
            units[index] = sums[index] / max(float(np.linalg.norm(sums[index])), 1e-12)
    kept = sums[alive]
    result: npt.NDArray[np.float32] = (
        kept / np.maximum(np.linalg.norm(kept, axis=1, keepdims=True), 1e-12)
    ).astype(np.float32)
    return result
