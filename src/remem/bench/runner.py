"""Run a LoCoMo-format dataset through `Memory` exactly as a user would, and score it."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remem.bench.locomo import CATEGORIES, Question, Sample, Turn
from remem.bench.metrics import expand_to_turns, ndcg_at, percentile, recall_at
from remem.embedders.base import Embedder
from remem.errors import InvalidInputError
from remem.memory import Memory
from remem.read.rank import DEFAULT, Weights
from remem.stores.sqlite import SQLiteStore

KS = (5, 10, 25, 50)
# How the turns are added (issue #18): a session per `add` with its session id (what a
# chat app that knows its sessions does), a turn per `add` with the session id, or a turn
# per `add` with the user id only (how most apps call `add`).
FEEDS = ("session", "turn+session", "turn")
# The samples tuning may look at; the rest are held out (issue #3).
TUNING_SAMPLES = ("conv-26", "conv-30", "conv-41", "conv-42", "conv-43")


@dataclass(frozen=True)
class QuestionResult:
    sample_id: str
    category: int
    recall: dict[int, float]
    ndcg10: float
    tokens10: int
    latency_ms: float
    embed_ms: float  # embedding the question once, alone: the unit search latency is read in


@dataclass
class Report:
    questions: list[QuestionResult] = field(default_factory=list)
    ingest_seconds: float = 0.0
    turns: int = 0
    merged: int | None = None  # notes consolidation merged, when the run consolidated
    consolidate_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Overall, per half and per category scores, with cost and latency."""
        groups: dict[str, list[QuestionResult]] = {"overall": self.questions}
        for half, tuning in (("tuning", True), ("held-out", False)):
            groups[half] = [r for r in self.questions if (r.sample_id in TUNING_SAMPLES) == tuning]
        for category in sorted({r.category for r in self.questions}):
            name = f"{category} {CATEGORIES.get(category, '?')}"
            groups[name] = [r for r in self.questions if r.category == category]
        groups = {name: results for name, results in groups.items() if results}
        latencies = [r.latency_ms for r in self.questions]
        embedding = percentile([r.embed_ms for r in self.questions], 50)
        return {
            "scores": {name: _scores(results) for name, results in groups.items()},
            "mean_tokens_top10": statistics.fmean(r.tokens10 for r in self.questions)
            if self.questions
            else 0.0,
            "ingest_seconds": round(self.ingest_seconds, 2),
            "ingest_turns_per_s": round(self.turns / self.ingest_seconds, 1)
            if self.ingest_seconds
            else 0.0,
            "search_p50_ms": round(percentile(latencies, 50), 2),
            "search_p95_ms": round(percentile(latencies, 95), 2),
            "query_embedding_p50_ms": round(embedding, 2),
            # machines here vary ~3x from day to day: latency is stated as this ratio too
            "search_p50_per_embedding": round(percentile(latencies, 50) / embedding, 2)
            if embedding
            else 0.0,
            "questions": len(self.questions),
            **({} if self.merged is None else self._consolidated()),
        }

    def _consolidated(self) -> dict[str, Any]:
        seconds = round(self.consolidate_seconds, 2)
        return {"consolidation": {"merged_notes": self.merged, "seconds": seconds}}


def _scores(results: Sequence[QuestionResult]) -> dict[str, float]:
    scores = {f"R@{k}": round(statistics.fmean(r.recall[k] for r in results), 4) for k in KS}
    scores["NDCG@10"] = round(statistics.fmean(r.ndcg10 for r in results), 4)
    scores["n"] = len(results)
    return scores


def run(
    samples: Sequence[Sample],
    embedder: Embedder,
    count_tokens: Callable[[Sequence[str]], int],
    progress: Callable[[int], None] | None = None,
    ranking: Weights = DEFAULT,
    feed: str = "session",
    consolidate: bool = False,
) -> Report:
    """Build one fresh memory per sample, ask every question, score the turns returned
    (with `consolidate`, after merging near-duplicate notes without a model)."""
    return run_variants(samples, embedder, count_tokens, [ranking], progress, feed, consolidate)[0]


