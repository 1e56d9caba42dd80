"""The words of a topic: terms of a note, bounded term counts, and the words that set a
topic's notes apart from the rest of the memory (weighted log-odds, Monroe et al. 2008)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from remem.read import query

__all__ = ["STOPWORDS", "distinctive", "note_terms", "prune", "shortened"]

# Letters only: numbers, dates and ids say little about a theme and would swamp it.
_APOSTROPHE = "\u2019"  # the typographic apostrophe, as in "it\u2019s"
_WORD = re.compile(rf"[^\W\d_]+(?:['{_APOSTROPHE}][^\W\d_]+)?", re.UNICODE)
_CONTRACTION = re.compile(r"'(?:s|t|re|ve|ll|d|m)$")
# A note past this many characters is read only so far: terms of a book say nothing more.
MAX_TEXT = 20_000
MAX_TERMS_PER_NOTE = 64
MIN_LENGTH = 3
MAX_LENGTH = 30

# Function words carry no theme (search's list), nor do chat fillers.
STOPWORDS = query.STOPWORDS | frozenset(
    """
    also always another anything anyway around away back cause come coming definitely doesn
    don done else even ever every everything feel feeling felt find get gets getting give
    glad go goes going gonna good got great guess hey hi hmm i'd i'll i'm i've it's know
    kind let let's like little lot lots made make makes making many may maybe mean might
    much must need never new next nice oh okay one ones pretty quite rather really right
    said say says see seem seems since something sometimes still stuff sure take tell thank
    thanks that's thing things think though thought time today totally try trying two us use
    used want wanted way well went what's whole wow yeah yes yet you'd you'll you're you've
    amazing awesome cool hear heard look looking looks lovely sounds sound super thats whats
    wanna yea yep
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def note_terms(text: str) -> frozenset[str]:
    """The distinct content words of a text, lower case, stop words and odd tokens out."""
    found: dict[str, None] = {}
    for word in _WORD.findall(text[:MAX_TEXT].lower()):
        if "'" in word or _APOSTROPHE in word:
            word = _CONTRACTION.sub("", word.replace(_APOSTROPHE, "'"))
            if "'" in word:
                continue
        if MIN_LENGTH <= len(word) <= MAX_LENGTH and word not in STOPWORDS:
            found[word] = None
            if len(found) >= MAX_TERMS_PER_NOTE:
                break
    return frozenset(found)


def prune(counts: dict[str, float], cap: int) -> None:
    """Keep the counts bounded: past `cap` terms, the rarest are dropped down to 3/4 of it
    (ties broken by the word, so every process prunes alike)."""
    if len(counts) <= cap:
        return
    keep = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: cap * 3 // 4]
    counts.clear()
    counts.update(keep)


def distinctive(
    inside: Mapping[str, float],
    everywhere: Mapping[str, float],
    *,
    limit: int = 8,
    min_count: float = 2.0,
    min_score: float = 1.0,
) -> list[str]:
    """The words of `inside` (a topic's term counts) that set it apart from the rest of
    `everywhere` (the whole memory's), best first: z-scores of the log-odds ratio with an
    informative prior from the whole memory. A word as common elsewhere scores about 0."""
    inside_total = sum(inside.values())
    all_total = max(sum(everywhere.values()), inside_total)
    if inside_total <= 0:
        return []
    rest_total = max(all_total - inside_total, 0.0)
    if rest_total <= 0:  # nothing else to compare with: the topic's most frequent words
        frequent = sorted(inside.items(), key=lambda item: (-item[1], item[0]))
        return _without_plurals((t for t, count in frequent if count >= min_count), limit)
    prior_total = 10.0 + 0.01 * all_total  # pseudo-counts: enough to calm rare words
    scored = []
    for term, count in inside.items():
        if count < min_count:
            continue
        overall = max(everywhere.get(term, 0.0), count)
        prior = prior_total * overall / all_total
        rest = max(overall - count, 0.0)
        score = _log_odds_z(count, inside_total, rest, rest_total, prior, prior_total)
        if score > min_score:
            scored.append((score, term))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return _without_plurals((term for _, term in scored), limit)


def _log_odds_z(
    count: float, total: float, rest: float, rest_total: float, prior: float, prior_total: float
) -> float:
    inside_odds = (count + prior) / max(total + prior_total - count - prior, 1e-9)
    rest_odds = (rest + prior) / max(rest_total + prior_total - rest - prior, 1e-9)
    delta = math.log(inside_odds) - math.log(rest_odds)
    return delta / math.sqrt(1.0 / (count + prior) + 1.0 / (rest + prior))


def _without_plurals(terms: Iterable[str], limit: int) -> list[str]:
    """Terms in order, without one that is another's plural ("dog" and "dogs")."""
    chosen: list[str] = []
    seen: set[str] = set()
    for term in terms:
        if term in seen or term.removesuffix("s") in seen or term + "s" in seen:
            continue
        chosen.append(term)
        seen.add(term)
        if len(chosen) >= limit:
            break
    return chosen


def shortened(text: str, limit: int) -> str:
    """The text on one line, cut at a word boundary with an ellipsis when longer."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut + "…"
