"""What the organising pipeline adds to `add`: model calls and prompt tokens per turn, and
add latency with and without a model. The model is remem's scripted OpenAI-compatible
server answering at once, so the latency is remem's own pipeline overhead.

    python benchmarks/bench_pipeline.py                 # 30 adds of 1 turn, 30 adds of 10
    python benchmarks/bench_pipeline.py --adds 10

The scripted model extracts one fact per turn, adds every fact, enriches each, links each
to its first candidate and evolves nothing: every step that can run does. Prompt tokens
are counted with the bundled WordPiece tokenizer over the prompts remem sent.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from remem import Memory
from remem.llms import OpenAICompatibleLLM
from remem.testing import ScriptedOpenAIServer
from remem.tokens import count_tokens

sys.path.insert(0, str(Path(__file__).parent))
from bench_core import percentile, sentence

_TURN = re.compile(r"^\[(ep_\w+)\] \[[^]]*\] (.*)$", re.MULTILINE)
_FACT = re.compile(r'"fact": (\d+)')
_ID = re.compile(r'"id": "(nt_\w+)"')


def extract(body: dict[str, Any]) -> str:
    turns = _TURN.findall(body["messages"][1]["content"])
    facts = [{"text": said, "episode_ids": [turn]} for turn, said in turns]
    return json.dumps({"facts": facts})


def per_fact(key: str, item: dict[str, Any]) -> Any:
    def answer(body: dict[str, Any]) -> str:
        question = body["messages"][1]["content"]
        return json.dumps({key: [{"fact": int(i), **item} for i in _FACT.findall(question)]})

    return answer


def link(body: dict[str, Any]) -> str:
    question = json.loads(body["messages"][1]["content"])
    links = [
        {"fact": q["fact"], "target_id": q["earlier"][0]["id"], "relation": "about", "reason": "r"}
        for q in question
        if q["earlier"]
    ]
    return json.dumps({"links": links})


def script(model: ScriptedOpenAIServer) -> None:
    model.reply(extract, when='"name": "extract"', times=None)
    model.reply(per_fact("decisions", {"action": "add"}), when='"name": "reconcile"', times=None)
    item = {"keywords": ["k1", "k2"], "tags": ["t"], "context": "what it is about"}
    model.reply(per_fact("notes", item), when='"name": "enrich"', times=None)
    model.reply(link, when='"name": "link"', times=None)
    model.reply('{"updates": []}', when='"name": "evolve"', times=None)


def run(folder: Path, llm: OpenAICompatibleLLM | None, adds: int, turns: int) -> dict[str, Any]:
    rng = random.Random(11)
    latencies, calls, tokens = [], 0, 0
    with Memory(folder / f"{bool(llm)}-{turns}.db", llm=llm) as memory:
        for index in range(adds):
            messages = [
                {"role": "user", "name": "Ana", "content": sentence(rng)} for _ in range(turns)
            ]
            start = time.perf_counter()
            result = memory.add(messages, user_id="ana", session_id=f"s{index}")
            latencies.append(time.perf_counter() - start)
            calls += result.llm_calls
            tokens += result.llm_tokens
            assert not result.pending_jobs, result
    return {
        "adds": adds,
        "turns_per_add": turns,
        "add_p50_ms": round(1000 * percentile(latencies, 50), 1),
        "add_p95_ms": round(1000 * percentile(latencies, 95), 1),
        "llm_calls_per_turn": round(calls / (adds * turns), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adds", type=int, default=30)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="remem-bench-pipeline-") as name,
        ScriptedOpenAIServer() as model,
    ):
        folder = Path(name)
        script(model)
        for turns in (1, 10):
            report[f"no model, {turns} turn(s)"] = run(folder, None, args.adds, turns)
            before = len(model.chat_requests())
            llm = OpenAICompatibleLLM(model.base_url, "scripted")
            measured = run(folder, llm, args.adds, turns)
            prompts = model.chat_requests()[before:]
            sent = [m["content"] for body in prompts for m in body["messages"]]
            measured["prompt_tokens_per_turn"] = round(count_tokens(sent) / (args.adds * turns), 1)
            steps: dict[str, int] = {}
            for body in prompts:
                step = body["response_format"]["json_schema"]["name"]
                steps[step] = steps.get(step, 0) + 1
            measured["calls_by_step"] = steps
            report[f"scripted model, {turns} turn(s)"] = measured
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
