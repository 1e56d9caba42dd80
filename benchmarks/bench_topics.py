"""Topics without a model, measured on LoCoMo: purity, coverage, stability, and speed.

    python benchmarks/bench_topics.py [--data ../shared/bench/locomo10.json] [--quick]

Each LoCoMo sample is one person's memory: its turns are embedded with the bundled model
and clustered. Reported per sample and overall:
- purity against sessions: share of each topic's notes from its majority session (weighted
  by topic size), beside the same figure for the same topic sizes filled at random;
- purity against events: turns are labelled, for scoring only, with the event of their own
  session (`event_summary`) whose embedding is closest (cosine >= EVENT_MIN, else no label);
  share of each topic's labelled notes from its majority event;
- evidence together: for questions with two or more evidence turns, the share of evidence
  pairs placed in the same topic (random sizes alike as a baseline);
- coverage (share of notes in a topic) and number of topics;
- stability: topics of the first 90% of turns (a rebuild), the last 10% added by
  `update_topics` 10 at a time, against a rebuild on all turns: share of notes whose topic
  differs under a one-to-one best-overlap mapping of topics (outliers match outliers), and
  share of topic ids the rebuild gives again;
- time per incremental update (10 notes) and per rebuild at 10k and 100k notes (LoCoMo
  vectors replicated with noise), and the state document's size and load/save time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# One BLAS thread: the products here are small, and more threads only contend for the cores
# (on a shared 2-core machine, 20x slower). Set OPENBLAS_NUM_THREADS to measure otherwise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from remem.bench import locomo
from remem.embedders.minilm import MiniLMEmbedder
from remem.profile.topics import (
    TopicInput,
    TopicState,
    rebuild_topics,
    topics_of,
    update_topics,
)

DEFAULT_DATA = Path("/work/shared/bench/locomo10.json")
EVENT_MIN = 0.3
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="A LoCoMo-format file.")
    parser.add_argument("--quick", action="store_true", help="3 samples, timing at 10k only.")
    parser.add_argument(
        "--cache", type=Path, help="A .npz file to keep embeddings in (not the repo)."
    )
    parser.add_argument(
        "--sizes", default="10000,100000", help="Notes to time at (comma-separated)."
    )
    parser.add_argument("--noise", type=float, default=0.025, help="Per-dimension noise of copies.")
    parser.add_argument("--no-quality", action="store_true", help="Only the timing at scale.")
    args = parser.parse_args()
    raw = json.loads(args.data.read_text(encoding="utf-8"))
    samples = locomo.load(args.data)
    if args.quick:
        raw, samples = raw[:3], samples[:3]
    embedder = MiniLMEmbedder()
    vectors = _embeddings(embedder, samples, raw, args.cache)
    if not args.no_quality:
        pairs = zip(samples, raw, strict=True)
        _print_quality([_quality(sample, item, vectors) for sample, item in pairs])
    all_inputs = [i for sample in samples for i in _inputs(sample, vectors)]
    sizes = [10_000] if args.quick else [int(size) for size in args.sizes.split(",")]
    print(f"timing: LoCoMo vectors replicated with noise {args.noise} per dimension")
    for size in sizes:
        _print_timing(size, _timing(all_inputs, size, args.noise))


# -- data ----------------------------------------------------------------------------------


def _embeddings(
    embedder: MiniLMEmbedder, samples: Sequence[locomo.Sample], raw: list[Any], cache: Path | None
) -> dict[str, np.ndarray]:
    """Vectors of every turn ("sample/dia_id") and event ("sample/event/n"), cached if asked."""
    if cache and cache.exists():
        stored = np.load(cache)
        found = {key: stored[key] for key in stored.files}
        wanted = {
            _key(s, t.dia_id) for s in samples for session in s.sessions for t in session.turns
        }
        if wanted <= set(found):
            return found
    texts: dict[str, str] = {}
    for sample, item in zip(samples, raw, strict=True):
        for session in sample.sessions:
            for turn in session.turns:
                texts[_key(sample, turn.dia_id)] = turn.text
        for number, event in enumerate(_events(item)):
            texts[f"{sample.sample_id}/event/{number}"] = event[1]
    started = time.perf_counter()
    matrix = embedder.embed_batch(list(texts.values()))
    print(f"embedded {len(texts)} texts in {time.perf_counter() - started:.1f} s")
    found = dict(zip(texts, matrix, strict=True))
    if cache:
        np.savez(cache, **found)
    return found


def _key(sample: locomo.Sample, dia_id: str) -> str:
    return f"{sample.sample_id}/{dia_id}"


def _events(item: dict[str, Any]) -> list[tuple[int, str]]:
    """(session number, event text) of a sample's event summary, in file order."""
    found = []
    for key, value in item.get("event_summary", {}).items():
        session = int(key.rsplit("_", 1)[1])
        for speaker, events in value.items():
            if speaker != "date":
                found.extend((session, text) for text in events)
    return found


