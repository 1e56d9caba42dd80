"""Schemathesis generates requests from the OpenAPI spec; none may get a 5xx, and every
error must be a JSON body naming the problem. The chat proxy is in the spec too, forwarding
to the scripted upstream. The last test runs `schemathesis run --checks all` (every phase,
stateful included) against the live server: the document says what the server does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from click.testing import CliRunner
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.cli import schemathesis as schemathesis_cli

from remem import Memory
from remem.server.app import create_app
from remem.server.proxy import Upstream
from remem.testing import HashEmbedder, ScriptedOpenAIServer
from remem.testing.http import running

SPEC = create_app(
    Memory(":memory:", embedder=HashEmbedder()), upstream=Upstream("http://-")
).openapi()
schema = schemathesis.openapi.from_dict(SPEC)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "memory.db"
    with (
        ScriptedOpenAIServer() as upstream,
        Memory(path, embedder=HashEmbedder(), jobs="background") as memory,  # as `remem serve`
    ):
        memory.add("a memory to find", user_id="u")
        app = create_app(memory, upstream=Upstream(upstream.base_url, model="scripted"))
        with running(app) as url:
            yield url


def errors_are_json(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code >= 400:
        assert response.json()["error"]["message"], response.text
    return None


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_request_gets_a_server_error(case: Any, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=[not_a_server_error, errors_are_json])


def test_schemathesis_finds_no_failure_with_every_check(
    base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # schemathesis keeps a cache in the working directory
    config = tmp_path / "schemathesis.toml"
    # a valid PATCH whose If-Match names another version is refused with 412, as HTTP says
    accepted = '["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"'
    config.write_text(
        f"[checks.positive_data_acceptance]\nexpected-statuses = {accepted}]\n"
        # a form to fill is itself a JSON Schema: what makes one fillable (a type per field,
        # bounded size, refs only inside it, safe patterns) is not a shape a JSON Schema of
        # the request can say, so the server checks it and names the problem in a 422
        '[[operations]]\ninclude-path = "/v1/fill"\n'
        f'checks.positive_data_acceptance.expected-statuses = {accepted}, "422"]\n'
        # an upload to import is a remem export: its lines (a header, then records) are
        # no shape a JSON Schema of a multipart file can say; the server names the problem
        '[[operations]]\ninclude-path = "/v1/import"\n'
        f'checks.positive_data_acceptance.expected-statuses = {accepted}, "422"]\n'
        # an expiry must lie in the future: a moment no JSON Schema can say, so an add or
        # update with a past `expires_at` is a 422 naming the field
        '[[operations]]\ninclude-path-regex = "^/v1/memories(/\\\\{memory_id\\\\})?$"\n'
        f'checks.positive_data_acceptance.expected-statuses = {accepted}, "422"]\n'
    )
    arguments = [
        f"--config-file={config}",
        "run",
        f"{base_url}/openapi.json",
        "--checks=all",
        "--max-examples=5",  # the coverage phase still tries every documented boundary
        "--workers=1",
        "--seed=12",
        "--no-color",
    ]
    result = CliRunner().invoke(schemathesis_cli, arguments)
    assert result.exit_code == 0, result.output[-6000:]
    assert " passed" in result.output and "failure" not in result.output.lower()
