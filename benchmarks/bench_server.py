"""The REST server under a bounded local load: requests/s and latency for search and add.

    python benchmarks/bench_server.py                     # 4 clients, 20 s per phase
    python benchmarks/bench_server.py --clients 2 --seconds 5

Starts `remem serve` in a subprocess on 127.0.0.1 (bundled MiniLM, a fresh SQLite file),
loads it with `--preload` notes through the API, then runs each phase: `--clients` threads
sending requests back to back for `--seconds`. Latency is measured at the client, so it
includes HTTP and JSON. Prints the server's RSS after each phase.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_core import percentile, question, sentence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--preload", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="remem-bench-server-") as folder:
        port = _free_port()
        env = {**os.environ, "REMEM_DB": str(Path(folder) / "bench.db"), "REMEM_CONFIG": ""}
        server = subprocess.Popen(
            [sys.executable, "-m", "remem", "serve", "--port", str(port)], env=env
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_for(url)
            rng = random.Random(7)
            _preload(url, [sentence(rng) for _ in range(args.preload)])
            report: dict[str, Any] = {"clients": args.clients, "preload": args.preload}
            lock = threading.Lock()

            def text(make: Callable[[random.Random], str]) -> str:
                with lock:  # one seeded generator shared by the client threads
                    return make(rng)

            phases: dict[str, Callable[[httpx.Client], httpx.Response]] = {
                "search": lambda c: c.post(
                    "/v1/search", json={"query": text(question), "user_id": "u", "limit": 10}
                ),
                "add": lambda c: c.post(
                    "/v1/memories", json={"content": text(sentence), "user_id": "u"}
                ),
            }
            for name, request in phases.items():
                report[name] = _phase(url, request, args.clients, args.seconds)
                report[name]["server_rss_mb"] = _rss_mb(server.pid)
            print(json.dumps(report, indent=2))
        finally:
            server.terminate()
            server.wait(10)


def _phase(
    url: str, request: Callable[[httpx.Client], httpx.Response], clients: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds

    def client_loop() -> None:
        nonlocal failures
        with httpx.Client(base_url=url, timeout=30) as client:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                response = request(client)
                if response.status_code < 300:
                    latencies.append(time.perf_counter() - start)
                else:
                    failures += 1

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - began
    return {
        "requests": len(latencies),
        "failed": failures,
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * percentile(latencies, 50), 1),
        "p95_ms": round(1000 * percentile(latencies, 95), 1),
    }


def _preload(url: str, texts: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=120) as client:
        for start in range(0, len(texts), 200):
            batch = [{"role": "user", "content": t} for t in texts[start : start + 200]]
            answer = client.post("/v1/memories", json={"content": batch, "user_id": "u"})
            answer.raise_for_status()


def _wait_for(url: str) -> None:
    for _ in range(600):
        try:
            httpx.get(f"{url}/healthz").raise_for_status()
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


if __name__ == "__main__":
    main()
