"""A realistic corpus at any size: LoCoMo's turns, copied with other names and dates.

bench_scale's synthetic corpus is harsh on full-text search (every question word occurs in
~10% of notes). This one is real conversation: each copy of LoCoMo's ~5,900 turns gets
its own pair of speaker names for each conversation (so a name is as rare as a person is)
and its own dates; copies are spread over the users. A note's vector is its turn's vector
plus a little noise, so nothing needs embedding past the turns themselves (a million
turns would take hours). Questions are LoCoMo's, their speakers renamed to a copy that
the asking user holds.

The dataset is read where it lies (`--data`), never copied: it is for research only.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from remem.bench.locomo import load
from remem.embedders import Embedder

FIRST = """Ana Bo Chen Dara Emil Fatima Gus Hana Ivo Jun Kai Lena Milo Nia Omar Pia Quinn Rosa
Sami Tao Uma Vic Wren Xia Yara Zeno Aiko Bram Cleo Dev Esme Finn Gia Hugo Iris Jonah Kira Leo
Maya Nils Oona Paco Rhea Sven Tess Ugo Vera Wim Yuki Zara""".split()  # noqa: SIM905
LAST = """Abe Berg Cruz Dahl Eng Ford Gray Holm Ito Jang Kerr Lund Moss Nash Ortiz Park Quist
Rios Sato Tran Ueda Voss Wolf Yang Zorn""".split()  # noqa: SIM905


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    vectors: np.ndarray
    users: np.ndarray
    questions: list[tuple[str, int]]  # (question, the user whose memory holds its copy)


def build(path: Path, size: int, users: int, embedder: Embedder, seed: int = 7) -> Corpus:
    samples = load(path)
    turns = [
        (index, turn.speaker, turn.text)
        for index, sample in enumerate(samples)
        for session in sample.sessions
        for turn in session.turns
    ]
    speakers = [sorted({t.speaker for s in sample.sessions for t in s.turns}) for sample in samples]
    own = np.concatenate(
        [embedder.embed_batch([t[2] for t in turns[i : i + 64]]) for i in range(0, len(turns), 64)]
    )
    rng = np.random.default_rng(seed)
    texts, rows, owners = [], [], []
    for i in range(size):
        copy, (sample, _, text) = divmod(i, len(turns))[0], turns[i % len(turns)]
        texts.append(_renamed(text, speakers[sample], copy, sample))
        rows.append(i % len(turns))
        owners.append(copy % users)
    noise = 0.05 * rng.standard_normal((size, own.shape[1]), dtype=np.float32)
    vectors = own[rows] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    copies = max(1, -(-size // len(turns)))
    asker = random.Random(seed)
    questions = []
    for sample_index, sample in enumerate(samples):
        for question in sample.questions:
            copy = asker.randrange(copies)
            renamed = _renamed(question.text, speakers[sample_index], copy, sample_index)
            questions.append((renamed, copy % users))
    asker.shuffle(questions)
    return Corpus(texts, vectors.astype(np.float32), np.array(owners), questions)


def _renamed(text: str, speakers: list[str], copy: int, sample: int) -> str:
    """The text with each speaker's first name swapped for this copy's name of them."""
    for position, speaker in enumerate(speakers):
        first = speaker.split()[0]
        name = _name(copy, sample, position)
        text = re.sub(rf"\b{re.escape(first)}\b", name, text)
    return text


def _name(copy: int, sample: int, position: int) -> str:
    key = (copy * 31 + sample) * 2 + position
    return f"{FIRST[key % len(FIRST)]}{LAST[(key // len(FIRST)) % len(LAST)]}"
