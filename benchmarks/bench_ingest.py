"""Ingest speed as a ratio to the embedder's floor, measured in one run with the same texts.

    python benchmarks/bench_ingest.py                     # 800 LoCoMo turns, a 10k-message export
    python benchmarks/bench_ingest.py --quick             # 200 turns, 1k messages

The floor is the bundled embedder embedding each text once, in length-sorted batches of
32, with nothing stored. The floor and every way of adding run in turn, `--rounds` times
over (the export once: it is long), and each figure is the fastest of its runs: on a
shared machine other work only ever slows a run down. Every way of adding runs through
the public API into a fresh SQLite file:

- LoCoMo turns: `add` a session at a time (with session_id), one turn per call with
  session_id, one turn per call with user_id only; and, for comparison, the write path
  before issue #14 (each sentence embedded again as a text of its own; --no-before skips);
- a generated ChatGPT `conversations.json` of long multi-paragraph answers:
  `Memory.ingest(path)` when it exists, else its messages added a conversation at a time.

Only ratios measured in the same run are comparable across machines and days. Each row
gives the wall clock and, beside it, the CPU seconds of the process (all its threads):
on a machine shared with other work the wall clock swings by 2x from run to run, while
the CPU ratio moves little.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from remem import Memory
from remem.bench import locomo
from remem.embedders.base import Embedder, Vectors
from remem.embedders.minilm import MiniLMEmbedder
from remem.stores.sqlite import SQLiteStore

DEFAULT_DATA = Path("/work/shared/bench/locomo10.json")
FLOOR_BATCH = 32
Feed = Callable[[Memory, Path], None]  # fills a fresh memory; gets a scratch folder


@dataclass(frozen=True)
class Conversation:
    """Messages (who, text: a speaker's name in LoCoMo, a role in the export) added as
    one session at one time."""

    session_id: str
    occurred_at: datetime
    messages: list[tuple[str, str]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="A LoCoMo-format file.")
    parser.add_argument("--turns", type=int, default=800, help="LoCoMo turns to add.")
    parser.add_argument("--messages", type=int, default=10_000, help="Messages in the export.")
    parser.add_argument("--quick", action="store_true", help="200 turns, 1,000 messages.")
    parser.add_argument(
        "--rounds", type=int, default=3, help="Times each LoCoMo way runs (the fastest counts)."
    )
    parser.add_argument(
        "--no-before",
        action="store_true",
        help="Skip the LoCoMo rows of the write path before issue #14 (sentences embedded "
        "as texts of their own).",
    )
    parser.add_argument("--json", action="store_true", help="Print JSON only.")
    args = parser.parse_args()
    turns, messages = (200, 1_000) if args.quick else (args.turns, args.messages)
    embedder = MiniLMEmbedder()
    embedder.embed_batch(["load the model before any timing"])
    results = {
        "locomo": measure_locomo(
            embedder, load_turns(args.data, turns), not args.no_before, args.rounds
        ),
        "chatgpt_export": measure_export(embedder, messages),
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, result in results.items():
            print_table(name, result)


def load_turns(path: Path, count: int) -> list[Conversation]:
    """The first `count` turns of the dataset, grouped in their sessions."""
    sessions: list[Conversation] = []
    taken = 0
    for sample in locomo.load(path):
        for session in sample.sessions:
            turns = session.turns[: count - taken]
            if turns:
                session_id = f"{sample.sample_id}/session_{session.number}"
                messages = [(turn.speaker, turn.text) for turn in turns]
                sessions.append(Conversation(session_id, session.occurred_at, messages))
                taken += len(turns)
    return sessions


def measure_floor(embedder: MiniLMEmbedder, texts: Sequence[str]) -> tuple[float, float]:
    """Seconds (wall clock, CPU) to embed every text once, sorted by length, FLOOR_BATCH at
    a time."""
    ordered = sorted(texts, key=len)
    start, cpu = time.perf_counter(), time.process_time()
    for begin in range(0, len(ordered), FLOOR_BATCH):
        embedder.embed_batch(ordered[begin : begin + FLOOR_BATCH])
    return time.perf_counter() - start, time.process_time() - cpu


def timed(embedder: Embedder, feed: Feed) -> tuple[float, float]:
    """Seconds (wall clock, CPU) `feed` takes to fill a fresh memory (opening and closing it
    not counted). CPU seconds are the work done, which other processes on a shared machine
    disturb far less than the wall clock (they count every thread of this process)."""
    with (
        tempfile.TemporaryDirectory(prefix="remem-ingest-") as folder,
        Memory(store=SQLiteStore(Path(folder) / "memory.db"), embedder=embedder) as memory,
    ):
        start, cpu = time.perf_counter(), time.process_time()
        feed(memory, Path(folder))
        return time.perf_counter() - start, time.process_time() - cpu


def measure_locomo(
    embedder: MiniLMEmbedder, sessions: list[Conversation], with_before: bool, rounds: int
) -> dict[str, Any]:
    texts = [text for session in sessions for _, text in session.messages]

    def add_sessions(memory: Memory, _: Path) -> None:
        for session in sessions:
            memory.add(
                [
                    {"role": "user", "name": name, "content": text}
                    for name, text in session.messages
                ],
                user_id="bench",
                session_id=session.session_id,
                occurred_at=session.occurred_at,
            )

    def add_turns(with_session: bool) -> Feed:
        def feed(memory: Memory, _: Path) -> None:
            for session in sessions:
                for name, text in session.messages:
                    memory.add(
                        [{"role": "user", "name": name, "content": text}],
                        user_id="bench",
                        session_id=session.session_id if with_session else None,
                        occurred_at=session.occurred_at,
                    )

        return feed

    ways: dict[str, tuple[Embedder, Feed]] = {
        "add a session at a time": (embedder, add_sessions),
        "add a turn per call, session_id": (embedder, add_turns(True)),
        "add a turn per call, user_id only": (embedder, add_turns(False)),
    }
    if with_before:
        before = SeparateSentences(embedder)
        ways["before #14: add a session at a time"] = (before, add_sessions)
        ways["before #14: add a turn per call, session_id"] = (before, add_turns(True))
    return compare(embedder, texts, ways, rounds)


class SeparateSentences(Embedder):
    """The write path before issue #14: the note and each of its sentences embedded as
    texts of their own (the protocol's default `embed_with_spans`), same model."""

    def __init__(self, model: MiniLMEmbedder) -> None:
        self.model = model
        self.model_id = model.model_id

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        return self.model.embed_batch(texts)


def compare(
    embedder: MiniLMEmbedder,
    texts: Sequence[str],
    ways: dict[str, tuple[Embedder, Feed]],
    rounds: int,
) -> dict[str, Any]:
    """The floor, then every way, `rounds` times over, then the floor once more; each
    figure is the fastest of its runs (the one least slowed by other work on the machine),
    and each way's ratio is to the fastest floor."""
    load = [os.getloadavg()[0]]
    floors: list[tuple[float, float]] = []
    seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    for _ in range(rounds):
        floors.append(measure_floor(embedder, texts))
        for name, way in ways.items():
            seconds[name].append(timed(*way))
    floors.append(measure_floor(embedder, texts))
    load.append(os.getloadavg()[0])
    rows = {"floor (embed each text once)": floors, **seconds}
    floor, floor_cpu = fastest(floors)
    return {
        "texts": len(texts),
        "floor_seconds": [round(wall, 2) for wall, _ in floors],
        "load_average_before_after": [round(value, 1) for value in load],
        "rows": {
            name: {
                "seconds": round(fastest(runs)[0], 2),
                "per_second": round(len(texts) / fastest(runs)[0], 1),
                "ratio_to_floor": round(fastest(runs)[0] / floor, 2),
                "cpu_seconds": round(fastest(runs)[1], 2),
                "cpu_ratio_to_floor": round(fastest(runs)[1] / floor_cpu, 2),
            }
            for name, runs in rows.items()
        },
    }


def fastest(runs: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The least wall-clock and the least CPU seconds of some runs (each the run least
    slowed by other work)."""
    return min(wall for wall, _ in runs), min(cpu for _, cpu in runs)


def measure_export(embedder: MiniLMEmbedder, count: int) -> dict[str, Any]:
    conversations = generate_export(count, random.Random(14))
    texts = [text for c in conversations for _, text in c.messages]

    def ingest(memory: Memory, folder: Path) -> None:
        path = folder / "conversations.json"
        path.write_text(json.dumps(chatgpt_json(conversations)), encoding="utf-8")
        if hasattr(memory, "ingest"):
            memory.ingest(path, user_id="bench", organise="later")
            return
        for conversation in parse_chatgpt(path):
            memory.add(
                [{"role": role, "content": text} for role, text in conversation.messages],
                user_id="bench",
                session_id=conversation.session_id,
                occurred_at=conversation.occurred_at,
            )

    how = (
        "Memory.ingest(path)"
        if hasattr(Memory, "ingest")
        else "parsed here, add a conversation at a time"
    )
    result = compare(embedder, texts, {f"import ({how})": (embedder, ingest)}, rounds=1)
    result["conversations"] = len(conversations)
    result["mean_characters"] = mean_characters(conversations)
    return result


def mean_characters(conversations: Sequence[Conversation]) -> dict[str, int]:
    totals: dict[str, list[int]] = {}
    for conversation in conversations:
        for role, text in conversation.messages:
            totals.setdefault(role, []).append(len(text))
    return {role: round(sum(sizes) / len(sizes)) for role, sizes in totals.items()}


# -- a generated ChatGPT export ------------------------------------------------------------

TOPICS = [
    "sourdough baking", "marathon training", "a Python memory leak", "learning Portuguese",
    "repotting a fig tree", "a job interview at a bank", "planning a trip to Kyoto",
    "budgeting for a new flat", "a cover letter", "my daughter's science project",
    "tuning PostgreSQL", "a knee injury", "composting in a small garden", "jazz piano voicings",
    "the French Revolution", "a wedding speech", "choosing a road bike", "sleep and caffeine",
    "a React component that re-renders", "negotiating a salary", "fermenting kimchi",
    "the history of the printing press", "a tax return as a freelancer", "training a puppy",
]  # fmt: skip
ASKS = [
    "Can you explain {t} to me like I'm new to it?", "What should I know about {t}?",
    "I'm stuck with {t}. Any ideas?", "Give me a plan for {t}, step by step.",
    "Quick question about {t}: where do I start?", "Compare the usual approaches to {t}.",
    "My friend says {t} is overrated. Is she right?", "Summarise {t} in a few points.",
    "thanks! and what about the mistakes people make with {t}?", "ok, shorter please",
]  # fmt: skip
OPENERS = [
    "Here is how I would think about {t}.", "Good question: {t} has a few moving parts.",
    "Let's break {t} down.", "There is no single answer for {t}, but there are patterns.",
]  # fmt: skip
CLAIMS = [
    "The first thing that matters is {w} because everything else builds on it",
    "Most people underestimate {w} and only notice it when something goes wrong",
    "A simple rule of thumb is to check {w} before changing anything else",
    "If you only have an hour a week, spend it on {w}",
    "Keep notes on {w}, since patterns show up only after a few weeks",
    "Experts disagree about {w}, so try both options and compare the results",
    "Avoid changing {w} and the schedule at the same time",
    "It helps to write down what you expect from {w} before you start",
]  # fmt: skip
WORDS = [
    "the timing", "your budget", "the tools you already have", "rest and recovery",
    "the quality of the inputs", "feedback from someone experienced", "small daily habits",
    "the order of the steps", "the temperature", "the first draft", "your energy levels",
    "the long-term goal", "what can go wrong", "the measurements", "consistency",
]  # fmt: skip


def generate_export(count: int, rng: random.Random) -> list[Conversation]:
    """`count` messages in conversations of 4-30, user and assistant in turn, from 2023 on;
    the answers run to several paragraphs."""
    conversations: list[Conversation] = []
    moment = datetime(2023, 3, 1, 9, 0, tzinfo=UTC).timestamp()
    while sum(len(c.messages) for c in conversations) < count:
        left = count - sum(len(c.messages) for c in conversations)
        size = min(left, rng.randrange(4, 31))
        topic = rng.choice(TOPICS)
        messages = [
            ("user", rng.choice(ASKS).format(t=topic))
            if number % 2 == 0
            else ("assistant", answer(topic, rng))
            for number in range(size)
        ]
        moment += rng.randrange(3_600, 5 * 86_400)
        when = datetime.fromtimestamp(moment, UTC)
        conversations.append(Conversation(f"conv-{len(conversations)}", when, messages))
    return conversations


def answer(topic: str, rng: random.Random) -> str:
    paragraphs = [rng.choice(OPENERS).format(t=topic)]
    for _ in range(rng.randrange(2, 7)):
        sentences = [
            rng.choice(CLAIMS).format(w=rng.choice(WORDS)) + "." for _ in range(rng.randrange(2, 5))
        ]
        paragraphs.append(" ".join(sentences))
    if rng.random() < 0.5:
        paragraphs.append("\n".join(f"- {rng.choice(WORDS)}" for _ in range(rng.randrange(3, 6))))
    return "\n\n".join(paragraphs)


def chatgpt_json(conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
    """The conversations as ChatGPT writes `conversations.json`: a tree of message nodes
    (a root, a hidden system message, then the turns), the kept branch ending at
    `current_node`."""
    exported = []
    for conversation in conversations:
        start = conversation.occurred_at.timestamp()
        mapping: dict[str, Any] = {"root": {"id": "root", "message": None, "parent": None}}
        chain = [("system", "You are ChatGPT."), *conversation.messages]
        parent = "root"
        for number, (role, text) in enumerate(chain):
            node = f"{conversation.session_id}-m{number}"
            mapping[node] = {
                "id": node,
                "parent": parent,
                "message": {
                    "id": node,
                    "author": {"role": role},
                    "create_time": start + 30 * number,
                    "content": {"content_type": "text", "parts": [text]},
                },
            }
            mapping[parent]["children"] = [node]
            parent = node
        mapping[parent]["children"] = []
        exported.append(
            {
                "title": conversation.session_id,
                "create_time": start,
                "update_time": start + 30 * len(chain),
                "mapping": mapping,
                "current_node": parent,
                "conversation_id": conversation.session_id,
            }
        )
    return exported


def parse_chatgpt(path: Path) -> list[Conversation]:
    """The kept branch of each conversation (from `current_node` up to the root), without
    system and tool messages: what an importer reads."""
    conversations = []
    for item in json.loads(path.read_text(encoding="utf-8")):
        messages: list[tuple[str, str]] = []
        node = item["current_node"]
        while node is not None:
            entry = item["mapping"][node]
            message = entry["message"]
            if message and message["author"]["role"] in ("user", "assistant"):
                parts = message["content"]["parts"]
                messages.append((message["author"]["role"], "\n".join(map(str, parts))))
            node = entry["parent"]
        when = datetime.fromtimestamp(item["create_time"], UTC)
        conversations.append(Conversation(item["conversation_id"], when, messages[::-1]))
    return conversations


def print_table(name: str, result: dict[str, Any]) -> None:
    floors = ", ".join(map(str, result["floor_seconds"]))
    load = " -> ".join(map(str, result["load_average_before_after"]))
    print(
        f"\n{name}: {result['texts']} texts (floor runs {floors} s; load average {load} on"
        f" {os.cpu_count()} cores; fastest run of each row)"
    )
    for row, figures in result["rows"].items():
        print(
            f"  {row:<52} {figures['seconds']:>7.2f} s {figures['per_second']:>7.1f}/s"
            f" {figures['ratio_to_floor']:>5.2f}x   cpu {figures['cpu_seconds']:>7.2f} s"
            f" {figures['cpu_ratio_to_floor']:>5.2f}x"
        )


if __name__ == "__main__":
    main()
