"""Usage events survive a store that is briefly down: kept, spilled, replayed."""

from __future__ import annotations

import asyncio
import os
import uuid

import orjson
import pytest

from dataplane.events import UsageEvents, spool_files
from dataplane.resp import RedisPipe
from tests.conftest import REDIS

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
pytestmark = pytest.mark.skipif(not REDIS, reason="the Redis usage stream")


def stream_ids(prefix: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        entries = client.xrange(f"{prefix}usage")
        client.delete(f"{prefix}usage")
    finally:
        client.close()
    return [orjson.loads(fields[b"e"])["request_id"] for _, fields in entries]


def test_it_keeps_events_while_redis_is_down_and_delivers_them_after(tmp_path):
    prefix = f"tgtest-events-{uuid.uuid4().hex[:8]}:"

    async def scenario() -> None:
        events = UsageEvents(spool_dir=tmp_path, flush_seconds=60, redis=RedisPipe("redis://127.0.0.1:9/0", timeout=0.5), redis_prefix=prefix)
        for i in range(5):
            events.emit({"request_id": f"r{i}"})
        await events.flush()
        assert events.buffered == 5 and not events.healthy
        events.redis = RedisPipe(REDIS_URL)  # the store is back
        events.emit({"request_id": "r5"})
        await events.flush()
        assert events.buffered == 0 and events.healthy
        await events.redis.close()

    asyncio.run(scenario())
    assert stream_ids(prefix) == [f"r{i}" for i in range(6)]


def test_it_spools_at_shutdown_and_replays_when_redis_answers(tmp_path):
    prefix = f"tgtest-events-{uuid.uuid4().hex[:8]}:"

    async def down() -> None:
        events = UsageEvents(spool_dir=tmp_path, flush_seconds=60, redis=RedisPipe("redis://127.0.0.1:9/0", timeout=0.5), redis_prefix=prefix)
        events.emit({"request_id": "a"})
        events.emit({"request_id": "b"})
        await events.close()

    asyncio.run(down())
    assert len(spool_files(tmp_path)) == 1

    async def back() -> None:
        events = UsageEvents(spool_dir=tmp_path, flush_seconds=0.01, redis=RedisPipe(REDIS_URL), redis_prefix=prefix)
        events.start()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if not spool_files(tmp_path):
                break
        await events.close()
        await events.redis.close()

    asyncio.run(back())
    assert spool_files(tmp_path) == []
    assert stream_ids(prefix) == ["a", "b"]
