"""A pipelined Redis connection for the hot path: admission and settlement.

redis-py's asyncio client measured ~90 µs of CPU per EVALSHA here (a pool
checkout, a timeout context, retry wrappers and argument encoding around every
call): two calls per request would spend the whole per-request budget. This
keeps one connection per worker, writes each command as soon as it is made and
matches replies to callers in order, the way Redis itself pipelines, with
hiredis parsing the replies. redis-py stays for everything off the hot path.

Failure model: a reply that does not come within ``timeout`` seconds, or a
lost connection, fails every call in flight with ``ConnectionError``; the next
call reconnects.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis


def pack(*args: Any) -> bytes:
    """One RESP command. Commands here are ASCII text and numbers (keys, ids,
    amounts): those are joined as one string and encoded once, about a quarter
    cheaper than a bytes join; anything else takes the general way."""
    text = ["*", str(len(args)), "\r\n"]
    extend = text.extend
    for arg in args:
        if type(arg) is not str:
            if type(arg) is bytes:
                return _pack_bytes(args)
            arg = str(arg)
        elif not arg.isascii():
            return _pack_bytes(args)
        extend(("$", str(len(arg)), "\r\n", arg, "\r\n"))
    return "".join(text).encode()


def _pack_bytes(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        else:
            data = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: RedisPipe) -> None:
        self.owner = owner
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        pending = self.owner.pending
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            if not pending:
                self.owner.broken(ConnectionError("reply with no request"))
                return
            future, _ = pending.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.broken(ConnectionError(f"redis connection lost: {exc}"), protocol=self)


class RedisPipe:
    def __init__(self, url: str, timeout: float = 5.0) -> None:
        parsed = urlparse(url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 6379
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.db = int(parsed.path.lstrip("/") or 0)
        self.ssl = parsed.scheme == "rediss"
        self.timeout = timeout
        self.pending: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._scripts: dict[str, str] = {}
        # Commands made in one event-loop turn leave in one write (one system call);
        # a lingering command waits a little for company (see ``call``).
        self._outbox: list[bytes] = []
        self._flushing: asyncio.Handle | None = None
        self._lingering = False

    # --- connection --------------------------------------------------------------

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self), self.host, self.port, ssl=self.ssl or None),
            self.timeout,
        )
        self._protocol = protocol
        try:
            if self.password:
                creds = (self.username, self.password) if self.username else (self.password,)
                await self.call("AUTH", *creds)
            if self.db:
                await self.call("SELECT", self.db)
        except Exception:
            self.broken(ConnectionError("redis handshake failed"))
            raise
        self._arm_watchdog()

    async def _ensure(self) -> _Protocol:
        while self._protocol is None:
            if self._connecting is None:
                self._connecting = asyncio.get_running_loop().create_future()
                try:
                    await self._connect()
                except BaseException as exc:
                    self._connecting.set_exception(ConnectionError(f"cannot reach redis: {exc!r}"))
                    self._connecting.exception()  # retrieved: the waiters get their own copy
                    self._connecting = None
                    raise ConnectionError(f"cannot reach redis: {exc!r}") from None
                self._connecting.set_result(None)
                self._connecting = None
            else:
                await asyncio.shield(self._connecting)
        return self._protocol

    def broken(self, error: Exception, protocol: _Protocol | None = None) -> None:
        if protocol is not None and protocol is not self._protocol:
            return
        current = self._protocol
        self._protocol = None
        if current is not None and current.transport is not None:
            current.transport.close()
        # Commands not yet written belong to the failed calls below: never send them
        # on the next connection, where their replies would answer someone else.
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None
        self._outbox = []
        while self.pending:
            future, _ = self.pending.popleft()
            if not future.done():
                future.set_exception(error)

    def _arm_watchdog(self) -> None:
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(self.timeout / 4, self._check)

    def _check(self) -> None:
        # Replies come back in order, so only the oldest call can be overdue first.
        self._watchdog = None
        if self.pending and self.pending[0][1] < time.monotonic():
            self.broken(ConnectionError(f"redis did not answer within {self.timeout} s"))
        if self._protocol is not None:
            self._arm_watchdog()

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self.broken(ConnectionError("closed"))

    # --- commands ------------------------------------------------------------------

    async def call(self, *args: Any, linger: float = 0.0) -> Any:
        """One command's reply. With ``linger`` (seconds) the command may wait that
        long to leave with others: settlement lingers, so under load it rides in
        the same write as the next admission instead of a system call of its own
        (and Redis reads both in one go); a command without linger flushes every
        lingering one with it at once."""
        protocol = self._protocol or await self._ensure()
        future = self._enqueue(protocol, pack(*args), time.monotonic() + self.timeout, linger)
        return await future

    async def call_many(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Several commands in one write; their replies in order."""
        protocol = self._protocol or await self._ensure()
        deadline = time.monotonic() + self.timeout
        futures = [self._enqueue(protocol, pack(*args), deadline, 0.0) for args in commands]
        return list(await asyncio.gather(*futures))

    def _enqueue(self, protocol: _Protocol, data: bytes, deadline: float, linger: float) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((future, deadline))
        if self._flushing is None:
            if linger > 0:
                self._flushing = loop.call_later(linger, self._flush, protocol)
                self._lingering = True
            else:
                self._flushing = loop.call_soon(self._flush, protocol)
                self._lingering = False
        elif self._lingering and linger <= 0:
            self._flushing.cancel()
            self._flushing = loop.call_soon(self._flush, protocol)
            self._lingering = False
        self._outbox.append(data)
        return future

    def _flush(self, protocol: _Protocol) -> None:
        self._flushing = None
        data, self._outbox = self._outbox, []
        if not data:
            return
        if protocol is self._protocol and protocol.transport is not None:
            protocol.transport.write(b"".join(data) if len(data) > 1 else data[0])

    async def script(self, source: str, keys: list[str], args: list[Any], linger: float = 0.0) -> Any:
        """EVALSHA, loading the script on first use or after a Redis restart."""
        sha = self._scripts.get(source)
        if sha is None:
            sha = self._scripts[source] = hashlib.sha1(source.encode()).hexdigest()
        try:
            return await self.call("EVALSHA", sha, len(keys), *keys, *args, linger=linger)
        except hiredis.ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await self.call("EVAL", source, len(keys), *keys, *args)