def _inputs(sample: locomo.Sample, vectors: dict[str, np.ndarray]) -> list[TopicInput]:
    inputs = []
    for session in sample.sessions:
        start = session.occurred_at.replace(tzinfo=UTC)
        for position, turn in enumerate(session.turns):
            inputs.append(
                TopicInput(
                    note_id=turn.dia_id,
                    vector=vectors[_key(sample, turn.dia_id)],
                    text=turn.text,
                    occurred_at=start + timedelta(seconds=30 * position),
                    session=f"session_{session.number}",
                )
            )
    return inputs


# -- quality -------------------------------------------------------------------------------


def _quality(
    sample: locomo.Sample, item: dict[str, Any], vectors: dict[str, np.ndarray]
) -> dict[str, Any]:
    inputs = _inputs(sample, vectors)
    started = time.perf_counter()
    state = rebuild_topics(inputs, NOW)
    rebuild_seconds = time.perf_counter() - started
    topics = topics_of(state, NOW)
    label = {note_id: topic.id for topic in topics for note_id in topic.note_ids}
    session_of = {i.note_id: i.session or "" for i in inputs}
    event_of = _event_labels(sample, item, inputs, vectors)
    rng = np.random.default_rng(7)
    shuffled = _shuffled(label, [i.note_id for i in inputs], rng)
    pairs = _evidence_pairs(sample)
    return {
        "sample": sample.sample_id,
        "notes": len(inputs),
        "topics": len(topics),
        "coverage": len(label) / len(inputs),
        "session_purity": _purity(label, session_of),
        "session_purity_random": _purity(shuffled, session_of),
        "event_purity": _purity(label, event_of),
        "event_purity_random": _purity(shuffled, event_of),
        "labelled_by_event": len(event_of) / len(inputs),
        "evidence_together": _together(label, pairs),
        "evidence_together_random": _together(shuffled, pairs),
        "stability": _stability(inputs),
        "rebuild_ms": 1000 * rebuild_seconds,
        "examples": [(t.label, t.size, t.sessions, t.confidence) for t in topics[:3]],
    }


def _event_labels(
    sample: locomo.Sample,
    item: dict[str, Any],
    inputs: Sequence[TopicInput],
    vectors: dict[str, np.ndarray],
) -> dict[str, str]:
    """Each turn's closest event of its own session (for scoring only), when close enough."""
    by_session: dict[str, list[tuple[str, np.ndarray]]] = {}
    for number, (session, _) in enumerate(_events(item)):
        key = f"{sample.sample_id}/event/{number}"
        by_session.setdefault(f"session_{session}", []).append((key, vectors[key]))
    labels = {}
    for note in inputs:
        candidates = by_session.get(note.session or "", [])
        if not candidates:
            continue
        sims = [float(np.dot(note.vector, vector)) for _, vector in candidates]
        best = int(np.argmax(sims))
        if sims[best] >= EVENT_MIN:
            labels[note.note_id] = candidates[best][0]
    return labels


def _purity(label: dict[str, str], truth: dict[str, str]) -> float:
    """Share of topic notes (that have a true label) from their topic's majority label."""
    groups: dict[str, Counter[str]] = {}
    for note_id, topic in label.items():
        if note_id in truth:
            groups.setdefault(topic, Counter())[truth[note_id]] += 1
    total = sum(sum(counts.values()) for counts in groups.values())
    majority = sum(counts.most_common(1)[0][1] for counts in groups.values())
    return majority / total if total else float("nan")


def _shuffled(
    label: dict[str, str], note_ids: list[str], rng: np.random.Generator
) -> dict[str, str]:
    """The same topic sizes over notes drawn at random."""
    chosen = rng.permutation(note_ids)[: len(label)]
    return dict(zip(chosen.tolist(), label.values(), strict=True))


def _evidence_pairs(sample: locomo.Sample) -> list[tuple[str, str]]:
    pairs = []
    for question in sample.questions:
        evidence = question.evidence
        pairs.extend(
            (evidence[i], evidence[j])
            for i in range(len(evidence))
            for j in range(i + 1, len(evidence))
        )
    return pairs


def _together(label: dict[str, str], pairs: list[tuple[str, str]]) -> float:
    both = [(a, b) for a, b in pairs if a in label and b in label]
    return sum(label[a] == label[b] for a, b in both) / len(both) if both else float("nan")


def _stability(inputs: list[TopicInput]) -> dict[str, float]:
    cut = int(len(inputs) * 0.9)
    state = rebuild_topics(inputs[:cut], NOW)
    update_ms = []
    for start in range(cut, len(inputs), 10):
        began = time.perf_counter()
        state = update_topics(state, inputs[start : start + 10], (), NOW)
        update_ms.append(1000 * (time.perf_counter() - began))
    rebuilt = rebuild_topics(inputs, NOW)
    return {
        "changed": _changed(_labels(state), _labels(rebuilt), [i.note_id for i in inputs]),
        "ids_kept": _ids_kept(state, rebuilt),
        "update_ms": statistics.mean(update_ms) if update_ms else 0.0,
    }


