"""SSE keep-alives while an upstream stream is silent.

A model thinking for minutes sends nothing on some upstreams (Bedrock has no
pings), and proxies or clients with idle timeouts between us and the caller
then cut a healthy stream. After ``interval`` silent seconds, and only between
two whole events (a chunk relayed as is may end mid-event), one ping goes out:
Anthropic's own ``ping`` event to Anthropic callers, an SSE comment (which
every SSE parser skips) to the others.

No task per stream: one timer handle, re-armed from the last activity; a task
exists only while a ping is being sent, and the relay waits for it before its
next write so two writes never interleave.
"""

from __future__ import annotations

import asyncio

from dataplane.http import Send

ANTHROPIC_PING = b'event: ping\ndata: {"type": "ping"}\n\n'
COMMENT_PING = b": ping\n\n"
# Google's SSE ends its events with CRLF CRLF; its ping does likewise.
PINGS = {"anthropic": ANTHROPIC_PING, "gemini": b": ping\r\n\r\n"}


class Keepalive:
    __slots__ = ("_send", "_body", "_interval", "_loop", "_last", "_boundary", "_timer", "busy", "sent")

    def __init__(self, send: Send, interval: float, *, shape: str) -> None:
        self._send = send
        self._body = PINGS.get(shape, COMMENT_PING)
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._boundary = True
        self.busy: asyncio.Task[None] | None = None
        self.sent = 0
        self._timer: asyncio.TimerHandle | None = self._loop.call_at(self._last + interval, self._check)

    def wrote(self, chunk: bytes) -> None:
        """The relay sent ``chunk``: silence starts over."""
        self._last = self._loop.time()
        self._boundary = chunk.endswith((b"\n\n", b"\r\n\r\n"))

    def _check(self) -> None:
        if self._timer is None:
            return
        due = self._last + self._interval
        if self._loop.time() >= due and self._boundary and self.busy is None:
            self.busy = self._loop.create_task(self._ping())
            due = self._loop.time() + self._interval
        self._timer = self._loop.call_at(due, self._check)

    async def _ping(self) -> None:
        try:
            await self._send({"type": "http.response.body", "body": self._body, "more_body": True})
            self.sent += 1
        except Exception:  # noqa: S110 (the client is gone; the relay finds out on its next write)
            pass
        finally:
            self._last = self._loop.time()
            self.busy = None

    @property
    def at_boundary(self) -> bool:
        """The last write ended a whole event: another may follow it."""
        return self._boundary

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
