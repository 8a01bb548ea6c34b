"""A local HTTP server that receives webhooks (budget warnings, Slack-style
posts) and records them; ``fail_next`` makes it answer 500 a few times."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.raw)


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[Delivery] = []
        self.failures = 0
        self.port = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fail_next(self, times: int = 1) -> None:
        with self._lock:
            self.failures += times

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.failures = 0

    def at(self, path: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.received if d.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        with self._lock:
            if self.failures:
                self.failures -= 1
                return web.Response(status=500, text="receiver down")
            self.received.append(Delivery(request.path, dict(request.headers), raw))
        return web.Response(text="ok")

    def start(self) -> WebhookReceiver:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="webhook-receiver", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
