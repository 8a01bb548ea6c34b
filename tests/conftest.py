"""Shared fixtures: a fake Anthropic server, real data-plane processes, the ledger.

The suite runs on whichever backends the environment names: the embedded
default (SQLite, file snapshot, spool files) without DATABASE_URL/REDIS_URL,
PostgreSQL and Redis with them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings

from tests.fakes.anthropic import FakeAnthropic

ROOT = Path(__file__).resolve().parent.parent
REDIS = bool(os.environ.get("REDIS_URL"))
# The data plane must never touch the database: its processes get a database
# URL that refuses connections, so any ORM query on the hot path fails a test.
FORBIDDEN_DATABASE_URL = "postgres://forbidden@127.0.0.1:9/forbidden"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tollgate-state")


@pytest.fixture(scope="session", autouse=True)
def _isolated_state(state_dir: Path) -> Iterator[None]:
    """Point snapshot, spool and Redis keys at this run's own places."""
    saved = {k: getattr(settings, k) for k in ("DATA_DIR", "SNAPSHOT_FILE", "SPOOL_DIR", "REDIS_PREFIX", "CHANNEL_LAYERS")}
    settings.DATA_DIR = state_dir
    settings.SNAPSHOT_FILE = state_dir / "snapshot.json"
    settings.SPOOL_DIR = state_dir / "spool"
    settings.REDIS_PREFIX = f"tgtest-{uuid.uuid4().hex[:8]}:"
    if REDIS:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": f"{settings.REDIS_PREFIX}asgi"},
            }
        }
    yield
    if REDIS:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter(f"{settings.REDIS_PREFIX}*"):
            client.delete(key)
        client.close()
    for key, value in saved.items():
        setattr(settings, key, value)


