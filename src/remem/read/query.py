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
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def search_terms(query: str) -> list[str]:
    """Distinct lower-case words of the query, stopwords dropped (all kept if nothing is left)."""
    words = list(dict.fromkeys(word.lower() for word in _WORD.findall(query)))
    content = [word for word in words if word not in STOPWORDS]
    return content or words


def as_said_by(query: str, speaker: str) -> str:
    """The query as the named speaker would put it: memories are mostly said in the first
    person ("I started kickboxing"), questions name the speaker ("What has John done?")."""
    name = re.escape(speaker)
    query = re.sub(rf"(?<!\w){name}'s(?!\w)", "my", query, flags=re.IGNORECASE)
    return re.sub(rf"(?<!\w){name}(?!\w)", "I", query, flags=re.IGNORECASE)
