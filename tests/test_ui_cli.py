"""`remem ui`: opens the UI of a running server, or starts one on loopback first."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from remem import Memory
from remem.cli.main import cli
from remem.server.app import create_app
from remem.testing import HashEmbedder
from remem.testing.http import running


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_it_prints_the_address_of_a_running_server(tmp_path: Path) -> None:
    with (
        Memory(tmp_path / "m.db", embedder=HashEmbedder(), llm=None) as memory,
        running(create_app(memory)) as url,
    ):
        port = url.rsplit(":", 1)[1]
        env = {"REMEM_DB": str(tmp_path / "unused.db"), "REMEM_EMBEDDER": "hash"}
        result = CliRunner().invoke(cli, ["ui", "--port", port, "--no-browser"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{url}/"
    assert not (tmp_path / "unused.db").exists()  # it opened no memory of its own


def test_it_starts_no_server_off_loopback() -> None:
    env = {"REMEM_EMBEDDER": "hash"}
    result = CliRunner().invoke(cli, ["ui", "--host", "192.0.2.1", "--no-browser"], env=env)
    assert result.exit_code == 1 and "only on loopback" in result.output


@pytest.mark.slow
def test_it_starts_a_local_server_when_none_runs(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "REMEM_DB": str(tmp_path / "ui.db"), "REMEM_EMBEDDER": "hash"}
    env["REMEM_CONFIG"] = ""
    server = subprocess.Popen(
        [sys.executable, "-m", "remem", "ui", "--port", str(port), "--no-browser"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline().strip()  # printed once the server answers
        assert line == f"http://127.0.0.1:{port}/", server.stderr and server.stderr.read()
        page = httpx.get(line, timeout=10)
        assert page.status_code == 200 and "<h1>Memories</h1>" in page.text
    finally:
        server.terminate()
        server.wait(10)
