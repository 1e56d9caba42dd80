"""Prefill from memory on LoCoMo: how often a filled field is right (precision), and how
often a field memory cannot answer is left empty (abstention).

    python benchmarks/bench_prefill.py                       # all samples, both modes
    python benchmarks/bench_prefill.py --samples conv-26 --show conv-26:Caroline
    python benchmarks/bench_prefill.py --embedder hash       # fast, weaker search

Each sample's turns go into one memory (the speaker as the episode name, one add per
session, as `remem bench` does) and each speaker is a person whose forms are filled:

- `qa` forms: the dataset's single-hop questions (category 4) about the speaker as
  string fields (the question is the description; the answer is the gold value), and its
  adversarial questions (category 5) about the speaker as fields memory cannot answer
  (they ask about something the other speaker did: the right result is empty);
- `gold` forms: a small hand-labelled file (benchmarks/prefill_gold.json) of profile
  fields (pets, children, jobs...) and fields no conversation says (email, phone, date
  of birth), which must stay empty.

Answers are read only to score, never to build memory. A filled value is right when its
token F1 with the gold (SQuAD normalisation) is at least 0.5, or equals it for numbers.
Modes: `none` (no model: attributes and patterns) and `scripted` (the model path end to
end over HTTP against remem's scripted OpenAI-compatible server, which answers each field
with the evidence sentence that shares the most words with the question). The scripted
figures measure the plumbing (retrieval, prompt, validation, evidence checks), not the
quality of any real model.
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remem import Memory
from remem.bench.locomo import Sample, load, parse_evidence
from remem.llms import OpenAICompatibleLLM
from remem.profile.attributes import find_attributes
from remem.profile.fill import fill_form
from remem.testing import HashEmbedder, ScriptedOpenAIServer
from remem.types import Attribute, FilledForm, Hit

DATA = Path("/work/shared/bench/locomo10.json")
GOLD = Path(__file__).with_name("prefill_gold.json")
FIELDS_PER_FORM = 100
RIGHT_F1 = 0.5
CONTAINS_RECALL = 0.8


@dataclass
class Person:
    """One speaker of a sample: their memory's speaker map and attributes."""

    sample: str
    name: str
    speaker_of: dict[str, str]  # note id -> speaker
    dia_of: dict[str, str]  # note id -> LoCoMo turn id, for scoring only
    attributes: list[Attribute]


@dataclass
class Tally:
    answerable: int = 0
    unanswerable: int = 0
    filled: int = 0
    right: int = 0
    filled_answerable: int = 0
    contains_gold: int = 0  # the value holds the gold's words (the cited sentence is right)
    cites_gold_turn: int = 0  # a cited note is one of the gold's evidence turns
    abstained: int = 0
    seconds: float = 0.0
    calls: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, gold: Any, value: Any, cited: list[str], evidence: list[str]) -> bool | None:
        """Count one field; True/False when filled (right or not), None when empty.
        `cited` are the turns (dia ids) the fill cites, `evidence` the gold's."""
        if gold is None:
            self.unanswerable += 1
        else:
            self.answerable += 1
        if value is None:
            self.abstained += gold is None
            return None
        self.filled += 1
        self.filled_answerable += gold is not None
        right = gold is not None and is_right(value, gold)
        self.right += right
        if gold is not None:
            self.contains_gold += recall(value, gold) >= CONTAINS_RECALL
            self.cites_gold_turn += bool(set(cited) & set(evidence))
        return right

    def row(self) -> dict[str, Any]:
        return {
            "fields": self.answerable + self.unanswerable,
            "answerable": self.answerable,
            "filled": self.filled,
            "right": self.right,
            "precision": _share(self.right, self.filled),
            "coverage": _share(self.filled_answerable, self.answerable),
            "contains_gold": _share(self.contains_gold, self.filled_answerable),
            "cites_gold_turn": _share(self.cites_gold_turn, self.filled_answerable),
            "abstention": _share(self.abstained, self.unanswerable),
            "llm_calls": self.calls,
            "seconds": round(self.seconds, 1),
        }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


# -- scoring ---------------------------------------------------------------------------------


def normalised(text: str) -> list[str]:
    text = text.lower()
    text = "".join(c for c in text if c not in string.punctuation)
    return re.sub(r"\b(a|an|the|and)\b", " ", text).split()


def f1(value: str, gold: str) -> float:
    got, want = normalised(value), normalised(gold)
    common = sum((Counter(got) & Counter(want)).values())
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def recall(value: Any, gold: Any) -> float:
    want = normalised(str(gold))
    got = Counter(normalised(", ".join(map(str, value)) if isinstance(value, list) else str(value)))
    return sum((Counter(want) & got).values()) / len(want) if want else 0.0


def is_right(value: Any, gold: Any) -> bool:
    if isinstance(gold, int | float) and not isinstance(gold, bool):
        return isinstance(value, int | float) and value == gold
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return f1(text, str(gold)) >= RIGHT_F1


# -- memory ----------------------------------------------------------------------------------


