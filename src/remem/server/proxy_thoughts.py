"""The chat proxy's opt-in conclusions (`Upstream(conclude=True)`, `remem serve --conclude`):
after an answer, one more call asks the model what it concluded from the user's memories
that is worth remembering, and each conclusion becomes a thought (`Memory.think`) resting
on the memories it names, of those the answer was given with. Off by default: it costs a
model call per exchange."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import partial

import httpx
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from remem.errors import RememError
from remem.memory import Memory
from remem.types import ContextItem, Scope

log = logging.getLogger("remem.server")
MAX_CONCLUSIONS = 3  # per exchange: a model asked for conclusions should not flood memory
CONCLUDE = (
    "You answered the user with the help of memories of them, listed below with their ids."
    " What did you conclude about the user that is worth remembering: something that"
    " follows from these memories and is not already one of them, that would help answer"
    ' later questions? Answer in JSON: {"conclusions": [{"text": "one self-contained'
    ' sentence about the user", "evidence_ids": ["ids of the memories it rests on"]}]},'
    f' at most {MAX_CONCLUSIONS}, and {{"conclusions": []}} when nothing is worth keeping.'
    " Use only the ids listed."
)


class Conclusion(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    evidence_ids: list[str] = Field(min_length=1, max_length=50)


class Conclusions(BaseModel):
    conclusions: list[Conclusion] = Field(default_factory=list)


async def conclude(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    model: str | None,
    memory: Memory,
    exchange: tuple[str, str],
    evidence: Sequence[ContextItem],
    scope: Scope,
) -> list[str]:
    """Ask the upstream what it concluded from `evidence` in the exchange (what the user
    said, what it answered) and keep each conclusion as a thought; return their ids. The
    client has its answer already, so a failure is logged, never raised."""
    offered = {item.id: item.text for item in evidence if item.kind == "memory"}
    said, reply = exchange
    if not offered or not reply.strip():
        return []
    question = {
        "memories": [{"id": note_id, "text": text} for note_id, text in offered.items()],
        "user_said": said,
        "you_answered": reply,
    }
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": CONCLUDE},
            {"role": "user", "content": json.dumps(question, ensure_ascii=False)},
        ],
        "response_format": {"type": "json_object"},
    }
    try:
        answer = await client.post("/chat/completions", json=body, headers=headers)
        answer.raise_for_status()
        content = answer.json()["choices"][0]["message"]["content"]
        found = Conclusions.model_validate_json(content).conclusions
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError, ValidationError) as error:
        log.warning("no conclusions for %s: the model's answer failed: %s", scope.user_id, error)
        return []
    kept: list[str] = []
    for conclusion in found[:MAX_CONCLUSIONS]:
        resting = [i for i in dict.fromkeys(conclusion.evidence_ids) if i in offered]
        if not resting:
            continue  # ids the model was not shown: nothing to rest on
        think = partial(
            memory.think,
            conclusion.text,
            evidence_ids=resting,
            user_id=scope.user_id,
            session_id=scope.session_id,
            metadata={"source": "chat proxy"},
        )
        try:
            kept.append((await run_in_threadpool(think)).id)
        except RememError as error:
            log.warning("a conclusion for %s was not kept: %s", scope.user_id, error)
    return kept
