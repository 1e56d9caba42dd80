"""Why a hit ranked where it did: what each ranking step added to its score.

Search runs its steps as always; with `explain` a trace also keeps, per step, how much the
step changed each candidate's score (after minus before; a step that scales a score, like
the passage or speaker boost, is counted by what the scaling added). The parts of a hit so
sum to its ranking score (`rank`), which orders the hits; `relevance` is `Hit.score`, from
its best sentence's cosine and the share of the query's words it says (`cosine`,
`coverage`; see `read/relevance`). Nothing is recorded when `explain` is off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from remem.read import rank
from remem.read.rank import Scores
from remem.types import Hit

# The parts of every explanation, in the order the steps run: the three retrievers (BM25
# on the note, BM25 on the note with the one it replies to, dense cosine), the best
# sentence, a question handing on to its answer, neighbours, the passage, the time span
# and the speaker the query names, a time mentioned for a "when" question, a knowledge
# update (`read/updates`).
PARTS = (
    "lexical",
    "lexical_in_context",
    "dense",
    "sentence",
    "question",
    "neighbours",
    "passage",
    "time",
    "speaker",
    "time_mention",
    "update",
)
# ... then, only when a policy is on (`read/policy`), its parts.
POLICY_PARTS = ("recency", "access", "importance")
# a hit's relevance inputs: (best-sentence cosine, share of the query's content words)
Judged = Callable[[Hit], tuple[float, float]]


class Trace:
    """The parts of the candidates' scores, recorded step by step when `on`."""

    def __init__(self, on: bool, policy: bool = False) -> None:
        self.on = on
        self.names = PARTS + POLICY_PARTS if policy else PARTS
        self.parts: dict[str, Scores] = {}

    def fuse(
        self,
        text: Sequence[tuple[str, float]],
        text_in_context: Sequence[tuple[str, float]],
        dense: Sequence[tuple[str, float]],
        weights: rank.Weights,
    ) -> Scores:
        """`rank.fuse`, and each retriever's part of it."""
        if self.on:
            self.parts["lexical"] = rank.fuse(text, [], [], weights)
            self.parts["lexical_in_context"] = rank.fuse([], text_in_context, [], weights)
            self.parts["dense"] = rank.fuse([], [], dense, weights)
        return rank.fuse(text, text_in_context, dense, weights)

    def run(self, name: str, step: Callable[..., Scores], scores: Scores, *args: Any) -> Scores:
        """`step(scores, *args)`, recording what it changed as the part `name`."""
        after = step(scores, *args)
        if self.on:
            self.parts[name] = {
                item_id: value - scores.get(item_id, 0.0)
                for item_id, value in after.items()
                if value != scores.get(item_id, 0.0)
            }
        return after

    def explain(self, hits: list[Hit], ranked: Mapping[str, float], judged: Judged) -> list[Hit]:
        """The hits, each with its parts (see the module docstring)."""
        if not self.on:
            return hits
        return [replace(hit, explanation=self._of(hit, ranked, judged)) for hit in hits]

    def _of(self, hit: Hit, ranked: Mapping[str, float], judged: Judged) -> dict[str, float]:
        parts = {name: self.parts.get(name, {}).get(hit.id, 0.0) for name in self.names}
        cosine, coverage = judged(hit)
        return parts | {
            "rank": ranked.get(hit.id, 0.0),
            "cosine": cosine,
            "coverage": coverage,
            "relevance": hit.score,
        }
