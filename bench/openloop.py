"""Open-loop load generator: a fixed offered rate, latency without coordinated omission.

Requests are scheduled at fixed intervals (``--rate`` per second) whatever the
responses do; each request's latency runs from its *scheduled* send time, so a
stall in the server (or here) shows up in the percentiles instead of silently
lowering the rate, as it would with a closed-loop tool such as wrk. Requests
scheduled in the first ``--warmup`` seconds are sent but not measured.

The client is a bare HTTP/1.1 keep-alive pool on asyncio protocols with
httptools (llhttp) parsing the responses: the request bytes are built once, and
a request costs a write and a parse, a fraction of a full client library's CPU,
which matters when the generator shares a small machine with what it measures.
A request takes an idle connection or opens a new one, never waits for one.

Prints one JSON object: counts, latency and time-to-first-body-byte
percentiles in milliseconds, and how late the scheduler fell behind.

    python bench/openloop.py --url http://127.0.0.1:9100/v1/messages \\
        --header x-api-key:KEY --body '{"model": ...}' --rate 1000 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import httptools

clock = time.perf_counter


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), int(-(-p * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def summary(values: list[float]) -> dict[str, float | None]:
    values = sorted(values)
    out: dict[str, float | None] = {f"p{p:g}": percentile(values, p) for p in (50, 90, 99, 99.9)}
    out["max"] = values[-1] if values else None
    out["mean"] = sum(values) / len(values) if values else None
    return {k: (round(v * 1000, 3) if v is not None else None) for k, v in out.items()}


class Recorder:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.ttfbs: list[float] = []
        self.statuses: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.completed = 0
        self.bytes = 0
        self.inflight = 0

    def done(
        self,
        status: int,
        scheduled: float,
        first: float | None,
        end: float,
        size: int,
        measured: bool,
    ) -> None:
        self.inflight -= 1
        self.completed += 1
        self.bytes += size
        key = str(status)
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if measured and status == 200:
            self.latencies.append(end - scheduled)
            self.ttfbs.append((first if first is not None else end) - scheduled)

    def failed(self, name: str) -> None:
        self.inflight -= 1
        self.errors[name] = self.errors.get(name, 0) + 1


class Conn(asyncio.Protocol):
    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.busy = False
        self.scheduled = 0.0
        self.measured = False
        self.first: float | None = None
        self.size = 0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(type(exc).__name__)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.forget(self)
        if self.busy:
            self._fail("ConnectionLost")

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        if self.first is None:
            self.first = clock()
        self.size += len(body)

    def on_message_complete(self) -> None:
        end = clock()
        self.busy = False
        self.client.rec.done(
            self.parser.get_status_code(), self.scheduled, self.first, end, self.size, self.measured
        )
        if self.parser.should_keep_alive():
            self.client.idle.append(self)
        else:
            self.client.forget(self)
            if self.transport is not None:
                self.transport.close()

    def start(self, scheduled: float, measured: bool) -> None:
        self.busy = True
        self.scheduled = scheduled
        self.measured = measured
        self.first = None
        self.size = 0
        assert self.transport is not None
        self.transport.write(self.client.request)

    def _fail(self, name: str) -> None:
        if self.busy:
            self.busy = False
            self.client.rec.failed(name)
        self.client.forget(self)
        if self.transport is not None:
            self.transport.abort()


class Client:
    def __init__(self, url: str, headers: list[str], body: bytes) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {path} HTTP/1.1", f"host: {parts.netloc}"]
        lines += [
            f"{name.strip()}: {value.strip()}" for name, value in (h.split(":", 1) for h in headers)
        ]
        lines.append(f"content-length: {len(body)}")
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        self.idle: list[Conn] = []
        self.conns: set[Conn] = set()
        self.rec = Recorder()
        self.opened = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def forget(self, conn: Conn) -> None:
        self.conns.discard(conn)
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def send(self, scheduled: float, measured: bool) -> None:
        self.rec.inflight += 1
        if self.idle:
            self.idle.pop().start(scheduled, measured)
            return
        task = asyncio.get_running_loop().create_task(self._open_and_send(scheduled, measured))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_and_send(self, scheduled: float, measured: bool) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: Conn(self), self.host, self.port)
        except OSError as exc:
            self.rec.failed(type(exc).__name__)
            return
        self.opened += 1
        self.conns.add(conn)
        conn.start(scheduled, measured)

    def close(self) -> None:
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.abort()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    client = Client(args.url, args.header, args.body.encode())
    interval = 1.0 / args.rate
    total = int(round((args.warmup + args.duration) * args.rate))
    warm = int(round(args.warmup * args.rate))
    max_lag = 0.0
    start = clock() + 0.05
    for i in range(total):
        scheduled = start + i * interval
        now = clock()
        if scheduled > now:
            await asyncio.sleep(scheduled - now)
        else:
            max_lag = max(max_lag, now - scheduled)
        client.send(scheduled, i >= warm)
    sent_for = clock() - start
    deadline = clock() + args.timeout
    while client.rec.inflight > 0 and clock() < deadline:
        await asyncio.sleep(0.005)
    unfinished = client.rec.inflight
    client.close()
    rec = client.rec
    return {
        "rate": args.rate,
        "scheduled": total,
        "measured_scheduled": total - warm,
        "completed": rec.completed,
        "measured": len(rec.latencies),
        "statuses": rec.statuses,
        "errors": rec.errors,
        "unfinished": unfinished,
        "connections_opened": client.opened,
        "send_seconds": round(sent_for, 3),
        "max_scheduler_lag_ms": round(max_lag * 1000, 3),
        "bytes_per_response": round(rec.bytes / rec.completed) if rec.completed else 0,
        "latency_ms": summary(rec.latencies),
        "ttfb_ms": summary(rec.ttfbs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--header", action="append", default=[], help="name:value, repeatable")
    parser.add_argument("--body", required=True)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--duration", type=float, default=10, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1, help="unmeasured seconds first")
    parser.add_argument(
        "--timeout", type=float, default=10, help="wait this long for stragglers, seconds"
    )
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
