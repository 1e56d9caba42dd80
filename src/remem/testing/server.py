"""A scripted OpenAI-compatible server on 127.0.0.1, for tests over real HTTP.

    with ScriptedOpenAIServer() as server:
        server.fail_next(503, times=2)       # the next two requests answer 503
        embedder = OpenAIEmbedder(server.base_url, "test-model")

`/v1/embeddings` answers with `HashEmbedder` vectors, so results are deterministic.
`/v1/chat/completions` answers with the replies queued by `server.reply(...)` (then "ok"),
as one JSON completion or, when the request asks to `stream`, as server-sent events. A
reply may be kept for requests that contain a given text (`when=`), e.g. the name of a
pipeline step's JSON schema, and may be used many times (`times=None`: always).
`server.slow_next(seconds)` delays answers, to test timeouts and kills mid-request.
Every request body is kept in `server.requests` for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from remem.testing.embedders import HashEmbedder


class ScriptedOpenAIServer:
    """Serves the OpenAI embeddings protocol from a background thread."""

    def __init__(self, dimensions: int = 64, *, json_schema: bool = True) -> None:
        self.embedder = HashEmbedder(dimensions)
        self.requests: list[dict[str, Any]] = []
        self.json_schema = json_schema  # False: refuse response_format json_schema (llama.cpp)
        self._failures: list[int] = []
        self._replies: list[list[Any]] = []  # [content, when, times left or None]
        self._delays: list[list[Any]] = []  # [seconds, when, times left]
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._http.daemon_threads = True  # a request kept waiting (slow_next) must not
        self._http.block_on_close = False  # hold up the end of a test
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` requests with HTTP `status` and an error body."""
        with self._lock:
            self._failures.extend([status] * times)

    def reply(
        self,
        *contents: str | Callable[[dict[str, Any]], str],
        when: str | None = None,
        times: int | None = 1,
    ) -> None:
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

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one request."""
        with self._lock:
            self.requests.append({"path": path, "body": body})  # received, even if kept waiting
        time.sleep(self._take(self._delays, json.dumps(body), 0.0))
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

    def __enter__(self) -> ScriptedOpenAIServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._http.shutdown()
        self._http.server_close()


def _handler_for(server: ScriptedOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                status, answer = 400, {"error": {"message": "body is not JSON"}}
            else:
                status, answer = server.answer(self.path, body)
            if status == 200 and body.get("stream") and "choices" in answer:
                self._stream(answer)
                return
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _stream(self, completion: dict[str, Any]) -> None:
            """The completion as chunks, word by word, the way OpenAI streams."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            words = completion["choices"][0]["message"]["content"].split(" ")
            deltas = [{"role": "assistant", "content": ""}]
            deltas += [{"content": w if i == 0 else " " + w} for i, w in enumerate(words)]
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
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler
