"""Knowledge updates: what a person said that a later statement replaced stops outranking
the statement that replaced it.

When the organising pipeline supersedes a fact ("Ana lives in Lisbon" by "Ana lives in
Berlin"), the superseded fact leaves search, but the turn it was extracted from ("I live in
Lisbon, near the river.") is still a verbatim memory, and still the best lexical match for
"where does Ana live?". For a question about the present, such an outdated turn gives up
half its score and the turn that said what replaced it takes at least its whole score, so
the newer statement comes first and the older one stays findable below it. A question about
the past (a date, "did", "used to", "before"...) is answered by what was true then: nothing
moves. `context` marks an outdated turn with when and what replaced it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime

from remem.read.timespan import find_span
from remem.stores.base import Replacement

Scores = dict[str, float]

# The share of its score an outdated turn keeps: enough to stay near what replaced it.
OUTDATED_KEEPS = 0.5
_PAST = re.compile(
    r"\b(did|was|were|had|used to|before|previously|formerly|earlier|originally|first|ago"
    r"|last (year|month|week|time))\b",
    re.IGNORECASE,
)


def asks_about_now(query: str, reference: Callable[[], datetime | None]) -> bool:
    """Whether the query asks what is true now: no date and no past tense."""
    return not _PAST.search(query) and find_span(query, reference) is None


def prefer_replacements(scores: Scores, replaced: Mapping[str, Replacement]) -> Scores:
    """Each outdated turn keeps OUTDATED_KEEPS of its score; the turn that replaced it gets
    at least the outdated turn's whole score."""
    result = dict(scores)
    for turn, replacement in replaced.items():
        score = scores.get(turn)
        if score is None:
            continue
        result[turn] = score * OUTDATED_KEEPS
        result[replacement.turn_id] = max(result.get(replacement.turn_id, 0.0), score)
    return result


def outdated_note(replacement: Replacement, day_format: str) -> str:
    """What `context` adds after an outdated turn."""
    said = replacement.said_at.strftime(day_format)
    return f" (outdated: on {said} this was replaced by: {_quoted(replacement.text)})"


def _quoted(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return f'"{line if len(line) <= limit else line[: limit - 1] + "…"}"'
