"""What survives which failure (docs/reliability.md): every served request is
logged, whichever process dies and whatever Redis forgets."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from dataplane.events import UsageEvents
from dataplane.resp import RedisPipe
from ledger.models import RequestLog
from tests.conftest import GatewayProcess, free_port

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}


class PrivateRedis:
    """A Redis of the test's own, without persistence, that it may kill."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path).start()
    yield server
    server.kill()


@pytest.mark.django_db
def test_it_delivers_again_what_redis_forgot_in_a_restart(tmp_path, private_redis):
    from ledger.writer import StreamDrain

    prefix = f"tgtest-durable-{uuid.uuid4().hex[:8]}:"

    async def serve() -> UsageEvents:
        events = UsageEvents(spool_dir=tmp_path / "spool", flush_seconds=60, redis=RedisPipe(private_redis.url, timeout=1), redis_prefix=prefix)
        await events._maintain()  # learns the stream's epoch
        for i in range(200):
            events.emit({"request_id": f"durable-{i}", "ts": time.time(), "endpoint": "messages", "status": 200})
        await events.flush()
        assert events.buffered == 0 and events.healthy
        return events

    async def after_restart(events: UsageEvents) -> None:
        await events._maintain()  # notices the empty Redis and delivers again
        await events.redis.close()

    loop = asyncio.new_event_loop()
    try:
        events = loop.run_until_complete(serve())
        private_redis.kill()  # everything queued in Redis is gone ...
        private_redis.start()  # ... and it comes back empty
        loop.run_until_complete(after_restart(events))
    finally:
        loop.close()
    drain = StreamDrain(url=private_redis.url, prefix=prefix)
    while drain.drain():
        pass
    drain.close()
    assert RequestLog.objects.filter(request_id__startswith="durable-").count() == 200


def test_it_logs_every_request_a_killed_worker_served(gateway, world, publish, anthropic_upstream, ledger, state_dir):
    doomed = GatewayProcess(state_dir)
    try:
        publish(doomed, gateway)
        served = 0
        stop = threading.Event()

        def client() -> int:
            ok = 0
            with httpx.Client(timeout=10) as http:
                while not stop.is_set():
                    try:
                        r = http.post(f"{doomed.url}/v1/messages", json=BODY, headers={"x-api-key": world.secret})
                    except httpx.HTTPError:
                        return ok
                    ok += r.status_code == 200
            return ok

        def slow_stream() -> str:
            try:
                r = httpx.post(f"{doomed.url}/v1/messages", json={**BODY, "stream": True}, headers={"x-api-key": world.secret}, timeout=30)
                return r.text
            except httpx.HTTPError as exc:
                return repr(exc)

        with ThreadPoolExecutor(5) as pool:
            busy = [pool.submit(client) for _ in range(4)]
            time.sleep(1.5)
            anthropic_upstream.event_delay = 0.5
            streaming = pool.submit(slow_stream)
            time.sleep(1.2)  # mid-stream, and mid-burst
            os.kill(doomed.proc.pid, signal.SIGKILL)
            doomed.proc.wait(10)
            stop.set()
            served = sum(f.result() for f in busy)
            streaming.result()
        assert served > 20
        # The surviving worker adopts the dead one's journal within a few seconds.
        rows = ledger(served + 1, timeout=20, key_prefix=world.key.prefix)
        ok = [r for r in rows if r.status == 200]
        lost = [r for r in rows if r.error_type == "worker_lost"]
        assert len(ok) >= served, (len(ok), served)
        assert len(lost) >= 1 and lost[0].stream
        assert len({r.request_id for r in rows}) == len(rows)
        print(f"\nworker killed: served {served} (+1 mid-stream), logged {len(ok)} served + {len(lost)} worker_lost")
    finally:
        doomed.stop()
        anthropic_upstream.event_delay = 0


def test_it_leaves_no_journal_behind_on_a_clean_stop(state_dir, gateway, world, publish):
    worker = GatewayProcess(state_dir)
    publish(worker, gateway)
    response = httpx.post(f"{worker.url}/v1/messages", json=BODY, headers={"x-api-key": world.secret}, timeout=10)
    assert response.status_code == 200
    wid = response.headers["x-tollgate-request-id"][:19]
    worker.stop()
    assert not list((state_dir / "spool" / "journal").glob(f"{wid}.*"))


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="reservations outlive a worker only in Redis")
def test_it_gives_back_the_reservation_of_a_request_its_worker_died_with(gateway, world, publish, anthropic_upstream, ledger, state_dir):
    from decimal import Decimal

    import redis
    from django.conf import settings

    from governance import services

    services.budget_set(actor=world.alice, level="key", organization=world.acme, key=world.key, amount_usd=Decimal("50"), period="monthly")
    doomed = GatewayProcess(state_dir)
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        publish(doomed, gateway)
        anthropic_upstream.event_delay = 0.5
        with ThreadPoolExecutor(1) as pool:
            pool.submit(lambda: httpx.post(f"{doomed.url}/v1/messages", json={**BODY, "stream": True},
                                           headers={"x-api-key": world.secret}, timeout=30))
            time.sleep(1.2)
            held = [int(client.hget(k, "reserved") or 0) for k in client.scan_iter(f"{settings.REDIS_PREFIX}*:b:*") if not k.endswith(b":r")]
            assert sum(held) > 0  # the stream holds its reservation
            os.kill(doomed.proc.pid, signal.SIGKILL)
            doomed.proc.wait(10)
        (row,) = ledger(1, timeout=20, key_prefix=world.key.prefix, error_type="worker_lost")
        held = [int(client.hget(k, "reserved") or 0) for k in client.scan_iter(f"{settings.REDIS_PREFIX}*:b:*") if not k.endswith(b":r")]
        assert sum(held) == 0, held
    finally:
        anthropic_upstream.event_delay = 0
        client.close()
        doomed.stop()
