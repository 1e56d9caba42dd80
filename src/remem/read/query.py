"""Query analysis: the terms worth matching in full-text search."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)

# Function words carry no topic; matching them only adds noise to BM25's OR query.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours
    yourself yourselves
    s t d ll m re ve
    """.split()  # noqa: SIM905 - a word list reads better as text
)
# (the last line: what is left of "Ana's", "don't", "I'd", "I'll", "I'm", "you're", "I've"
# once split into words)


# Past this many distinct terms a query is a document, not a question: its longest words
# (long words are the rare ones) say most about it. Stores bound one statement too (SQLite:
# 500 terms of a compound SELECT). No LoCoMo question has more than 15 terms.
MAX_TERMS = 64


def search_terms(query: str, cap: int | None = MAX_TERMS) -> list[str]:
    """Distinct lower-case words of the query, stopwords dropped (all kept if nothing is left);
    beyond `cap` of them, the `cap` longest (first said first among equals), in query order."""
    words = list(dict.fromkeys(word.lower() for word in _WORD.findall(query)))
    content = [word for word in words if word not in STOPWORDS] or words
    if cap is None or len(content) <= cap:
        return content
    longest = sorted(range(len(content)), key=lambda index: -len(content[index]))[:cap]
    return [content[index] for index in sorted(longest)]


def as_said_by(query: str, speaker: str) -> str:
    """The query as the named speaker would put it: memories are mostly said in the first
    person ("I started kickboxing"), questions name the speaker ("What has John done?")."""
    name = re.escape(speaker)
    query = re.sub(rf"(?<!\w){name}'s(?!\w)", "my", query, flags=re.IGNORECASE)
    return re.sub(rf"(?<!\w){name}(?!\w)", "I", query, flags=re.IGNORECASE)
