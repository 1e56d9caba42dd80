"""An exact in-memory vector index with scope filtering, rebuilt from the store on open.

Rows live in one float32 matrix that grows by doubling; a removed row is only marked dead
and its slot reused, so add, update and delete are O(1) and search is one matrix-vector
product plus a mask. Exact search stays under a few milliseconds to ~100k rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from remem.embedders.base import Vectors
from remem.types import Scope

SCOPE_FIELDS = ("user_id", "agent_id", "session_id", "tenant")
_NONE = -1  # code of an unset scope field


class ExactIndex:
    """Cosine (dot product of unit vectors) search over live rows of one scope."""

    def __init__(self, dimensions: int | None = None) -> None:
        self.dimensions = dimensions
        self._matrix: Vectors = np.zeros((0, dimensions or 0), dtype=np.float32)
        self._scopes: npt.NDArray[np.int32] = np.zeros((0, len(SCOPE_FIELDS)), dtype=np.int32)
        self._alive: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self._ids: list[str | None] = []
        self._row_of: dict[str, int] = {}
        self._free: list[int] = []
        self._codes: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._row_of)

    def upsert(self, item_id: str, vector: Vectors, scope: Scope) -> None:
        """Add a row, or replace the row with this id."""
        if self.dimensions is None:
            self._reset(vector.shape[0])
        if vector.shape != (self.dimensions,):
            raise ValueError(f"vector has shape {vector.shape}, index holds {self.dimensions}-d")
        row = self._row_of.get(item_id)
        if row is None:
            row = self._free.pop() if self._free else self._grow()
            self._row_of[item_id] = row
            self._ids[row] = item_id
        self._matrix[row] = vector
        self._scopes[row] = [self._code(v) for v in _fields(scope)]
        self._alive[row] = True

    def upsert_many(self, ids: list[str], matrix: Vectors, scopes: list[Scope]) -> None:
        """Add many rows at once (opening a memory loads every vector this way)."""
        if not ids:
            return
        if self.dimensions is None:
            self._reset(matrix.shape[1])
        if len(self._free) or any(item_id in self._row_of for item_id in ids):
            for item_id, vector, scope in zip(ids, matrix, scopes, strict=True):
                self.upsert(item_id, vector, scope)
            return
        start = len(self._ids)
        self.reserve(start + len(ids))
        end = start + len(ids)
        self._matrix[start:end] = matrix
        self._scopes[start:end] = [[self._code(v) for v in _fields(s)] for s in scopes]
        self._alive[start:end] = True
        self._ids.extend(ids)
        self._row_of.update(zip(ids, range(start, end), strict=True))

    def remove(self, item_id: str) -> None:
        """Forget a row; unknown ids are ignored."""
        row = self._row_of.pop(item_id, None)
        if row is not None:
            self._alive[row] = False
            self._ids[row] = None
            self._free.append(row)

    def search(self, vector: Vectors, scope: Scope, limit: int) -> list[tuple[str, float]]:
        """The `limit` rows in scope with the highest dot product, best first."""
        if not self._row_of or limit <= 0:
            return []
        mask = self.mask(scope)
        if mask is None:
            return []
        return self.search_rows(vector, np.flatnonzero(mask), limit)

    def search_rows(
        self, vector: Vectors, rows: npt.NDArray[np.intp], limit: int
    ) -> list[tuple[str, float]]:
        """The `limit` of these rows with the highest dot product, best first."""
        count = min(limit, len(rows))
        if count <= 0:
            return []
        # all rows: one product over the matrix; a few: gather them first
        if len(rows) == len(self._ids):
            scores = self._matrix[: len(self._ids)] @ vector
        else:
            scores = np.full(len(self._ids), -np.inf, dtype=np.float32)
            scores[rows] = self._matrix[rows] @ vector
        top = np.argpartition(-scores, count - 1)[:count]
        top = top[np.argsort(-scores[top])]
        return [(self._ids[row] or "", float(scores[row])) for row in top]

    def row_of(self, item_id: str) -> int | None:
        return self._row_of.get(item_id)

    def rows_of(self, ids: Sequence[str | None]) -> npt.NDArray[np.int64]:
        """The row of each id, -1 where an id (or None) is not stored."""
        row_of = self._row_of.get
        rows = (-1 if i is None else row_of(i, -1) for i in ids)
        return np.fromiter(rows, dtype=np.int64, count=len(ids))

    def id_at(self, row: int) -> str:
        """The id stored in a live row."""
        item_id = self._ids[row]
        if item_id is None:
            raise KeyError(f"row {row} is free")
        return item_id

    def vectors(self, ids: list[str]) -> Vectors:
        """The stored vectors of these ids, in order."""
        return self._matrix[[self._row_of[item_id] for item_id in ids]]

    def scores(self, vector: Vectors, ids: Sequence[str]) -> dict[str, float]:
        """The cosine of a unit vector with each of these ids that is stored."""
        known = [item_id for item_id in ids if item_id in self._row_of]
        if not known:
            return {}
        return dict(zip(known, (self.vectors(known) @ vector).tolist(), strict=True))

    def ids(self) -> list[str]:
        """Every live id."""
        return list(self._row_of)

    def mask(self, scope: Scope) -> npt.NDArray[np.bool_] | None:
        """Which rows are live and in the scope (None: nothing ever stored in it)."""
        size = len(self._ids)
        mask = self._alive[:size].copy()
        for column, value in enumerate(_fields(scope)):
            if value is None:
                continue
            code = self._codes.get(value)
            if code is None:
                return None  # nothing was ever stored under this scope value
            mask &= self._scopes[:size, column] == code
        return mask

    def _code(self, value: str | None) -> int:
        if value is None:
            return _NONE
        return self._codes.setdefault(value, len(self._codes))

    def _reset(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self._matrix = np.zeros((self._alive.shape[0], dimensions), dtype=np.float32)

    def _grow(self) -> int:
        row = len(self._ids)
        self.reserve(row + 1)
        self._ids.append(None)
        return row

    def reserve(self, rows: int) -> None:
        """Make room for `rows` rows without further copies (growing copies everything)."""
        if rows > self._alive.shape[0]:
            capacity = max(1024, 2 * self._alive.shape[0], rows)
            self._matrix = _resized(self._matrix, capacity)
            self._scopes = _resized(self._scopes, capacity)
            self._alive = _resized(self._alive, capacity)


def _fields(scope: Scope) -> Iterable[str | None]:
    return (getattr(scope, name) for name in SCOPE_FIELDS)


A = TypeVar("A", bound=npt.NDArray[Any])


def _resized(array: A, rows: int) -> A:
    grown = np.zeros((rows, *array.shape[1:]), dtype=array.dtype)
    grown[: array.shape[0]] = array
    return cast(A, grown)