def remember(memory: Memory, sample: Sample) -> tuple[dict[str, str], dict[str, str]]:
    """Add the sample's turns, one add per session; return note id -> speaker, and note
    id -> turn id (for scoring)."""
    speaker_of: dict[str, str] = {}
    dia_of: dict[str, str] = {}
    for session in sample.sessions:
        messages = [
            {"role": "user", "name": turn.speaker, "content": turn.text} for turn in session.turns
        ]
        if not messages:
            continue
        result = memory.add(
            messages,
            user_id=sample.sample_id,
            session_id=f"{sample.sample_id}/session_{session.number}",
            occurred_at=session.occurred_at,
        )
        by_episode = dict(zip(result.episode_ids, session.turns, strict=True))
        for note_id in result.note_ids:
            sources = memory.get(note_id).episode_ids
            turn = by_episode.get(sources[0]) if sources else None
            speaker_of[note_id] = turn.speaker if turn else ""
            dia_of[note_id] = turn.dia_id if turn else ""
    return speaker_of, dia_of


def speakers(sample: Sample) -> list[str]:
    return sorted({turn.speaker for session in sample.sessions for turn in session.turns})


def people(
    memory: Memory, sample: Sample, speaker_of: dict[str, str], dia_of: dict[str, str]
) -> list[Person]:
    notes = [memory.get(note_id) for note_id in speaker_of]
    return [
        Person(
            sample.sample_id,
            name,
            speaker_of,
            dia_of,
            find_attributes(notes, lambda note, name=name: speaker_of.get(note.id) == name),
        )
        for name in speakers(sample)
    ]


# -- forms -----------------------------------------------------------------------------------


def qa_forms(sample: Sample, raw: dict[str, Any], person: str) -> Iterator[dict[str, Any]]:
    """Category 4 questions about `person` (gold = answer) and category 5 ones (gold =
    None), as forms of at most FIELDS_PER_FORM string fields."""
    others = [s for s in speakers(sample) if s != person]
    fields: dict[str, dict[str, Any]] = {}
    for index, qa in enumerate(raw["qa"]):
        question = qa["question"]
        if int(qa["category"]) not in (4, 5) or not _about(question, person, others):
            continue
        gold = None if int(qa["category"]) == 5 else str(qa.get("answer", ""))
        evidence = list(parse_evidence(qa.get("evidence", [])))
        fields[f"q{index}"] = {
            "type": "string",
            "description": question,
            "gold": gold,
            "evidence": evidence,
        }
    items = list(fields.items())
    for start in range(0, len(items), FIELDS_PER_FORM):
        yield dict(items[start : start + FIELDS_PER_FORM])


def _about(question: str, person: str, others: list[str]) -> bool:
    names = {person, person[:3]} if len(person) > 3 else {person}  # "Mel" for Melanie
    says = any(re.search(rf"\b{re.escape(n)}\b", question) for n in names)
    return says and not any(re.search(rf"\b{re.escape(o)}\b", question) for o in others)


