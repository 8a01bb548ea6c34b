"""Usage events out of the data plane: one per request, never lost.

Every event is first appended to this worker's journal, a file on local disk
(one ``write(2)`` into the page cache, ~2 µs, survives the process being
killed), then carried to the queue the log writer drains (ledger/writer.py):

- embedded default: every flush tick the journal file is closed, fsynced and
  renamed into the spool as one complete ``usage-*.jsonl`` file;
- with Redis: a background task XADDs buffered events to the stream
  ``<prefix>usage`` every few tens of milliseconds. A journal file is kept
  until the writer has committed (and deleted) every stream entry it holds.
  Redis that comes back empty (a restart without persistence) is noticed by
  its epoch key going missing, and every journalled event is delivered again;
  the writer inserts idempotently, so a replay never doubles a row.

A request that goes upstream first writes a *begin* record. A worker that dies
(``kill -9``, out of memory) leaves its journal behind, locked by nobody: the
next worker to look (at start, then every few seconds) adopts it, delivers its
events, and turns every begin without an end into a row saying the request
was cut off. Begins of requests still in flight are carried into each new
journal file, so the newest file always names them. What each failure keeps
is written down in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import time
from pathlib import Path
from typing import Any, TypedDict

import orjson


class _RequestFields(TypedDict):
    """One request as the data plane reports it (Exchange.event) and the log
    writer stores it (ledger/writer.py, one RequestLog column per field, ``ts``
    as ``created_at``). tests/ledger/test_event_contract.py fails when the two
    sides disagree on a field."""

    request_id: str
    ts: float
    endpoint: str
    key_id: int | None
    key_prefix: str
    user_id: int | None
    team_id: int | None
    organization_id: int | None
    model_requested: str
    model_served: str
    provider_id: int | None
    provider_kind: str
    route_id: int | None
    attempts: int
    fallback: bool
    stream: bool
    status: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    web_search_requests: int
    long_context: bool
    cost_usd: str  # a Decimal as text: exact to the nano-dollar through JSON
    unpriced: bool
    latency_ms: float
    ttfb_ms: float | None
    overhead_ms: float
    error_type: str
    error_message: str
    client_disconnected: bool
    session_id: str
    agent_id: str
    user_agent: str


class UsageEvent(_RequestFields, total=False):
    # Only on MCP tools/call rows (dataplane/mcp/gateway.py).
    mcp_server: str
    mcp_tool: str
    request_bytes: int
    response_bytes: int
    # Only on the begin record a request's worker journals before it goes upstream.
    begin: bool
    holds: list[str]


log = logging.getLogger("tollgate.events")

SPILL_AT = 50_000
STREAM_FIELD = b"e"
# How often a journal file is closed, and journals of dead workers looked for.
SEAL_SECONDS = 5.0
_seq = itertools.count()
_CHUNK = 500


def stream_key(prefix: str) -> str:
    return f"{prefix}usage"


def epoch_key(prefix: str) -> str:
    return f"{prefix}usage:epoch"


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


def is_begin(event: Any) -> bool:
    return isinstance(event, dict) and bool(event.get("begin"))


def lost_event(begin: dict[str, Any], why: str) -> UsageEvent:
    """The row for a request whose worker stopped before it finished (its begin
    record, read back from a journal)."""
    event: UsageEvent = {k: v for k, v in begin.items() if k != "begin"}  # type: ignore[assignment]
    event["status"] = 502
    event["error_type"] = "worker_lost"
    event["error_message"] = (
        f"The Tollgate worker serving this request {why} before it finished; the answer may have been cut short."
    )
    event["cost_usd"] = "0"
    return event


def _finals_with_lost(lines: list[bytes], why: str, lost: list[dict[str, Any]] | None = None) -> list[bytes]:
    """A dead worker's journal lines as events to deliver: its ends as they are,
    and one "cut off" row for every begin that has no end (collected in ``lost``)."""
    finals: list[bytes] = []
    ended: set[str] = set()
    begins: dict[str, dict[str, Any]] = {}
    for line in lines:
        if b'"begin":true' in line:
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            begins.setdefault(str(doc.get("request_id")), doc)
            continue
        finals.append(line)
        try:
            ended.add(str(orjson.loads(line).get("request_id")))
        except (orjson.JSONDecodeError, AttributeError):
            continue  # the writer sets it aside
    for request_id, begin in begins.items():
        if request_id not in ended:
            finals.append(orjson.dumps(lost_event(begin, why)))
            if lost is not None:
                lost.append(begin)
    return finals


def _read_lines(path: Path) -> list[bytes]:
    try:
        return [line for line in path.read_bytes().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


class Journal:
    """One worker's journal: ``<wid>.lock`` held for the worker's life, and
    numbered ``<wid>.<n>.open`` / ``.sealed`` files of event lines."""

    def __init__(self, root: Path, wid: str) -> None:
        self.dir = root / "journal"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.wid = wid
        self._lock_path = self.dir / f"{wid}.lock"
        # Locked before it gets its name: a worker looking for orphans must
        # never find this lock free in the moment between creating and locking.
        pending = self.dir / f".{wid}.lock.tmp"
        self._lock_fd = os.open(pending, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(pending, self._lock_path)
        self._n = 0
        self.fresh = 0
        self._fd = -1
        self.path = self._open_next()

    def _open_next(self) -> Path:
        self._n += 1
        path = self.dir / f"{self.wid}.{self._n:08d}.open"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.fresh = 0
        return path

    def write(self, line: bytes) -> None:
        os.write(self._fd, line)
        self.fresh += 1

    def rotate(self, carry: list[bytes]) -> tuple[int, Path]:
        """Start the next file, carrying ``carry`` (begins still open) into it;
        returns the old file's descriptor and path, for ``seal``."""
        old = (self._fd, self.path)
        self.path = self._open_next()
        if carry:
            os.write(self._fd, b"".join(carry))
        return old

    @staticmethod
    def seal(fd: int, path: Path) -> Path:
        os.fsync(fd)
        os.close(fd)
        sealed = path.with_suffix(".sealed")
        os.replace(path, sealed)
        return sealed

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    def remove(self) -> None:
        """Our own files are all delivered: leave nothing to adopt."""
        for path in self.dir.glob(f"{self.wid}.*"):
            path.unlink(missing_ok=True)

    def orphans(self) -> list[tuple[str, int]]:
        """Journals whose worker is gone (their lock is free), each locked for us now."""
        found = []
        for lock in self.dir.glob("*.lock"):
            wid = lock.stem
            if wid == self.wid:
                continue
            try:
                fd = os.open(lock, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            found.append((wid, fd))
        return found

    def files_of(self, wid: str) -> list[Path]:
        return sorted(p for p in self.dir.glob(f"{wid}.*") if p.suffix in (".open", ".sealed"))

    def release(self, wid: str, fd: int) -> None:
        for path in self.files_of(wid):
            path.unlink(missing_ok=True)
        (self.dir / f"{wid}.lock").unlink(missing_ok=True)
        os.close(fd)


class UsageEvents:
    def __init__(
        self,
        *,
        spool_dir: Path,
        flush_seconds: float,
        redis: Any = None,
        redis_prefix: str = "",
        wid: str | None = None,
        seal_seconds: float = SEAL_SECONDS,
        on_lost: Any = None,
    ) -> None:
        self.spool_dir = spool_dir
        self.flush_seconds = flush_seconds
        self.seal_seconds = seal_seconds
        self.redis = redis
        self.stream = stream_key(redis_prefix)
        self.epoch_key = epoch_key(redis_prefix)
        self.journal = Journal(spool_dir, wid or f"w{os.getpid()}-{time.time_ns()}")
        self._buffer: list[bytes] = []
        # request id -> its begin line, while the request is in flight.
        self._open: dict[str, bytes] = {}
        # Sealed journal files not yet known committed: (path, last stream id, epoch).
        self._sealed: list[tuple[Path, bytes, bytes | None]] = []
        self._last_id = b""
        self._epoch: bytes | None = None
        self._task: asyncio.Task[None] | None = None
        self._spilled = False
        self._next_seal = 0.0
        self.healthy = True
        self.adopted = 0
        # Called with each cut-off request's begin record (to give back its reservation).
        self.on_lost = on_lost

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def begin(self, event: UsageEvent) -> None:
        """A request is going upstream: journal it, so a dead worker still leaves its row."""
        line = orjson.dumps({**event, "begin": True}) + b"\n"
        self.journal.write(line)
        self._open[event["request_id"]] = line

    def emit(self, event: UsageEvent) -> None:
        line = orjson.dumps(event)
        self.journal.write(line + b"\n")
        self._open.pop(event["request_id"], None)
        if self.redis is not None:
            self._buffer.append(line)

    def start(self) -> None:
        self._next_seal = time.monotonic() + self.seal_seconds
        self._task = asyncio.get_running_loop().create_task(self._run())
        if self.redis is not None and spool_files(self.spool_dir):
            self._spilled = True

    async def _run(self) -> None:
        await self._maintain()
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()
            if time.monotonic() >= self._next_seal:
                self._next_seal = time.monotonic() + self.seal_seconds
                await self._maintain()

    # --- delivery -------------------------------------------------------------

    async def flush(self) -> None:
        if self.redis is None:
            await self._rotate_to_spool()
            return
        if not self._buffer:
            if self._spilled:
                await self._replay_spool()
            return
        batch, self._buffer = self._buffer, []
        try:
            await self._xadd(batch)
            self.healthy = True
        except Exception as exc:
            # Put the batch back in front, in order, and try again next tick.
            self._buffer[:0] = batch
            if self.healthy:
                log.warning("usage events not delivered, keeping %d in memory: %s", len(self._buffer), exc)
            self.healthy = False
            if len(self._buffer) >= SPILL_AT:
                await self._spill()

    async def _rotate_to_spool(self) -> None:
        if not self.journal.fresh:
            return
        fd, path = self.journal.rotate(list(self._open.values()))
        sealed = await asyncio.to_thread(self.journal.seal, fd, path)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        os.replace(sealed, self.spool_dir / f"usage-{time.time_ns()}-{self.journal.wid}-{next(_seq)}.jsonl")

    async def _xadd(self, lines: list[bytes]) -> None:
        if hasattr(self.redis, "call_many"):
            for start in range(0, len(lines), _CHUNK):
                ids = await self.redis.call_many(
                    [("XADD", self.stream, "*", STREAM_FIELD, line) for line in lines[start : start + _CHUNK]]
                )
                if ids:
                    self._last_id = ids[-1]
            return
        pipe = self.redis.pipeline(transaction=False)
        for line in lines:
            pipe.xadd(self.stream, {STREAM_FIELD: line})
        ids = await pipe.execute()
        if ids:
            self._last_id = ids[-1] if isinstance(ids[-1], bytes) else str(ids[-1]).encode()

    async def _spill(self) -> None:
        batch, self._buffer = self._buffer, []
        await asyncio.to_thread(spool_write, self.spool_dir, batch)
        self._spilled = True
        log.warning("spilled %d usage events to %s", len(batch), self.spool_dir)

    async def _replay_spool(self) -> None:
        for path in spool_files(self.spool_dir):
            lines = [line for line in path.read_bytes().splitlines() if line and not is_begin_line(line)]
            try:
                await self._xadd(lines)
            except Exception:
                return
            path.unlink(missing_ok=True)
        self._spilled = False

    # --- the journal's upkeep --------------------------------------------------

    async def _maintain(self) -> None:
        try:
            await self._adopt()
            if self.redis is not None:
                await self._seal_delivered()
                await self._prune()
        except Exception as exc:
            log.warning("usage journal upkeep failed, retrying: %s", exc)

    async def _adopt(self) -> None:
        """Deliver the journals of workers that died, with their cut-off requests."""
        for wid, fd in self.journal.orphans():
            lines: list[bytes] = []
            for path in self.journal.files_of(wid):
                lines += _read_lines(path)
            cut: list[dict[str, Any]] = []
            events = _finals_with_lost(lines, "stopped", cut)
            if self.on_lost is not None:
                for begin in cut:
                    await self.on_lost(begin)
            if events:
                if self.redis is not None:
                    await self._xadd(events)
                else:
                    await asyncio.to_thread(spool_write, self.spool_dir, events)
            self.journal.release(wid, fd)
            self.adopted += len(events)
            log.warning("adopted the journal of stopped worker %s: %d events", wid, len(events))

    async def _seal_delivered(self) -> None:
        """Close the journal file once all its events are in the stream."""
        if self._buffer or self._spilled or not self.journal.fresh:
            return
        fd, path = self.journal.rotate(list(self._open.values()))
        sealed = await asyncio.to_thread(self.journal.seal, fd, path)
        self._sealed.append((sealed, self._last_id, self._epoch))

    async def _prune(self) -> None:
        epoch = await self.redis.call("GET", self.epoch_key)
        if epoch is None or epoch != self._epoch:
            await self.redis.call("SET", self.epoch_key, os.urandom(8).hex(), "NX")
            epoch = await self.redis.call("GET", self.epoch_key)
            if self._epoch is not None:
                await self._redeliver()
            self._epoch = epoch
            self._sealed = [(p, self._last_id, epoch) for p, _, _ in self._sealed]
            return
        first = await self.redis.call("XRANGE", self.stream, "-", "+", "COUNT", "1")
        first_id = _stream_id(first[0][0]) if first else None
        keep = []
        for path, last_id, seen in self._sealed:
            # The writer deletes entries once committed: ours are all gone when
            # the oldest entry left is newer than our last one.
            if seen == epoch and (first_id is None or first_id > _stream_id(last_id)):
                path.unlink(missing_ok=True)
            else:
                keep.append((path, last_id, seen))
        self._sealed = keep

    async def _redeliver(self) -> None:
        """Redis came back without our entries: send every journalled event again."""
        lines: list[bytes] = []
        for path, _, _ in self._sealed:
            lines += _read_lines(path)
        lines += _read_lines(self.journal.path)
        events = [line for line in lines if not is_begin_line(line)]
        log.warning("the usage stream lost its contents (Redis restarted empty?); delivering %d journalled events again", len(events))
        await self._xadd(events)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # Requests still open at shutdown were cut off by it: say so in the log.
        for line in list(self._open.values()):
            self.emit(lost_event(orjson.loads(line), "was stopped"))
        if self.redis is None:
            await self._rotate_to_spool()
            self.journal.close()
            self.journal.remove()
            return
        batch, self._buffer = self._buffer, []
        with contextlib.suppress(Exception):
            if batch:
                await asyncio.wait_for(self._xadd(batch), timeout=5)
                batch = []
            await asyncio.wait_for(self._seal_delivered(), timeout=2)
            deadline = time.monotonic() + 2
            while self._sealed and time.monotonic() < deadline:
                await asyncio.wait_for(self._prune(), timeout=1)
                await asyncio.sleep(0.05)
        # What is not known to be committed goes to a spool file, replayed into
        # the stream by the next worker (the writer skips what it already has).
        lines = list(batch)
        for path, _, _ in self._sealed:
            lines += _read_lines(path)
        lines += _read_lines(self.journal.path)
        pending = [line for line in dict.fromkeys(lines) if not is_begin_line(line)]
        if pending:
            spool_write(self.spool_dir, pending)
            log.warning("spooled %d usage events at shutdown", len(pending))
        self.journal.close()
        self.journal.remove()


def is_begin_line(line: bytes) -> bool:
    return b'"begin":true' in line


def _stream_id(value: Any) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else str(value)
    ms, _, seq = text.partition("-")
    return int(ms or 0), int(seq or 0)
