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
from django.db import DataError, IntegrityError, models, transaction

from audit.anchor import anchor_writer_lock
from dataplane.events import STREAM_FIELD, is_begin, spool_files, stream_key
from ledger.models import RequestLog, UsageDeadLetter

log = logging.getLogger("tollgate.ledger")

GROUP = "ledger"
BATCH = 500
_FIELDS = {f.name for f in RequestLog._meta.get_fields()} - {"id"}


_TEXT_LIMITS = {
    f.name: f.max_length for f in RequestLog._meta.get_fields() if isinstance(f, models.CharField)
}
_TEXT = (*_TEXT_LIMITS, "error_message")
_BIGINT = 2**63 - 1


def _clean_text(value: Any, limit: int | None) -> str:
    """What a text column can hold: no NUL (PostgreSQL refuses it), no lone
    surrogates, at most the column's length."""
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit] if limit else text


def _row(event: dict[str, Any]) -> RequestLog:
    values = {k: v for k, v in event.items() if k in _FIELDS}
    values["created_at"] = datetime.fromtimestamp(float(event["ts"]), tz=UTC)
    values["cost_usd"] = Decimal(str(event.get("cost_usd") or "0"))
    for text in _TEXT:
        value = values.get(text)
        values[text] = "" if value is None else _clean_text(value, _TEXT_LIMITS.get(text))
    for name, value in values.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > _BIGINT:
            raise ValueError(f"{name} is out of range: {value}")
    return RequestLog(**values)


def _dead_letter(payload: Any, error: BaseException | str) -> UsageDeadLetter:
    if isinstance(payload, dict):
        request_id = _clean_text(payload.get("request_id") or "", 64)
        text = orjson.dumps(payload, default=str).decode()
    else:
        request_id = ""
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
    log.error("usage event %s moved to the dead-letter list: %s", request_id or "(unreadable)", error)
    return UsageDeadLetter(request_id=request_id, payload=_clean_text(text, None), error=_clean_text(error, 2000))


# What a row the database will not take raises; anything else (the database
# being down) propagates, so the batch stays queued and is retried.
_BAD_ROW = (DataError, IntegrityError, ValueError, OverflowError)


def store(events: list[Any]) -> int:
    """Insert events; duplicates (same request id) are skipped. An event no
    column can hold goes to the dead-letter list instead of holding back its
    batch. Returns events handled (stored or set aside)."""
    rows: list[tuple[Any, RequestLog]] = []
    dead: list[UsageDeadLetter] = []
    for event in events:
        if is_begin(event):
            continue  # a request going upstream: its end, or its worker's successor, writes the row
        try:
            if not isinstance(event, dict):
                raise ValueError("not a JSON object")
            rows.append((event, _row(event)))
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            dead.append(_dead_letter(event, exc))
    try:
        with transaction.atomic():
            # Lets the audit anchorer know when no insert is in flight (audit/anchor.py).
            anchor_writer_lock()
            RequestLog.objects.bulk_create([r for _, r in rows], batch_size=BATCH, ignore_conflicts=True)
            UsageDeadLetter.objects.bulk_create(dead)
    except _BAD_ROW:
        # One row in the batch is bad: row by row, each in a savepoint.
        with transaction.atomic():
            anchor_writer_lock()
            for event, row in rows:
                try:
                    with transaction.atomic():
                        RequestLog.objects.bulk_create([row], ignore_conflicts=True)
                except _BAD_ROW as exc:
                    dead.append(_dead_letter(event, exc))
            UsageDeadLetter.objects.bulk_create(dead)
    return len(events)


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
                events.append(line)
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
                events.append(raw)
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
