"""FTS5's own bm25, for a bounded set of candidates (see `lexical` for when and why).

A candidate scores here what FTS5 would have given it: its formula, over the table's own
statistics (rows and average length from FTS5's records, each row's length from its
docsize record, each term's rows counted, or for a common term sampled among the newest
rows), its words as FTS5's own tokenizer makes them (run on an in-memory table).
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from remem.stores.lexical import Budget

# A common term's frequency is counted among this many of the newest rows and scaled up.
SAMPLE_ROWS = 50_000
# Sampled frequencies are reused until the table has grown or shrunk by this share.
STALE_SHARE = 0.1
FREQUENCY_CACHE = 50_000
K1, B = 1.2, 0.75  # FTS5's bm25 constants
TOKENIZE = "porter unicode61 remove_diacritics 2"  # as the schema's FTS5 tables
_WORD = re.compile(r"[a-z0-9]+")  # a word of lower-cased ASCII text, as FTS5 splits it
READ_CHUNK = 900  # rowids bound in one statement (SQLite allows 32766)
AVERAGES_ROWID = 1  # FTS5's record of the row count and each column's token total

Read = Callable[[str, Sequence[Any]], list[sqlite3.Row]]


@dataclass(frozen=True)
class Plan:
    """How one query is ranked: exactly by FTS5, or over candidates scored here."""

    exact: bool
    rare: tuple[str, ...] = ()  # the terms whose rows propose candidates
    weighed: tuple[tuple[str, float], ...] = ()  # each term's token and FTS5's idf of it
    average_length: float = 0.0


EXACT = Plan(exact=True)


class Lexicon:
    """What ranking a query over one FTS5 table needs: its statistics and each query
    term's frequency (a common term's sampled once and cached: it drifts slowly)."""

    def __init__(self, read: Read, table: str, budget: Budget) -> None:
        self._read, self._table, self._budget = read, table, budget
        self._sampled: dict[str, tuple[int, int]] = {}  # term -> (rows holding it, at rows)
        self._tokenizer = Tokenizer()

    def plan(self, terms: Sequence[str]) -> Plan:
        rows, tokens = self._totals()
        if rows <= self._budget.exact:
            return EXACT
        stems = self._tokenizer.tokens(terms)
        if any(len(stem) != 1 for stem in stems):
            return EXACT  # (a term of several tokens is a phrase: FTS5's job)
        frequency = {term: self._frequency(term, rows) for term in terms}
        if self._budget.affordable(frequency):
            return EXACT
        weighed = tuple(
            (stem[0], _idf(rows, frequency[term])) for term, stem in zip(terms, stems, strict=True)
        )
        return Plan(False, tuple(self._budget.rarest(frequency)), weighed, tokens / rows)

    def score(
        self, plan: Plan, rowids: Iterable[int], weights: Sequence[Sequence[float]]
    ) -> dict[int, list[float]]:
        """rowid -> its bm25 for each weighting of the columns (as FTS5's `bm25(t, w...)`,
        but positive), for the rows among `rowids` that hold a term of the query.

        An ASCII text's words are found as FTS5 splits them (runs of letters and digits);
        only those that hold a wanted token less its last letter (stemming changes a
        word's ending, and at most the one letter before what it keeps: "happy" ->
        "happi") go to FTS5's tokenizer, all at once. Other texts go to it whole."""
        wanted = {stem for stem, _ in plan.weighed}
        rows = list(self._rows_of(sorted(set(rowids))))
        near = [[_words_near(text or "", wanted) for text in row[1:-1]] for row in rows]
        words = list(
            dict.fromkeys(w for columns in near for found in columns if found for w in found)
        )
        others = [
            text
            for row, columns in zip(rows, near, strict=True)
            for text, ascii in zip(row[1:-1], columns, strict=True)
            if ascii is None
        ]
        tokens = self._tokenizer.tokens([*words, *others])
        token_of = {
            word: found[0] if len(found) == 1 else ""
            for word, found in zip(words, tokens, strict=False)
        }
        whole = iter(tokens[len(words) :])
        scored: dict[int, list[float]] = {}
        for row, columns in zip(rows, near, strict=True):
            found = [
                Counter(
                    token
                    for token in (next(whole) if ascii is None else map(token_of.get, ascii))
                    if token in wanted
                )
                for ascii in columns
            ]
            if any(found):
                norm = K1 * (1 - B + B * sum(_varints(row[-1])) / plan.average_length)
                scored[row[0]] = [_bm25(plan, found, each, norm) for each in weights]
        return scored

    def _rows_of(self, rowids: Sequence[int]) -> Iterator[Sequence[Any]]:
        """Each row's columns and its token counts (FTS5's docsize record)."""
        for first in range(0, len(rowids), READ_CHUNK):
            chunk = rowids[first : first + READ_CHUNK]
            yield from self._read(
                f"SELECT f.rowid, f.*, d.sz FROM {self._table} f JOIN {self._table}_docsize d"
                f" ON d.id = f.rowid WHERE f.rowid IN ({', '.join('?' * len(chunk))})",
                chunk,
            )

    def _totals(self) -> tuple[int, int]:
        """Rows in the table and tokens in all its columns, from FTS5's averages record."""
        found = self._read(f"SELECT block FROM {self._table}_data WHERE id = ?", (AVERAGES_ROWID,))
        if not found or not found[0][0]:
            return 0, 0
        rows, *columns = _varints(found[0][0])
        return rows, sum(columns)

    def _frequency(self, term: str, rows: int) -> int:
        """Rows holding the term: counted when few (cheap, and exact as the table
        changes), else sampled and reused while the table stays about the same size."""
        match = phrase(term)
        count = self._count(f"{self._table} MATCH ?", [match], self._budget.counted + 1)
        if count <= self._budget.counted:
            return count
        known = self._sampled.get(term)
        if known is not None and abs(rows - known[1]) <= STALE_SHARE * known[1]:
            return known[0]
        count = self._sample(match, rows)
        if len(self._sampled) >= FREQUENCY_CACHE:  # bounded: forget, sample again
            self._sampled.clear()
        self._sampled[term] = (count, rows)
        return count

    def _sample(self, match: str, rows: int) -> int:
        """Rows holding a common term: its share of the newest SAMPLE_ROWS rows, scaled."""
        newest = self._read(
            f"SELECT id FROM {self._table}_docsize ORDER BY id DESC LIMIT 1 OFFSET ?",
            (min(rows, SAMPLE_ROWS) - 1,),
        )
        since = newest[0][0] if newest else 0
        hits = self._count(f"{self._table} MATCH ? AND rowid >= ?", [match, since], None)
        return max(self._budget.counted + 1, round(hits * rows / max(1, min(rows, SAMPLE_ROWS))))

    def _count(self, where: str, params: list[object], cap: int | None) -> int:
        limit = "" if cap is None else f" LIMIT {int(cap)}"
        sql = f"SELECT count(*) FROM (SELECT 1 FROM {self._table} WHERE {where}{limit})"
        return int(self._read(sql, params)[0][0])


