"""Load LoCoMo samples into a memory file, to look at them with the CLI (profile, topics,
fill, the web UI): every turn one message with its speaker as `name`, each session its own
session id, the sample id as the user id, as `remem bench locomo` adds them.

    python benchmarks/load_locomo.py --db /tmp/locomo.db --samples conv-26
    remem --db /tmp/locomo.db profile --user conv-26 --person Caroline

The dataset is for non-commercial research: it is read where it lies, never copied here.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from remem import Memory
from remem.bench.locomo import load

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "bench" / "locomo10.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--db", required=True, help="the memory file to create or add to")
    parser.add_argument("--samples", nargs="*", help="sample ids (default: all)")
    arguments = parser.parse_args()
    start = time.perf_counter()
    turns = 0
    with Memory(arguments.db, llm=None) as memory:
        for sample in load(arguments.data, arguments.samples):
            for session in sample.sessions:
                messages = [
                    {"role": "user", "name": turn.speaker, "content": turn.text}
                    for turn in session.turns
                ]
                if messages:
                    memory.add(
                        messages,
                        user_id=sample.sample_id,
                        session_id=f"{sample.sample_id}/session_{session.number}",
                        occurred_at=session.occurred_at,
                    )
                    turns += len(messages)
    print(f"{turns} turns in {time.perf_counter() - start:.1f} s -> {arguments.db}")


if __name__ == "__main__":
    main()
