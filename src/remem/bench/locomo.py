"""Reading datasets in the LoCoMo schema (Maharana et al., ACL 2024).

Only the conversation and the questions are read; `answer`, `observation`,
`session_summary` and `event_summary` are never used to build the memory or the query.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from remem.errors import InvalidInputError

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
DATE_FORMAT = "%I:%M %p on %d %B, %Y"  # "1:56 pm on 8 May, 2023"
_SESSION = re.compile(r"session_(\d+)")
_EVIDENCE = re.compile(r"D(\d+):(\d+)")


@dataclass(frozen=True)
class Turn:
    dia_id: str
    speaker: str
    text: str


@dataclass(frozen=True)
class Session:
    number: int
    occurred_at: datetime
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Question:
    text: str
    category: int
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Sample:
    sample_id: str
    sessions: tuple[Session, ...]
    questions: tuple[Question, ...]


def load(path: Path, sample_ids: Sequence[str] | None = None) -> list[Sample]:
    """The samples of a LoCoMo-format file, optionally only those named."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InvalidInputError(f"cannot read dataset {path}: {error}") from error
    samples = [parse_sample(item) for item in data]
    if sample_ids:
        known = {s.sample_id for s in samples}
        missing = [s for s in sample_ids if s not in known]
        if missing:
            raise InvalidInputError(
                f"unknown sample(s) {', '.join(missing)}; the file has {', '.join(sorted(known))}"
            )
        samples = [s for s in samples if s.sample_id in sample_ids]
    return samples


def parse_sample(item: dict[str, Any]) -> Sample:
    conversation = item["conversation"]
    sessions = []
    # Iterate the sessions that exist: some samples have more date keys than sessions.
    for key in conversation:
        match = _SESSION.fullmatch(key)
        if match and isinstance(conversation[key], list):
            number = int(match.group(1))
            when = datetime.strptime(conversation[f"{key}_date_time"].strip(), DATE_FORMAT)
            turns = tuple(_turn(turn) for turn in conversation[key])
            sessions.append(Session(number, when, turns))
    sessions.sort(key=lambda session: session.number)
    questions = tuple(
        Question(qa["question"], int(qa["category"]), parse_evidence(qa.get("evidence", [])))
        for qa in item["qa"]
    )
    return Sample(item["sample_id"], tuple(sessions), questions)


def _turn(turn: dict[str, Any]) -> Turn:
    text = turn["text"]
    if turn.get("blip_caption"):
        text = f"{text} [shared an image: {turn['blip_caption']}]"
    return Turn(turn["dia_id"], turn["speaker"], text)


def parse_evidence(raw: Sequence[str]) -> tuple[str, ...]:
    """Normalised turn ids: "D8:6; D9:17" splits, "D:11:26" -> "D11:26", "D30:05" -> "D30:5"."""
    ids: list[str] = []
    for entry in raw:
        for piece in re.split(r"[;\s]+", str(entry)):
            cleaned = "D" + piece.lstrip("D").strip(":")
            match = _EVIDENCE.fullmatch(cleaned.replace("::", ":"))
            if match:
                ids.append(f"D{int(match.group(1))}:{int(match.group(2))}")
    return tuple(dict.fromkeys(ids))