def run_variants(
    samples: Sequence[Sample],
    embedder: Embedder,
    count_tokens: Callable[[Sequence[str]], int],
    rankings: Sequence[Weights],
    progress: Callable[[int], None] | None = None,
    feed: str = "session",
    consolidate: bool = False,
) -> list[Report]:
    """`run` for several rankings at once: each sample is ingested once, asked per ranking."""
    if feed not in FEEDS:
        raise InvalidInputError(f"unknown feed {feed!r}; choose one of {', '.join(FEEDS)}")
    reports = [Report() for _ in rankings]
    with tempfile.TemporaryDirectory(prefix="remem-bench-") as folder:
        for sample in samples:
            path = Path(folder) / f"{sample.sample_id}.db"
            with Memory(store=SQLiteStore(path), embedder=embedder) as memory:
                dia_of = _ingest(memory, sample, reports[0], feed)
                if consolidate:
                    _consolidate(memory, sample.sample_id, reports[0])
            for report in reports[1:]:
                report.ingest_seconds, report.turns = reports[0].ingest_seconds, reports[0].turns
                report.merged = reports[0].merged
            for ranking, report in zip(rankings, reports, strict=True):
                with Memory(store=SQLiteStore(path), embedder=embedder, ranking=ranking) as memory:
                    for question in sample.questions:
                        report.questions.append(
                            _ask(memory, sample.sample_id, question, dia_of, count_tokens)
                        )
                        if progress:
                            progress(1)
    return reports


def _ingest(memory: Memory, sample: Sample, report: Report, feed: str) -> dict[str, str]:
    """Add every turn as one message, fed as `feed` says; return episode id -> turn id."""
    dia_of: dict[str, str] = {}
    start = time.perf_counter()
    for session in sample.sessions:
        session_id = f"{sample.sample_id}/session_{session.number}"
        calls = [session.turns] if feed == "session" else [(turn,) for turn in session.turns]
        for turns in calls:
            if not turns:
                continue
            result = memory.add(
                [_message(turn) for turn in turns],
                user_id=sample.sample_id,
                session_id=None if feed == "turn" else session_id,
                occurred_at=session.occurred_at,
            )
            dia_of.update(zip(result.episode_ids, (t.dia_id for t in turns), strict=True))
    report.ingest_seconds += time.perf_counter() - start
    report.turns += len(dia_of)
    return dia_of


def _consolidate(memory: Memory, sample_id: str, report: Report) -> None:
    start = time.perf_counter()
    merged = memory.consolidate(user_id=sample_id, model="never").merged
    report.consolidate_seconds += time.perf_counter() - start
    report.merged = (report.merged or 0) + merged


def _message(turn: Turn) -> dict[str, Any]:
    return {
        "role": "user",
        "name": turn.speaker,
        "content": turn.text,
        "metadata": {"dia_id": turn.dia_id},
    }


def _ask(
    memory: Memory,
    sample_id: str,
    question: Question,
    dia_of: dict[str, str],
    count_tokens: Callable[[Sequence[str]], int],
) -> QuestionResult:
    start = time.perf_counter()
    hits = memory.search(question.text, user_id=sample_id, limit=max(KS))
    latency = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    memory.embedder.embed(question.text)
    embed_ms = (time.perf_counter() - start) * 1000
    turns = expand_to_turns(([dia_of[e] for e in hit.episode_ids] for hit in hits), max(KS))
    return QuestionResult(
        sample_id=sample_id,
        category=question.category,
        recall={k: recall_at(turns, question.evidence, k) for k in KS},
        ndcg10=ndcg_at(turns, question.evidence, 10),
        tokens10=count_tokens([hit.text for hit in hits[:10]]),
        latency_ms=latency,
        embed_ms=embed_ms,
    )