def _labels(state: TopicState) -> dict[str, str]:
    return {
        n: slot[0] for n, slot in state.notes.items() if slot[0] and state.clusters[slot[0]].topic
    }


def _changed(first: dict[str, str], second: dict[str, str], note_ids: list[str]) -> float:
    """Share of notes whose topic differs under a one-to-one best-overlap mapping of topics
    (greedy by overlap); an outlier in both counts as unchanged."""
    overlap = Counter((first[n], second[n]) for n in note_ids if n in first and n in second)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for (a, b), _ in sorted(overlap.items(), key=lambda item: -item[1]):
        if a not in mapping and b not in used:
            mapping[a] = b
            used.add(b)
    same = sum(
        1
        for n in note_ids
        if (n not in first and n not in second)
        or (n in first and n in second and mapping.get(first[n]) == second[n])
    )
    return 1.0 - same / len(note_ids)


def _ids_kept(incremental: TopicState, rebuilt: TopicState) -> float:
    ids = {c.id for c in incremental.topics()}
    return len(ids & {c.id for c in rebuilt.topics()}) / len(ids) if ids else float("nan")


def _print_quality(rows: list[dict[str, Any]]) -> None:
    header = (
        "sample    notes topics cover  purity:session (random)  event (random)"
        "  evidence-together (random)  changed  ids-kept  update-10 ms"
    )
    print(header)
    for row in rows:
        stable = row["stability"]
        print(
            f"{row['sample']:<9} {row['notes']:>5} {row['topics']:>6} {row['coverage']:5.2f}"
            f"  {row['session_purity']:13.3f} ({row['session_purity_random']:.3f})"
            f"  {row['event_purity']:6.3f} ({row['event_purity_random']:.3f})"
            f"  {row['evidence_together']:16.3f} ({row['evidence_together_random']:.3f})"
            f"  {stable['changed']:7.3f}  {stable['ids_kept']:8.3f}  {stable['update_ms']:8.2f}"
        )
    numeric = [key for key, value in rows[0].items() if isinstance(value, float | int)]
    mean = {key: statistics.mean(row[key] for row in rows) for key in numeric}
    for key in ("changed", "ids_kept", "update_ms"):
        mean[key] = statistics.mean(row["stability"][key] for row in rows)
    print("mean: " + ", ".join(f"{key} {value:.3f}" for key, value in mean.items()))
    print(f"events label {mean['labelled_by_event']:.0%} of turns (cosine >= {EVENT_MIN})")
    for row in rows[:2]:
        print(f"{row['sample']} top topics (label, size, sessions, confidence): {row['examples']}")


# -- speed at scale ------------------------------------------------------------------------


def _timing(inputs: list[TopicInput], size: int, noise: float) -> dict[str, float]:
    """Rebuild and incremental update times on `size` notes: LoCoMo turns replicated,
    each copy's vector moved by noise so no two are equal."""
    rng = np.random.default_rng(size)
    notes = []
    for index in range(size):
        base = inputs[index % len(inputs)]
        vector = base.vector + rng.normal(0.0, noise, base.vector.shape).astype(np.float32)
        notes.append(
            TopicInput(
                f"nt_{index:07d}",
                (vector / np.linalg.norm(vector)).astype(np.float32),
                base.text,
                NOW - timedelta(minutes=size - index),
                f"s{index // 20}",
            )
        )
    started = time.perf_counter()
    state = rebuild_topics(notes[:-100], NOW)
    rebuild = time.perf_counter() - started
    updates = []
    for start in range(size - 100, size, 10):
        began = time.perf_counter()
        state = update_topics(state, notes[start : start + 10], (), NOW)
        updates.append(time.perf_counter() - began)
    began = time.perf_counter()
    document = json.dumps(state.to_json())
    save = time.perf_counter() - began
    began = time.perf_counter()
    TopicState.from_json(json.loads(document))
    load = time.perf_counter() - began
    began = time.perf_counter()
    topics = topics_of(state, NOW)
    render = time.perf_counter() - began
    return {
        "rebuild_s": rebuild,
        "update_ms": 1000 * statistics.median(updates),
        "topics": len(topics),
        "coverage": sum(t.size for t in topics) / size,
        "doc_mb": len(document) / 1e6,
        "save_ms": 1000 * save,
        "load_ms": 1000 * load,
        "topics_of_ms": 1000 * render,
    }


def _print_timing(size: int, figures: dict[str, float]) -> None:
    print(
        f"{size:>7} notes: rebuild {figures['rebuild_s']:.2f} s, update of 10 notes "
        f"{figures['update_ms']:.1f} ms (median), {figures['topics']:.0f} topics, coverage "
        f"{figures['coverage']:.2f}; state {figures['doc_mb']:.2f} MB JSON, save "
        f"{figures['save_ms']:.0f} ms, load {figures['load_ms']:.0f} ms, topics_of "
        f"{figures['topics_of_ms']:.0f} ms"
    )


if __name__ == "__main__":
    main()
