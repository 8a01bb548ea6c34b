"""The log writer: drains usage events into RequestLog, in batches, idempotently.

Runs as its own process (``manage.py run_ledger_writer``) beside the data plane.
Inserts ignore duplicates on ``request_id``, and a batch is acknowledged (stream
entries deleted, spool files removed) only after its transaction commits, so a
crash anywhere replays events instead of losing them.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction

from dataplane.events import STREAM_FIELD, spool_files, stream_key
from ledger.models import RequestLog

log = logging.getLogger("tollgate.ledger")

GROUP = "ledger"
BATCH = 500
_FIELDS = {f.name for f in RequestLog._meta.get_fields()} - {"id"}


def _row(event: dict[str, Any]) -> RequestLog:
    values = {k: v for k, v in event.items() if k in _FIELDS}
    values["created_at"] = datetime.fromtimestamp(float(event["ts"]), tz=UTC)
    values["cost_usd"] = Decimal(str(event.get("cost_usd") or "0"))
    for text in (
        "error_type",
        "error_message",
        "session_id",
        "user_agent",
        "key_prefix",
        "model_requested",
        "model_served",
        "provider_kind",
    ):
        if values.get(text) is None:
            values[text] = ""
    return RequestLog(**values)


def store(events: list[dict[str, Any]]) -> int:
    """Insert events; duplicates (same request id) are skipped. Returns rows offered."""
    rows = [_row(e) for e in events]
    with transaction.atomic():
        RequestLog.objects.bulk_create(rows, batch_size=BATCH, ignore_conflicts=True)
    return len(rows)


def drain_spool(spool_dir: Path | None = None, limit: int = 50) -> int:
    """Ingest complete spool files, oldest first; remove each once committed."""
    spool_dir = spool_dir or Path(settings.SPOOL_DIR)
    total = 0
    for path in spool_files(spool_dir)[:limit]:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        events = []
        for line in raw.splitlines():
            if not line.strip():
                continue
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                log.error("skipping an unreadable usage event in %s", path.name)
        total += store(events)
        path.unlink(missing_ok=True)
    return total


class StreamDrain:
    """Consumer-group reader of the Redis usage stream."""

    def __init__(
        self, url: str | None = None, prefix: str | None = None, consumer: str | None = None
    ) -> None:
        import redis

        self.client = redis.Redis.from_url(url or settings.REDIS_URL, socket_timeout=10)
        self.stream = stream_key(prefix if prefix is not None else settings.REDIS_PREFIX)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        try:
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._own_pending = True

    def drain(self, block_ms: int | None = None) -> int:
        # First our own unacknowledged entries (a previous run of this consumer
        # crashed mid-batch), then entries idle too long at dead consumers.
        if self._own_pending:
            entries = self._read("0", None)
            if not entries:
                self._own_pending = False
        else:
            entries = []
        if not entries:
            claimed = self.client.xautoclaim(
                self.stream, GROUP, self.consumer, min_idle_time=60_000, start_id="0-0", count=BATCH
            )
            entries = [(i, f) for i, f in claimed[1] if f]
        if not entries:
            entries = self._read(">", block_ms)
        if not entries:
            return 0
        events = []
        for _, fields in entries:
            raw = fields.get(STREAM_FIELD)
            if raw is None:
                continue
            try:
                events.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                log.error("skipping an unreadable usage event")
        stored = store(events)
        ids = [i for i, _ in entries]
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(self.stream, GROUP, *ids)
        pipe.xdel(self.stream, *ids)
        pipe.execute()
        return stored

    def _read(self, start: str, block_ms: int | None) -> list[tuple[bytes, dict[bytes, bytes]]]:
        result = self.client.xreadgroup(
            GROUP, self.consumer, {self.stream: start}, count=BATCH, block=block_ms
        )
        if not result:
            return []
        return [(i, f) for i, f in result[0][1]]

    def close(self) -> None:
        self.client.close()


def drain_all(stream: StreamDrain | None = None, block_ms: int | None = None) -> int:
    total = drain_spool()
    if stream is not None:
        total += stream.drain(block_ms)
    return total