def schema_of(fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    properties = {
        key: {k: v for k, v in spec.items() if k not in {"gold", "evidence"}}
        for key, spec in fields.items()
    }
    return {"type": "object", "properties": properties}


# -- the scripted model ----------------------------------------------------------------------

_STOP = set(
    normalised(
        "what who when where which how did does do is was were are has have had his her"
        " their to of in for on with"
    )
)


def scripted_answer(body: dict[str, Any]) -> str:
    """Each field: the person's evidence sentence sharing most words with the question
    (two at least), as the value, citing its note; else null. Integers: the first number."""
    content = body["messages"][1]["content"]
    fields = json.loads(content.split("Fields:\n", 1)[1])
    answers = []
    for item in fields:
        asked = set(normalised(item["asks"])) - _STOP
        best: tuple[int, str, str] | None = None
        for shown in item["evidence"]:
            if not shown.get("said_by_the_person", True):
                continue
            for sentence in re.split(r"(?<=[.!?])\s+", shown["text"]):
                overlap = len(asked & set(normalised(sentence)))
                if overlap >= 2 and (best is None or overlap > best[0]):
                    best = (overlap, sentence, shown["id"])
        answers.append(_answer(item, best))
    return json.dumps({"fields": answers})


def _answer(item: dict[str, Any], best: tuple[int, str, str] | None) -> dict[str, Any]:
    if best is None:
        return {"path": item["path"], "value": None, "note_ids": [], "why": "not in evidence"}
    value: Any = best[1]
    if item["type"] in {"integer", "number"}:
        numbers = re.findall(r"\b\d+\b", best[1])
        value = int(numbers[0]) if numbers else None
    return {
        "path": item["path"],
        "value": None if value is None else json.dumps(value),
        "note_ids": [best[2]],
        "why": "the closest evidence sentence",
    }


# -- running ---------------------------------------------------------------------------------


def run_form(
    memory: Memory,
    person: Person,
    fields: dict[str, dict[str, Any]],
    llm: OpenAICompatibleLLM | None,
    tally: Tally,
) -> FilledForm:
    def search(query: str, k: int) -> list[Hit]:
        return memory.search(query, user_id=person.sample, limit=k)

    started = time.perf_counter()
    form, usage = fill_form(
        schema_of(fields),
        attributes=person.attributes,
        search=search,
        llm=llm,
        is_person=lambda hit: person.speaker_of.get(hit.id) == person.name,
    )
    tally.seconds += time.perf_counter() - started
    tally.calls += usage.calls
    filled = {f.path: f for f in form.fields}
    values = {path: fill.value for path, fill in filled.items()}
    for key, spec in fields.items():
        cited = [person.dia_of.get(i, "") for i in filled[f"/{key}"].note_ids]
        if values[f"/{key}"] is None:
            cited = []
        right = tally.add(spec["gold"], values[f"/{key}"], cited, spec.get("evidence", []))
        if right is False and len(tally.examples) < 5:
            tally.examples.append(f"{person.name} {key}: {values[f'/{key}']!r} vs {spec['gold']!r}")
    return form


def main() -> None:
    arguments = parse_arguments()
    raw_samples = {item["sample_id"]: item for item in json.loads(arguments.data.read_text())}
    samples = load(arguments.data, arguments.samples or None)
    gold = json.loads(arguments.gold.read_text())
    modes = ["none", "scripted"] if arguments.mode == "both" else [arguments.mode]
    tallies = {(mode, kind): Tally() for mode in modes for kind in ("qa", "gold")}
    shown: list[str] = []
    with ScriptedOpenAIServer() as server, tempfile.TemporaryDirectory() as folder:
        server.reply(scripted_answer, when='"name": "fill"', times=None)
        model = OpenAICompatibleLLM(server.base_url, "scripted", timeout=30.0, backoff=0.01)
        for sample in samples:
            started = time.perf_counter()
            embedder = HashEmbedder() if arguments.embedder == "hash" else None
            path = Path(folder) / f"{sample.sample_id}.db"
            with Memory(path, embedder=embedder, llm=None) as memory:
                speaker_of, dia_of = remember(memory, sample)
                for person in people(memory, sample, speaker_of, dia_of):
                    forms = {
                        "qa": list(qa_forms(sample, raw_samples[sample.sample_id], person.name)),
                        "gold": [gold.get(sample.sample_id, {}).get(person.name, {})],
                    }
                    show = arguments.show == f"{sample.sample_id}:{person.name}"
                    if show:
                        shown.extend(profile_lines(person))
                    for mode in modes:
                        llm = model if mode == "scripted" else None
                        for kind, fields_list in forms.items():
                            for fields in (f for f in fields_list if f):
                                form = run_form(memory, person, fields, llm, tallies[(mode, kind)])
                                if show and kind == "gold":
                                    shown.extend(form_lines(memory, person, form, mode))
            print(f"{sample.sample_id}: {time.perf_counter() - started:.1f}s", file=sys.stderr)
    report(tallies, shown)


def profile_lines(person: Person) -> list[str]:
    lines = [f"\n{person.sample} {person.name}: attributes found without a model"]
    for attribute in person.attributes:
        turns = ", ".join(person.dia_of.get(i, "?") for i in attribute.note_ids)
        until = f" until {attribute.valid_to:%Y-%m-%d}" if attribute.valid_to else ""
        lines.append(
            f"  {attribute.slot}: {attribute.value} ({attribute.confidence}){until} [{turns}]"
        )
    return lines


def form_lines(memory: Memory, person: Person, form: FilledForm, mode: str) -> list[str]:
    lines = [f"\n{person.sample} {person.name}: gold form filled, mode {mode}"]
    for fill in form.fields:
        lines.append(f"  {fill.path}: {fill.value!r} (confidence {fill.confidence:.2f}) {fill.why}")
        for note_id in fill.note_ids[:2]:
            text = " ".join(memory.get(note_id).text.split())[:90]
            lines.append(f"      {person.dia_of.get(note_id, '?')} {note_id}: {text}")
    return lines


def report(tallies: dict[tuple[str, str], Tally], shown: list[str]) -> None:
    rows = {f"{mode}/{kind}": tally.row() for (mode, kind), tally in tallies.items()}
    print(json.dumps(rows, indent=1))
    for (mode, kind), tally in tallies.items():
        for example in tally.examples[:3]:
            print(f"  wrong ({mode}/{kind}): {example[:160]}")
    print("\n".join(shown))


def parse_arguments() -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="LoCoMo JSON (not copied).")
    parser.add_argument("--gold", type=Path, default=GOLD, help="Hand-labelled forms.")
    parser.add_argument("--samples", nargs="*", help="Sample ids (default: all).")
    parser.add_argument("--mode", choices=["none", "scripted", "both"], default="both")
    parser.add_argument("--embedder", choices=["bundled", "hash"], default="bundled")
    parser.add_argument("--show", help="SAMPLE:SPEAKER whose gold form is printed.")
    return parser.parse_args()


if __name__ == "__main__":
    main()