@pytest.fixture(autouse=True)
def _audit_flushable(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test on real commits ends with a flush of every table, which the audit
    tables refuse while they hold rows (audit/guard.py): just before it, empty
    them as a database owner would, and put the guard back."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker is not None and marker.kwargs.get("transaction"))
    for name in ("transactional_db", "live_server"):
        if name in request.fixturenames:
            # Set up first, so that its flush comes after this fixture's teardown.
            request.getfixturevalue(name)
            transactional = True
    yield
    if transactional:
        from django.db import connection, transaction

        from audit.guard import guard_install
        from tests.audit.tamper import raw, triggers_off

        with request.getfixturevalue("django_db_blocker").unblock(), transaction.atomic():
            triggers_off()
            raw("DELETE FROM audit_auditevent")
            raw("DELETE FROM audit_auditarchive")
            guard_install(connection)


class GatewayProcess:
    """One data-plane worker (uvicorn) in its own process, as production runs it."""

    def __init__(self, state_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "controlplane.settings",
            "TOLLGATE_SECRET_KEY": settings.SECRET_KEY,
            "TOLLGATE_DATA_DIR": str(state_dir),
            "TOLLGATE_REDIS_PREFIX": settings.REDIS_PREFIX,
            "TOLLGATE_SNAPSHOT_POLL_SECONDS": "0.1",
            "TOLLGATE_EVENT_FLUSH_SECONDS": "0.02",
            "DATABASE_URL": FORBIDDEN_DATABASE_URL,
            **env,
        }
        self.log_path = state_dir / f"gateway-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (open for the process's lifetime)
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "dataplane.asgi:application",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                "--timeout-graceful-shutdown", "5",
            ],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        # Generous: on a loaded two-core machine importing the app alone can take 20 s.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"gateway did not start: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def version(self) -> int:
        return int(httpx.get(f"{self.url}/readyz", timeout=2).json()["snapshot_version"])

    def wait_version(self, version: int, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.version() >= version:
                return
            time.sleep(0.02)
        raise AssertionError(f"gateway at version {self.version()}, expected {version}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic().start()
    yield fake
    fake.stop()


@pytest.fixture
def anthropic_upstream(fake_anthropic: FakeAnthropic) -> FakeAnthropic:
    fake_anthropic.reset()
    return fake_anthropic


@pytest.fixture(scope="session")
def gateway(state_dir: Path, _isolated_state: None) -> Iterator[GatewayProcess]:
    proc = GatewayProcess(state_dir, TOLLGATE_MAX_BODY_BYTES=str(8 * 1024 * 1024))
    yield proc
    proc.stop()
    assert "Traceback" not in proc.log(), proc.log()


@pytest.fixture
def publish(gateway: GatewayProcess):
    """Publish the snapshot now and wait until the gateway serves it."""
    from governance.snapshot import snapshot_publish

    def _publish(*gateways: GatewayProcess) -> int:
        version = snapshot_publish()
        for gw in gateways or (gateway,):
            gw.wait_version(version)
        return version

    return _publish


@pytest.fixture(scope="session")
def stream_drain(_isolated_state: None) -> Iterator[Any]:
    if not REDIS:
        yield None
        return
    from ledger.writer import StreamDrain

    drain = StreamDrain()
    yield drain
    drain.close()


@pytest.fixture
def ledger(stream_drain: Any):
    """Run the log writer until the expected rows are in the request log."""
    from ledger.models import RequestLog
    from ledger.writer import drain_all

    def wait(count: int, timeout: float = 10, **filters: Any) -> list[RequestLog]:
        deadline = time.monotonic() + timeout
        while True:
            drain_all(stream_drain, block_ms=50 if stream_drain else None)
            rows = list(RequestLog.objects.filter(**filters).order_by("created_at", "id"))
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.03)

    return wait


class World:
    """acme / payments, with charlie (developer) holding a key to an Anthropic provider."""

    def __init__(self, fake: FakeAnthropic) -> None:
        from django.contrib.auth import get_user_model

        from governance import services
        from governance.models import Role

        self.alice = get_user_model().objects.create_superuser("alice", "alice@example.com", "alice-password-1")
        self.acme = services.organization_create(actor=self.alice, name="Acme", slug="acme")
        self.payments = services.team_create(actor=self.alice, organization=self.acme, name="Payments")
        self.charlie = services.user_create(
            actor=self.alice, username="charlie", email="charlie@example.com",
            organization=self.acme, role=Role.DEVELOPER, team=self.payments,
        )
        self.provider = services.provider_create(
            actor=self.alice, name="anthropic", kind="anthropic", base_url=fake.url, credential=fake.api_key
        )
        self.key, self.secret = self.new_key("charlie laptop")

    def new_key(self, name: str, **kwargs: Any) -> tuple[Any, str]:
        from governance import services

        return services.key_create(
            actor=self.alice, organization=self.acme, team=self.payments, user=self.charlie, name=name, **kwargs
        )


@pytest.fixture
def world(db: None, anthropic_upstream: FakeAnthropic, publish: Any) -> World:
    w = World(anthropic_upstream)
    publish()
    return w


@pytest.fixture(scope="session")
def _fake_openai() -> Iterator[Any]:
    from tests.fakes.openai import FakeOpenAI

    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture
def openai_upstream(_fake_openai: Any) -> Any:
    _fake_openai.reset()
    return _fake_openai


@pytest.fixture(scope="session")
def _fake_bedrock() -> Iterator[Any]:
    from tests.fakes.bedrock import FakeBedrock

    fake = FakeBedrock().start()
    yield fake
    fake.stop()


@pytest.fixture
def bedrock_upstream(_fake_bedrock: Any) -> Any:
    _fake_bedrock.reset()
    return _fake_bedrock


@pytest.fixture(scope="session")
def _fake_vertex() -> Iterator[Any]:
    from tests.fakes.vertex import FakeVertex

    fake = FakeVertex().start()
    yield fake
    fake.stop()


@pytest.fixture
def vertex_upstream(_fake_vertex: Any) -> Any:
    _fake_vertex.reset()
    return _fake_vertex


@pytest.fixture(scope="session")
def _fake_gemini() -> Iterator[Any]:
    from tests.fakes.gemini import FakeGemini

    fake = FakeGemini().start()
    yield fake
    fake.stop()


@pytest.fixture
def gemini_upstream(_fake_gemini: Any) -> Any:
    _fake_gemini.reset()
    return _fake_gemini


@pytest.fixture(scope="session")
def _fake_mcp() -> Iterator[Any]:
    from tests.fakes.mcp_server import FakeMcpServer

    fake = FakeMcpServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def mcp_upstream(_fake_mcp: Any) -> Any:
    _fake_mcp.reset()
    return _fake_mcp
