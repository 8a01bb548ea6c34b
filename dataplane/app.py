"""The data-plane ASGI application: routing, lifespan, and the request frame.

Plain ASGI on purpose: a Django async view costs ~1,100 µs per request and
Channels' AsyncHttpConsumer ~110 µs more than this (docs/hot-path.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from dataplane import anthropic
from dataplane.auth import authenticate
from dataplane.config import GatewayConfig
from dataplane.errors import GatewayError, anthropic_error_body
from dataplane.events import UsageEvents
from dataplane.exchange import Exchange
from dataplane.http import ClientGone, Receive, Scope, Send, send_response
from dataplane.refresh import SnapshotHolder
from dataplane.snapshot import KeyEntry

log = logging.getLogger("tollgate.gateway")

Handler = Callable[["Gateway", Scope, Receive, Send, Exchange, dict[bytes, bytes]], Awaitable[None]]

# path -> (method, endpoint name, handler); "/anthropic" is stripped first.
ROUTES: dict[str, tuple[str, str, Handler]] = {
    "/v1/messages": ("POST", "messages", anthropic.messages),
    "/v1/messages/count_tokens": ("POST", "count_tokens", anthropic.messages),
    "/v1/models": ("GET", "models", anthropic.models),
}
_JSON = [(b"content-type", b"application/json")]


def _request_id() -> str:
    return "tg_" + os.urandom(12).hex()


class Gateway:
    def __init__(self) -> None:
        self.config: GatewayConfig
        self.session: aiohttp.ClientSession
        self.holder: SnapshotHolder
        self.events: UsageEvents
        self.redis: Any = None
        self.clock = time.perf_counter
        self.started = False

    # --- lifespan -----------------------------------------------------------

    async def startup(self) -> None:
        from governance.sealing import unseal

        self.config = GatewayConfig.from_settings()
        if self.config.redis_url:
            import redis.asyncio as aioredis

            self.redis = aioredis.Redis.from_url(self.config.redis_url, socket_timeout=5)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.config.upstream_connect_timeout,
                sock_read=self.config.upstream_read_timeout,
            ),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )
        self.holder = SnapshotHolder(self.config, unseal, self.redis)
        try:
            await self.holder.refresh()
        except Exception as exc:
            log.warning("no snapshot at start (%s); /readyz stays 503 until one loads", exc)
        self.holder.start()
        self.events = UsageEvents(
            spool_dir=self.config.spool_dir,
            flush_seconds=self.config.event_flush_seconds,
            redis=self.redis,
            redis_prefix=self.config.redis_prefix,
        )
        self.events.start()
        self.started = True

    async def shutdown(self) -> None:
        if not self.started:
            return
        await self.holder.stop()
        await self.events.close()
        await self.session.close()
        if self.redis is not None:
            await self.redis.aclose()

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("data plane failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- requests -----------------------------------------------------------

    def authenticate(self, headers: dict[bytes, bytes]) -> KeyEntry:
        return authenticate(headers, self.holder.current, self.config.key_pepper)

    def watch_disconnect(self, receive: Receive, x: Exchange) -> asyncio.Future[Any]:
        """Cancel the request's task if the client goes away before we finish."""
        task = asyncio.current_task()
        watcher = asyncio.ensure_future(receive())

        def gone(fut: asyncio.Future[Any]) -> None:
            if x.done or fut.cancelled() or fut.exception() is not None:
                return
            if fut.result().get("type") == "http.disconnect" and task is not None:
                x.disconnected = True
                task.cancel()

        watcher.add_done_callback(gone)
        return watcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path.startswith("/anthropic/"):
            path = path[10:]
        route = ROUTES.get(path)
        if route is None:
            if path.startswith("/v1/models/"):
                route = ROUTES["/v1/models"]
            else:
                await self._local(scope, path, send)
                return
        method, endpoint, handler = route
        x = Exchange(_request_id(), endpoint)
        if scope["method"] != method:
            await self._refuse(send, x, GatewayError(405, f"{path} accepts {method} only."), record=False)
            return
        headers = dict(scope["headers"])
        session = headers.get(b"x-claude-code-session-id")
        if session is not None:
            x.session_id = session.decode("latin-1")[:100]
        agent = headers.get(b"user-agent")
        if agent is not None:
            x.user_agent = agent.decode("latin-1")[:300]
        try:
            await handler(self, scope, receive, send, x, headers)
        except GatewayError as err:
            if x.key is None:
                x.key = err.key
            await self._refuse(send, x, err, record=x.key is not None)
            return
        except ClientGone:
            x.disconnected = True
            x.fail(499, "client_disconnected", "The client disconnected while sending its request.")
        except Exception:
            log.exception("unexpected error on %s %s", scope["method"], path)
            if not x.done:
                await self._refuse(
                    send, x, GatewayError(500, "Tollgate hit an internal error; it has been logged."), record=x.key is not None
                )
                return
        self.events.emit(x.event(self.holder.current))

    async def _refuse(self, send: Send, x: Exchange, err: GatewayError, *, record: bool) -> None:
        x.fail(err.status, err.error_type, err.message)
        headers = list(_JSON)
        headers.append((b"x-tollgate-request-id", x.request_id.encode()))
        if err.retry is False:
            headers.append((b"x-should-retry", b"false"))
        headers.extend(err.headers)
        await send_response(send, err.status, headers, anthropic_error_body(err.error_type, err.message, x.request_id))
        if record:
            self.events.emit(x.event(self.holder.current))

    async def _local(self, scope: Scope, path: str, send: Send) -> None:
        if path == "/api/hello":
            # Claude Code's warm-up probe.
            await send_response(send, 200, [], b"")
        elif path == "/healthz":
            await send_response(send, 200, list(_JSON), b'{"status":"ok"}')
        elif path == "/readyz":
            holder = getattr(self, "holder", None)
            ready = holder is not None and holder.loaded
            body = orjson.dumps(
                {
                    "status": "ready" if ready else "waiting for configuration snapshot",
                    "snapshot_version": holder.current.version if holder else 0,
                    "events_healthy": self.events.healthy if self.started else False,
                }
            )
            await send_response(send, 200 if ready else 503, list(_JSON), body)
        else:
            x = Exchange(_request_id(), "unknown")
            message = f"Tollgate has no route {scope['method']} {scope['path']}."
            await self._refuse(send, x, GatewayError(404, message), record=False)