def match_any(terms: Iterable[str]) -> str:
    """An FTS5 query matching a row that holds any of the terms."""
    return " OR ".join(phrase(term) for term in terms)


class Tokenizer:
    """FTS5's own tokenizer (the schema's `tokenize` option), run on an in-memory table:
    the tokens of each text exactly as FTS5 indexes them."""

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._db.execute(f"CREATE VIRTUAL TABLE t USING fts5 (body, tokenize = '{TOKENIZE}')")
        self._db.execute("CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance')")
        self._lock = threading.Lock()

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        found: list[list[str]] = [[] for _ in texts]
        if not texts:
            return found
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT INTO t (rowid, body) VALUES (?, ?)", enumerate(texts))
                for term, doc in self._db.execute("SELECT term, doc FROM v ORDER BY doc, offset"):
                    found[doc].append(term)
            finally:
                self._db.execute("ROLLBACK")  # nothing stays: the table is empty again
        return found


def _words_near(text: str, wanted: set[str]) -> list[str] | None:
    """The lower-cased words of an ASCII text that begin with a wanted token less its
    last letter (or all of a token of one or two letters); None for other texts."""
    if not text.isascii():
        return None
    text = text.lower()
    words: dict[int, str] = {}  # by where they start: two tokens may find the same word
    for stem in wanted:
        needle = stem[:-1] if len(stem) > 2 else stem
        at = text.find(needle)
        while at >= 0:
            if at == 0 or not text[at - 1].isalnum():
                word = _WORD.match(text, at)
                if word:
                    words[at] = word.group()
            at = text.find(needle, at + 1)
    return list(words.values())


def phrase(term: str) -> str:
    """One term as an FTS5 string: quoted, so nothing in it is query syntax."""
    return '"' + term.replace('"', '""') + '"'


def _bm25(
    plan: Plan, found: Sequence[Mapping[str, int]], weights: Sequence[float], norm: float
) -> float:
    """FTS5's bm25 of one row: each query term's idf times its saturated, length-normalised
    frequency, the frequency summed over the columns by their weights."""
    score = 0.0
    for stem, idf in plan.weighed:
        freq = sum(
            weight * column.get(stem, 0) for weight, column in zip(weights, found, strict=True)
        )
        if freq:
            score += idf * freq * (K1 + 1) / (freq + norm)
    return score


def _idf(rows: int, holding: int) -> float:
    holding = min(holding, rows)  # (a count may come from a moment other than `rows`)
    idf = math.log((rows - holding + 0.5) / (holding + 0.5))
    return idf if idf > 0 else 1e-6  # as FTS5: a term in most rows still counts a little


def _varints(blob: bytes) -> list[int]:
    """SQLite's variable-length integers, one after another."""
    values, at = [], 0
    while at < len(blob):
        value = 0
        for index in range(9):
            byte = blob[at]
            at += 1
            if index == 8:  # the ninth byte carries all 8 bits
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        values.append(value)
    return values
