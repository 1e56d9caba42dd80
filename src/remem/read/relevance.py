"""How relevant a hit is, as a number that means the same for every query and memory.

Ranking scores are relative: each retriever is scaled over its own candidates, so a score
says how a note compares with the other candidates of this query, not whether it answers
it. Relevance is absolute: an estimate of the probability that the note bears on the
query, from two things that do not depend on the other notes — how close the note's best
sentence is to the query in meaning (cosine), and what share of the query's content words
the note says. The logistic curve that turns them into a probability was fitted on the
top-10 hits of LoCoMo's tuning half (questions' evidence turns against the other hits):
`python benchmarks/relevance_locomo.py --data ../shared/bench/locomo10.json` fits it again
and prints what each floor keeps and rejects.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence

from remem.read.text_cache import per_short_text

_WORD = re.compile(r"\w+", re.UNICODE)
_SUFFIXES = ("ing", "ed", "es", "s")

# log-odds = COSINE * cosine + COVERAGE * coverage + BIAS (fitted; see the module docstring)
COSINE = 3.02
COVERAGE = 2.01
BIAS = -4.30
# Cosines mean different things in different embedders' spaces: the curve was fitted on
# the bundled model's. With another embedder (or none, when it failed) the words alone
# decide, the cosine taken as that of a typical relevant hit, so the floor does not drop
# everything.
CALIBRATED_MODELS = frozenset({"all-MiniLM-L6-v2-int8"})
UNKNOWN_COSINE = 0.5
# `context` leaves out memories less likely than this to bear on the query: on LoCoMo it
# keeps 99.8% of the evidence among the top 10 hits (both halves) and drops a memory that
# shares no word with the query and is far from it in meaning (cosine below ~0.13). The
# curve cannot yet tell a question this memory cannot answer from one it can well enough
# to go higher: at 0.07, 45% of other samples' questions get nothing, but so do 3-4% of
# the real ones (see the benchmark above).
CONTEXT_FLOOR = 0.02
# `context(min_top_score=...)` gives no memory at all when none reaches it: a question the
# memory has nothing on. Off by default: a question in other words than the memory's ("what
# is Ana's job?" against "I work as a nurse") scores 0.03-0.05 as an unrelated one does.
# On LoCoMo this value rejects ~42% of other samples' questions and keeps ~98% of the
# evidence (`remem bench locomo --abstain` measures it).
ANSWERABLE = 0.065


def relevance(cosine: float, coverage: float) -> float:
    """The estimated probability, in [0, 1], that a note with this best-sentence cosine and
    this share of the query's content words bears on the query."""
    odds = COSINE * cosine + COVERAGE * coverage + BIAS
    return 1.0 / (1.0 + math.exp(-odds))


def coverage(terms: Sequence[str], text: str) -> float:
    """The share of `terms` (lower-case content words) the text says, in any common
    inflection ("paint" matches "painting")."""
    if not terms:
        return 0.0
    said = _said_in(text)
    return sum(_stem(term) in said for term in terms) / len(terms)


@per_short_text
def _said_in(text: str) -> frozenset[str]:
    """What a hit says, as compared (kept: reading the same notes' words again, search
    after search, was a twentieth of a LoCoMo search)."""
    return frozenset(_said(word) for word in _WORD.findall(text))


@functools.lru_cache(maxsize=1 << 16)
def _said(word: str) -> str:
    """A word of a hit, as compared: every hit's every word, every search (a cache: 11% of
    a LoCoMo search's time went to stemming them again)."""
    return _stem(word.lower())


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word
