"""What the OpenAPI document says beyond the types of the routes: the errors each kind of
route may answer, and the links from an add's answer to the records it made (which let
clients, and schemathesis's stateful tests, follow them)."""

from __future__ import annotations

from typing import Any

from remem.server.errors import documented

# what any request of a caller may get; READ for a GET, WRITE for what changes the memory
READ = documented(401, 413, 421, 422, 503)
WRITE = documented(400, 401, 403, 413, 421, 422, 503)
FORGET = documented(401, 403, 413, 421, 422, 503)
NDJSON: dict[int | str, dict[str, Any]] = {200: {"content": {"application/x-ndjson": {}}}}


def _link(path: str, method: str, parameter: str, field: str) -> dict[str, Any]:
    """An OpenAPI link from an add's answer to a route of what it made."""
    ref = "#/paths/" + path.replace("/", "~1") + "/" + method
    return {"operationRef": ref, "parameters": {parameter: f"$response.body#/{field}/0"}}


# what a client (or a fuzzer) can do next with the ids an add returns
ADDED: dict[int | str, dict[str, Any]] = {
    201: {
        "links": {
            name: _link(path, method, parameter, field)
            for name, (path, method, parameter, field) in {
                "GetNote": ("/v1/memories/{memory_id}", "get", "memory_id", "note_ids"),
                "UpdateNote": ("/v1/memories/{memory_id}", "patch", "memory_id", "note_ids"),
                "DeleteNote": ("/v1/memories/{memory_id}", "delete", "memory_id", "note_ids"),
                "GetEpisode": ("/v1/episodes/{episode_id}", "get", "episode_id", "episode_ids"),
            }.items()
        }
    }
}
