"""The log writer never stops on one bad event: it is set aside, the rest lands."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from django.conf import settings

from dataplane.events import STREAM_FIELD, spool_write, stream_key
from ledger.models import RequestLog, UsageDeadLetter
from tests.conftest import REDIS

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}


def event(request_id: str, **fields) -> dict:
    return {
        "request_id": request_id, "ts": time.time(), "endpoint": "messages", "status": 200,
        "model_requested": "claude-sonnet-4-5", "model_served": "claude-sonnet-4-5", **fields,
    }


def enqueue(lines: list[bytes]) -> None:
    """Put events on the queue the data plane writes to (stream or spool)."""
    if REDIS:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        for line in lines:
            client.xadd(stream_key(settings.REDIS_PREFIX), {STREAM_FIELD: line})
        client.close()
    else:
        spool_write(settings.SPOOL_DIR, lines)


HOSTILE = [
    event("bad-nul", model_requested="claude-sonnet-4-5\u0000x", error_message="a\u0000b"),
    event("bad-long", user_agent="u" * 5000, session_id="s" * 500),
]


def test_it_sets_a_bad_event_aside_and_lands_the_rest(gateway, world, ledger):
    huge = orjson.dumps(event("bad-huge", input_tokens=1)).replace(b'"input_tokens":1', b'"input_tokens":18446744073709551615')
    lines = [orjson.dumps(e) for e in HOSTILE] + [huge, b"{not json", b"[1, 2]", orjson.dumps(event("good-1"))]
    enqueue(lines)
    response = httpx.post(f"{gateway.url}/v1/messages", json=BODY, headers={"x-api-key": world.secret}, timeout=10)
    assert response.status_code == 200
    rows = ledger(2, key_prefix=world.key.prefix) + ledger(1, request_id="good-1")
    assert len(rows) == 2
    ids = set(RequestLog.objects.values_list("request_id", flat=True))
    # Sanitised where a column can hold the cleaned value; set aside where none can.
    assert {"good-1", "bad-nul", "bad-long"} <= ids
    nul = RequestLog.objects.get(request_id="bad-nul")
    assert "\x00" not in nul.model_requested and nul.model_requested.startswith("claude-sonnet-4-5")
    assert len(RequestLog.objects.get(request_id="bad-long").user_agent) == 300
    dead = {d.request_id: d for d in UsageDeadLetter.objects.all()}
    assert "bad-huge" in dead and "out of range" in dead["bad-huge"].error
    assert UsageDeadLetter.objects.filter(request_id="").count() == 2  # the unreadable and the non-object

    # And the queue keeps moving: later events land on the next pass.
    enqueue([orjson.dumps(event("good-2"))])
    assert ledger(1, request_id="good-2")


@pytest.mark.django_db
def test_it_counts_dead_letters_in_the_control_planes_metrics(client):
    UsageDeadLetter.objects.create(request_id="x", payload="{}", error="boom")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "tollgate_usage_dead_letters 1" in response.content.decode()
