"""The script of a fake OpenAI-compatible model: what it answers to each request.

`ScriptedOpenAIServer` serves it over real HTTP and `ScriptedTransport` inside an httpx
client; both answer from this class, so the two speak the same protocol. Scripting:

    script.fail_next(503, times=2)                   # the next two requests answer 503
    script.reply('{"facts": []}', when='"extract"')  # a chat reply for requests with this text
    script.slow_next(1.0)                            # the next request waits a second

`/embeddings` answers with `HashEmbedder` vectors, so results are deterministic.
`/chat/completions` answers with the queued replies (then "ok"), as one JSON completion
or, when the request asks to `stream`, as server-sent events. A reply may be kept for
requests that contain a given text (`when=`), e.g. the name of a pipeline step's JSON
schema, may be used many times (`times=None`: always), and may be a function of the
request body. Every request body is kept in `requests` for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from remem.testing.embedders import HashEmbedder

Content = str | Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class Received:
    """A request as the script saw it: `body` is None when it was not a JSON object."""

    path: str
    body: dict[str, Any] | None
    delay: float  # seconds to keep it waiting before `respond`


@dataclass(frozen=True)
class Reply:
    """What to send back: one chunk for JSON, one per event when streaming."""

    status: int
    media_type: str
    chunks: list[bytes]

    @property
    def streamed(self) -> bool:
        return self.media_type == "text/event-stream"


class OpenAIScript:
    """Decides the status and body of each request; thread-safe."""

    def __init__(self, dimensions: int = 64, *, json_schema: bool = True) -> None:
        self.embedder = HashEmbedder(dimensions)
        self.requests: list[dict[str, Any]] = []
        self.json_schema = json_schema  # False: refuse response_format json_schema (llama.cpp)
        self._failures: list[int] = []
        self._replies: list[list[Any]] = []  # [content, when, times left or None]
        self._delays: list[list[Any]] = []  # [seconds, when, times left]
        self._lock = threading.Lock()

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` requests with HTTP `status` and an error body."""
        with self._lock:
            self._failures.extend([status] * times)

    def reply(self, *contents: Content, when: str | None = None, times: int | None = 1) -> None:
        """Queue chat completion contents, used in order by requests whose JSON body
        contains `when` (any request when None), each `times` times (None: forever). A
        content may be a function of the request body."""
        with self._lock:
            self._replies.extend([content, when, times] for content in contents)

    def slow_next(self, seconds: float, times: int = 1, when: str | None = None) -> None:
        """Make the next `times` requests (that contain `when`) wait `seconds`."""
        with self._lock:
            self._delays.append([seconds, when, times])

    def chat_requests(self) -> list[dict[str, Any]]:
        """The bodies of the chat completion requests received so far."""
        with self._lock:
            return [r["body"] for r in self.requests if r["path"].endswith("/chat/completions")]

    def receive(self, path: str, raw: bytes) -> Received:
        """Record a request (even one that will be kept waiting) and how long it waits."""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return Received(path, None, 0.0)
        return Received(path, body, self._record(path, body))

    def respond(self, received: Received) -> Reply:
        """The answer to a received request, once its wait is over."""
        if received.body is None:
            return _json_reply(400, {"error": {"message": "body is not a JSON object"}})
        status, answer = self._answer_now(received.path, received.body)
        if status == 200 and received.body.get("stream") and "choices" in answer:
            return Reply(200, "text/event-stream", sse_events(answer))
        return _json_reply(status, answer)

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one request, after its scripted wait."""
        time.sleep(self._record(path, body))
        return self._answer_now(path, body)

    def _record(self, path: str, body: dict[str, Any]) -> float:
        """Keep the request; the seconds it is scripted to wait."""
        with self._lock:
            self.requests.append({"path": path, "body": body})
        return float(self._take(self._delays, json.dumps(body), 0.0))

    def _answer_now(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self._failures:
                status = self._failures.pop(0)
                return status, {"error": {"message": f"scripted failure {status}"}}
        if path.rstrip("/").endswith("/embeddings"):
            return 200, self._embeddings(body)
        if path.rstrip("/").endswith("/chat/completions"):
            asked = (body.get("response_format") or {}).get("type")
            if asked == "json_schema" and not self.json_schema:
                return 400, {"error": {"message": "response_format json_schema not supported"}}
            return 200, self._completion(body)
        return 404, {"error": {"message": f"no route {path}"}}

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        vectors = self.embedder.embed_batch(texts)
        return {
            "object": "list",
            "model": body.get("model"),
            "data": [
                {"object": "embedding", "index": i, "embedding": vector.tolist()}
                for i, vector in enumerate(vectors)
            ],
        }

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        content = self._take(self._replies, json.dumps(body), "ok")
        if callable(content):
            content = content(body)
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model") or "scripted",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": len(content.split()),
                "total_tokens": prompt + len(content.split()),
            },
        }

    def _take(self, scripted: list[list[Any]], request: str, default: Any) -> Any:
        """The first scripted value whose `when` the request contains (one-off values before
        standing ones), counting one use of it."""
        with self._lock:
            for entry in sorted(scripted, key=lambda e: e[2] is None):
                value, when, times = entry
                if when is None or when in request:
                    if times is not None:
                        entry[2] -= 1
                        if entry[2] == 0:
                            scripted.remove(entry)
                    return value
        return default


def sse_events(completion: dict[str, Any]) -> list[bytes]:
    """A chat completion as server-sent events, word by word, the way OpenAI streams."""
    words = completion["choices"][0]["message"]["content"].split(" ")
    deltas: list[dict[str, str]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": w if i == 0 else " " + w} for i, w in enumerate(words)]
    events = []
    for index, delta in enumerate(deltas):
        chunk = {
            "id": completion["id"],
            "object": "chat.completion.chunk",
            "created": 0,
            "model": completion["model"],
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "finish_reason": "stop" if index == len(deltas) - 1 else None,
                }
            ],
        }
        events.append(f"data: {json.dumps(chunk)}\n\n".encode())
    return [*events, b"data: [DONE]\n\n"]


def _json_reply(status: int, answer: dict[str, Any]) -> Reply:
    return Reply(status, "application/json", [json.dumps(answer).encode()])
