"""MCP gateway benchmark: the latency Tollgate adds to one ``tools/call``.

    .venv/bin/python bench/mcp_gateway.py [--calls 500]

On 127.0.0.1 in a throwaway directory (embedded backend): the fake MCP server
(tests/fakes/mcp_server.py, its own process), a world seeded through
governance.services in a fresh SQLite database, and one data-plane worker
(uvicorn, uvloop + httptools). The official SDK's client calls the fake's
``echo`` tool sequentially, alternating between the server directly and
through the gateway's ``/mcp``, on each protocol revision; it prints latency
percentiles of each and the difference (the gateway's added latency per call:
authentication, policy, the upstream session hop, the usage event).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdef"
sys.path.insert(0, str(ROOT))
from tests.fakes.mcp_server import STATIC_TOKEN  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(upstream: str) -> None:
    """Run in a child process with the bench's Django settings: create a key and the server."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from governance import services
    from governance.snapshot import snapshot_publish

    admin = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", "bench-password-1")
    org = services.organization_create(actor=admin, name="Bench", slug="bench")
    _, secret = services.key_create(actor=admin, organization=org, name="bench")
    services.mcp_server_create(
        actor=admin, name="files", transport="http", url=upstream, auth="headers",
        headers={"Authorization": f"Bearer {STATIC_TOKEN}"},
    )
    print(json.dumps({"secret": secret, "version": snapshot_publish()}))


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer") from exc
            time.sleep(0.1)


async def measure(direct: str, token: str, gateway: str, secret: str, mode: str, calls: int) -> dict[str, list[float]]:
    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    def client(url: str, bearer: str) -> Client:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}, timeout=30)
        return Client(streamable_http_client(url, http_client=http), mode=mode, cache=None)

    timings: dict[str, list[float]] = {"direct": [], "gateway": []}
    async with client(direct, token) as d, client(f"{gateway}/mcp", secret) as g:
        for _ in range(50):  # warm up both paths (connections, the gateway's upstream session)
            await d.call_tool("echo", {"text": "warm"})
            await g.call_tool("files__echo", {"text": "warm"})
        for i in range(calls):
            for name, c, tool in (("direct", d, "echo"), ("gateway", g, "files__echo"))[:: 1 if i % 2 else -1]:
                started = time.perf_counter()
                result = await c.call_tool(tool, {"text": f"call {i}"})
                timings[name].append((time.perf_counter() - started) * 1000)
                assert result.content[0].text == f"call {i}"
    return timings


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed(args.seed)
        return
    procs: list[subprocess.Popen[Any]] = []
    with tempfile.TemporaryDirectory(prefix="tollgate-mcp-bench-") as tmp:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "controlplane.settings",
            "TOLLGATE_DATA_DIR": tmp,
            "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            "TOLLGATE_SECRET_KEY": SECRET_KEY,
            "TOLLGATE_REDIS_PREFIX": f"tgbench-{secrets.token_hex(4)}:",
        }
        env.pop("REDIS_URL", None)
        try:
            fake = subprocess.Popen(
                [PY, "-m", "tests.fakes.mcp_server"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
            )
            procs.append(fake)
            assert fake.stdout is not None
            direct = fake.stdout.readline().strip()
            subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
            seeded = json.loads(
                subprocess.run([PY, __file__, "--seed", direct], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
            )
            port = free_port()
            gateway = f"http://127.0.0.1:{port}"
            procs.append(
                subprocess.Popen(
                    [PY, "-m", "uvicorn", "dataplane.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                     "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
                    cwd=ROOT, env=env,
                )
            )
            wait_http(f"{gateway}/readyz")
            print(f"MCP gateway benchmark: {args.calls} sequential tools/call per path and revision, echo tool, 1 worker, embedded backend")
            print("| revision | path | p50 ms | p90 ms | p99 ms | mean ms |")
            print("| --- | --- | --- | --- | --- | --- |")
            added: dict[str, tuple[float, float]] = {}
            for mode, label in (("2026-07-28", "2026-07-28 (stateless)"), ("legacy", "2025-11-25 (session)")):
                t = asyncio.run(measure(direct, STATIC_TOKEN, gateway, seeded["secret"], mode, args.calls))
                for name in ("direct", "gateway"):
                    v = t[name]
                    print(f"| {label} | {name} | {pct(v, .5):.2f} | {pct(v, .9):.2f} | {pct(v, .99):.2f} | {statistics.fmean(v):.2f} |")
                added[label] = (pct(t["gateway"], .5) - pct(t["direct"], .5), pct(t["gateway"], .99) - pct(t["direct"], .99))
            for label, (p50, p99) in added.items():
                print(f"added by the gateway, {label}: p50 {p50:+.2f} ms, p99 {p99:+.2f} ms per tools/call")
        finally:
            for proc in reversed(procs):
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
