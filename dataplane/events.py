"""Usage events out of the data plane: one per request, never lost.

Requests append an encoded event to an in-memory buffer; a background task
flushes the buffer every few tens of milliseconds to the queue, so the hot path
pays no I/O. Two queues share one contract (ledger/writer.py drains both):

- Redis stream ``<prefix>usage`` (XADD in one pipeline per flush);
- spool files (embedded default): each flush writes one complete
  ``usage-*.jsonl`` file, renamed into place so a reader never sees half of it.

When Redis is unreachable the buffer keeps growing and the flush retries; past
``SPILL_AT`` events, and at shutdown, what is left goes to spool files, which
the worker replays into the stream once Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("tollgate.events")

SPILL_AT = 50_000
STREAM_FIELD = b"e"
_seq = itertools.count()


def stream_key(prefix: str) -> str:
    return f"{prefix}usage"


def spool_write(spool_dir: Path, lines: list[bytes]) -> Path:
    """Write one complete spool file atomically (tmp + rename)."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    name = f"usage-{time.time_ns()}-{os.getpid()}-{next(_seq)}"
    tmp = spool_dir / f".{name}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(b"\n".join(lines) + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    final = spool_dir / f"{name}.jsonl"
    os.replace(tmp, final)
    return final


def spool_files(spool_dir: Path) -> list[Path]:
    try:
        return sorted(p for p in spool_dir.iterdir() if p.suffix == ".jsonl")
    except FileNotFoundError:
        return []


class UsageEvents:
    def __init__(
        self,
        *,
        spool_dir: Path,
        flush_seconds: float,
        redis: Any = None,
        redis_prefix: str = "",
    ) -> None:
        self.spool_dir = spool_dir
        self.flush_seconds = flush_seconds
        self.redis = redis
        self.stream = stream_key(redis_prefix)
        self._buffer: list[bytes] = []
        self._task: asyncio.Task[None] | None = None
        self._spilled = False
        self.healthy = True

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def emit(self, event: dict[str, Any]) -> None:
        self._buffer.append(orjson.dumps(event))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        if self.redis is not None and spool_files(self.spool_dir):
            self._spilled = True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        if not self._buffer:
            if self._spilled and self.redis is not None:
                await self._replay_spool()
            return
        batch, self._buffer = self._buffer, []
        try:
            await self._write(batch)
            self.healthy = True
        except Exception as exc:
            # Put the batch back in front, in order, and try again next tick.
            self._buffer[:0] = batch
            if self.healthy:
                log.warning("usage events not delivered, keeping %d in memory: %s", len(self._buffer), exc)
            self.healthy = False
            if len(self._buffer) >= SPILL_AT:
                await self._spill()

    async def _write(self, batch: list[bytes]) -> None:
        if self.redis is None:
            await asyncio.to_thread(spool_write, self.spool_dir, batch)
            return
        if hasattr(self.redis, "call_many"):
            await self.redis.call_many([("XADD", self.stream, "*", STREAM_FIELD, line) for line in batch])
            return
        pipe = self.redis.pipeline(transaction=False)
        for line in batch:
            pipe.xadd(self.stream, {STREAM_FIELD: line})
        await pipe.execute()

    async def _spill(self) -> None:
        batch, self._buffer = self._buffer, []
        await asyncio.to_thread(spool_write, self.spool_dir, batch)
        self._spilled = True
        log.warning("spilled %d usage events to %s", len(batch), self.spool_dir)

    async def _replay_spool(self) -> None:
        for path in spool_files(self.spool_dir):
            lines = [line for line in path.read_bytes().splitlines() if line]
            try:
                await self._write(lines)
            except Exception:
                return
            path.unlink(missing_ok=True)
        self._spilled = False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        try:
            await asyncio.wait_for(self._write(batch), timeout=5)
        except Exception:
            spool_write(self.spool_dir, batch)
            log.warning("spooled %d usage events at shutdown", len(batch))
