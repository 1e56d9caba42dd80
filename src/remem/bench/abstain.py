"""`remem bench locomo --abstain`: can a memory tell a question it has nothing on?

Each sample's memory is asked its own questions and the questions of the other samples,
with their two speakers' names mapped onto this sample's (so "What did Caroline paint?"
reaches Jon and Gina's memory as "What did Jon paint?" - a question about the right
people that this memory cannot answer). For each gate (`context(min_top_score=...)`: no
memory when none reaches it) the report gives the share of foreign questions that get
nothing, and R@10 of the real questions counting only what would be given - hits of at
least the context's per-hit floor, none when the gate closes - against R@10 of every hit.
"""

from __future__ import annotations

import re
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from remem.bench.locomo import Sample
from remem.bench.metrics import expand_to_turns, recall_at
from remem.bench.runner import Report, _ingest
from remem.embedders.base import Embedder
from remem.memory import Memory
from remem.read.relevance import ANSWERABLE, CONTEXT_FLOOR
from remem.stores.sqlite import SQLiteStore
from remem.types import Hit

GATES = (0.0, 0.04, 0.05, 0.06, ANSWERABLE, 0.07, 0.08, 0.1)
K = 10


def run_abstain(
    samples: Sequence[Sample],
    embedder: Embedder,
    progress: Callable[[int], None] | None = None,
    every: int = 3,
) -> dict[str, Any]:
    """Ask each sample's memory its questions and every `every`-th question of the others;
    the foreign share rejected and the real R@10 kept, per gate."""
    real: list[tuple[float, list[float]]] = []  # (R@10 of every hit, R@10 given, per gate)
    foreign: list[float] = []  # the best relevance a foreign question reached
    speakers = {sample.sample_id: speakers_of(sample) for sample in samples}
    with tempfile.TemporaryDirectory(prefix="remem-abstain-") as folder:
        for sample in samples:
            path = Path(folder) / f"{sample.sample_id}.db"
            with Memory(store=SQLiteStore(path), embedder=embedder) as memory:
                dia_of = _ingest(memory, sample, Report(), "session")
                for question in sample.questions:
                    hits = memory.search(question.text, user_id=sample.sample_id, limit=K)
                    real.append(_recalls(hits, dia_of, question.evidence))
                    if progress:
                        progress(1)
                for other in samples:
                    if other is sample:
                        continue
                    for question in other.questions[::every]:
                        asked = mapped(
                            question.text, speakers[other.sample_id], speakers[sample.sample_id]
                        )
                        hits = memory.search(asked, user_id=sample.sample_id, limit=K)
                        foreign.append(max((hit.score for hit in hits), default=0.0))
    return _summary(real, foreign)


def _recalls(
    hits: Sequence[Hit], dia_of: dict[str, str], evidence: Sequence[str]
) -> tuple[float, list[float]]:
    every = expand_to_turns(([dia_of[e] for e in hit.episode_ids] for hit in hits), K)
    best = max((hit.score for hit in hits), default=0.0)
    floored = [hit for hit in hits if hit.score >= CONTEXT_FLOOR]
    given = expand_to_turns(([dia_of[e] for e in hit.episode_ids] for hit in floored), K)
    kept = recall_at(given, evidence, K)
    closed = recall_at([], evidence, K)  # nothing given: 0, or 1 for a question with no evidence
    return recall_at(every, evidence, K), [kept if best >= gate else closed for gate in GATES]


def _summary(real: Sequence[tuple[float, list[float]]], foreign: Sequence[float]) -> dict[str, Any]:
    every = statistics.fmean(r for r, _ in real) if real else 0.0
    gates = []
    for index, gate in enumerate(GATES):
        given = statistics.fmean(kept[index] for _, kept in real) if real else 0.0
        rejected = (
            statistics.fmean(best < gate or best < CONTEXT_FLOOR for best in foreign)
            if foreign
            else 0.0
        )
        gates.append(
            {
                "min_top_score": gate,
                "foreign_rejected": round(rejected, 4),
                "R@10_given": round(given, 4),
                "R@10_ratio": round(given / every, 4) if every else 0.0,
            }
        )
    return {
        "real_questions": len(real),
        "foreign_questions": len(foreign),
        "R@10_every_hit": round(every, 4),
        "gates": gates,
    }


def speakers_of(sample: Sample) -> list[str]:
    """The sample's two speakers, in the order they first speak."""
    names: list[str] = []
    for session in sample.sessions:
        for turn in session.turns:
            if turn.speaker not in names:
                names.append(turn.speaker)
    return names[:2]


def mapped(text: str, theirs: Sequence[str], ours: Sequence[str]) -> str:
    """The question with the other sample's speakers' names replaced by this one's."""
    for name, mine in zip(theirs, ours, strict=False):
        text = re.sub(rf"\b{re.escape(name)}\b", mine, text)
    return text
