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
Every request body is kept in `server.requests` for assertions. The script is
`OpenAIScript`'s, shared with `ScriptedTransport` (the same model without a socket).
"""

from __future__ import annotations

import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from remem.testing.script import OpenAIScript


class ScriptedOpenAIServer(OpenAIScript):
    """Serves the script over HTTP from a background thread."""

    def __init__(self, dimensions: int = 64, *, json_schema: bool = True) -> None:
        super().__init__(dimensions, json_schema=json_schema)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._http.daemon_threads = True  # a request kept waiting (slow_next) must not
        self._http.block_on_close = False  # hold up the end of a test
        # a short poll: shutdown() waits for the loop to notice (0.5 s by default)
        serve = partial(self._http.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/v1"

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


def _handler_for(script: OpenAIScript) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received = script.receive(self.path, self.rfile.read(length))
            time.sleep(received.delay)
            reply = script.respond(received)
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.media_type)
            if not reply.streamed:  # a stream ends when the connection closes
                self.send_header("Content-Length", str(sum(map(len, reply.chunks))))
            self.end_headers()
            for chunk in reply.chunks:
                self.wfile.write(chunk)
                self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler
