"""The data-plane ASGI application: routing, lifespan, and the request frame.

Plain ASGI on purpose: a Django async view costs ~1,100 µs per request and
Channels' AsyncHttpConsumer ~110 µs more than this (docs/hot-path.md).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from dataplane import anthropic, gemini_ingress, openai_ingress, responses_ingress, signin
from dataplane.auth import authenticate
from dataplane.config import GatewayConfig
from dataplane.errors import GatewayError, anthropic_error_body, openai_error_body
from dataplane.events import UsageEvents
from dataplane.exchange import Exchange
from dataplane.http import ClientGone, Receive, Scope, Send, headers_too_large, send_response
from dataplane.limits import (
    DEFAULT_MAX_TOKENS,
    NANO,
    Estimate,
    MemoryCounters,
    RedisCounters,
    Refusal,
    billing_refusal_headers,
    org_stats_key,
    plan_for,
    stats_key,
)
from dataplane.mcp.gateway import McpGateway
from dataplane.metrics import Metrics
from dataplane.refresh import SnapshotHolder
from dataplane.resp import RedisPipe
from dataplane.routing import Router
from dataplane.signin import Bearers
from dataplane.snapshot import KeyEntry

log = logging.getLogger("tollgate.gateway")

Handler = Callable[["Gateway", Scope, Receive, Send, Exchange, dict[bytes, bytes]], Awaitable[None]]

# path -> (method, endpoint name, handler); "/anthropic" is stripped first.
ROUTES: dict[str, tuple[str, str, Handler]] = {
    "/v1/chat/completions": ("POST", "chat_completions", openai_ingress.chat_completions),
    "/openai/v1/chat/completions": ("POST", "chat_completions", openai_ingress.chat_completions),
    "/v1/responses": ("POST", "responses", responses_ingress.responses),
    "/openai/v1/models": ("GET", "models", openai_ingress.models),
    "/openai/v1/responses": ("POST", "responses", responses_ingress.responses),
    "/v1/messages": ("POST", "messages", anthropic.messages),
    "/v1/messages/count_tokens": ("POST", "count_tokens", anthropic.messages),
    "/v1/models": ("GET", "models", anthropic.models),
}
_JSON = [(b"content-type", b"application/json")]


def _redis(url: str) -> Any:
    """A client whose pool makes a burst of requests wait for a connection
    (bounded) instead of failing once the pool is full."""
    import redis.asyncio as aioredis

    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=256, timeout=5, socket_timeout=5, socket_connect_timeout=2
    )
    return aioredis.Redis(connection_pool=pool)


class _RequestIds:
    """Unique, cheap request ids: a random per-process prefix and a counter
    (os.urandom per request is a system call)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        # Called again in a forked worker, so no two processes share a prefix.
        self.prefix = "tg_" + os.urandom(8).hex()
        self.counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):08x}"


_request_id = _RequestIds()


class Gateway:
    def __init__(self) -> None:
        self.config: GatewayConfig
        self.session: aiohttp.ClientSession
        self.holder: SnapshotHolder
        self.events: UsageEvents
        self.redis: Any = None
        self.counters: Any = None
        self.router = Router()
        self.bearers: Bearers
        # Requests in flight per provider (uid) in this worker, for the concurrency cap.
        self.inflight: dict[str, int] = {}
        # Streams being relayed, by request id: cut when their key is revoked.
        self.live: dict[str, Exchange] = {}
        self.timeout_stream: aiohttp.ClientTimeout
        self.timeout_response: aiohttp.ClientTimeout
        self.metrics = Metrics()
        self.clock = time.perf_counter
        self.started = False

    # --- lifespan -----------------------------------------------------------

    async def startup(self) -> None:
        from governance.sealing import unseal

        _request_id.reset()
        self.config = GatewayConfig.from_settings()
        self.bearers = Bearers(self.config.key_pepper)
        if self.config.redis_url:
            self.redis = _redis(self.config.redis_url)
        connect = self.config.upstream_connect_timeout
        # A stream's reads are bounded by the idle limit (its headers by the
        # first-byte limit, in forward.py); a whole answer may take minutes.
        self.timeout_stream = aiohttp.ClientTimeout(
            total=None, sock_connect=connect, sock_read=self.config.upstream_idle_timeout
        )
        self.timeout_response = aiohttp.ClientTimeout(
            total=None, sock_connect=connect, sock_read=self.config.upstream_response_timeout
        )
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60),
            timeout=self.timeout_response,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )
        if self.config.counters_url:
            self.counters = RedisCounters(RedisPipe(self.config.counters_url, timeout=2.0))
        else:
            self.counters = MemoryCounters()
        self.holder = SnapshotHolder(self.config, unseal, self.redis, on_swap=self.cut_revoked)
        try:
            await self.holder.refresh()
        except Exception as exc:
            log.warning("no snapshot at start (%s); /readyz stays 503 until one loads", exc)
        self.holder.start()
        # Usage events get their own pipelined connection: a large flush must not
        # queue ahead of admissions on the counters' one.
        self.events = UsageEvents(
            spool_dir=self.config.spool_dir,
            flush_seconds=self.config.event_flush_seconds,
            redis=RedisPipe(self.config.redis_url, timeout=5.0) if self.config.redis_url else None,
            redis_prefix=self.config.redis_prefix,
            wid=_request_id.prefix,
            on_lost=self.release_lost,
        )
        self.events.start()
        self.mcp = McpGateway(self, _request_id)
        await self.mcp.start()
        self.started = True
        # Everything alive now (modules, the snapshot) lives as long as the
        # worker: out of the collector's sight, a full collection no longer walks
        # the whole import-time heap (it was ~13 % of the CPU under load).
        gc.collect()
        gc.freeze()

    async def shutdown(self) -> None:
        if not self.started:
            return
        await self.mcp.stop()
        await self.holder.stop()
        await self.events.close()
        if isinstance(self.events.redis, RedisPipe):
            await self.events.redis.close()
        await self.session.close()
        if isinstance(self.counters, RedisCounters):
            await self.counters.pipe.close()
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
        return authenticate(headers, self.holder.current, self.config.key_pepper, self.bearers)

    async def admit(self, x: Exchange, body_bytes: int, max_tokens: Any, targets: list[Any]) -> None:
        """Reserve against every budget and check every window on the key's chain.

        The reservation is estimated from what this key's recent requests for the
        model cost (limits.py), priced at the dearest model the request may be
        served by (its route's targets and fallbacks)."""
        key = x.key
        assert key is not None
        snapshot = self.holder.current
        estimate = None
        if key.budgets:
            if not isinstance(max_tokens, int) or max_tokens <= 0:
                max_tokens = DEFAULT_MAX_TOKENS
            cold = 0
            output = 0.0
            for model, provider_id in {(t.model, t.provider.id) for t in targets} or {(x.model, None)}:
                price = snapshot.price_for(model, provider_id)
                if price is None:
                    raise GatewayError(
                        402,
                        f"Model '{model}' has no price in Tollgate, so the budgets on this key cannot be "
                        "enforced. Ask your platform admin to set a price for it.",
                        retry=False,
                    )
                tokens = body_bytes // 3 + 1
                if price.long is not None and tokens > price.long_threshold:
                    price = price.long  # a prompt this long may be billed at the long-context rates
                cold = max(cold, int(tokens * price.reserve_input_nano))
                output = max(output, price.output_nano)
            estimate = Estimate(
                stats_key(self.config.redis_prefix, key.organization_id, key.id, key.prefix, x.model),
                org_stats_key(self.config.redis_prefix, key.organization_id, key.organization_uid, x.model),
                body_bytes, cold, output, max_tokens,
            )
        now = time.time()
        plan = plan_for(
            prefix=self.config.redis_prefix,
            request_id=x.request_id,
            budgets=key.budgets,
            limits=key.limits,
            model=x.model,
            provider_id=x.provider.id if x.provider else None,
            reserve_nano=0,
            now=now,
            estimate=estimate,
        )
        if plan.empty:
            return
        try:
            await self.counters.admit(plan, now)
        except Refusal as refusal:
            self.metrics.inc("tollgate_refusals_total", status=str(refusal.status))
            if key.signin and refusal.step is not None:
                # A signed-in Claude Code shows this as its own usage-limit message and stops.
                raise GatewayError(
                    429, refusal.message, error_type="billing_error", retry=False,
                    headers=billing_refusal_headers(refusal.step, now),
                ) from None  # fmt: skip
            headers: tuple[tuple[bytes, bytes], ...] = ()
            if refusal.retry_after is not None:
                headers = ((b"retry-after", str(refusal.retry_after).encode()),)
            raise GatewayError(
                refusal.status, refusal.message, retry=False if refusal.status == 402 else None, headers=headers
            ) from None
        except Exception as exc:
            self.metrics.inc("tollgate_counter_store_errors_total", step="admit")
            if self.config.counters_fail_open:
                self.metrics.inc("tollgate_admitted_without_counters_total")
                log.warning("counter store unreachable, admitting %s (fail-open): %r", x.request_id, exc)
                return
            log.warning("counter store unreachable, refusing %s (fail-closed): %r", x.request_id, exc)
            raise GatewayError(
                503,
                "Tollgate cannot check budgets and rate limits right now (its counter store is "
                "unreachable), so it is refusing requests rather than letting spend go unchecked. "
                "Retry in a moment; if it persists, tell your platform admin.",
            ) from None
        x.plan = plan

    async def top_up(self, x: Exchange, amount: int) -> bool:
        """Grow a stream's reservation by ``amount`` on every budget of its chain;
        False (with the reason on the exchange) when a level cannot cover it."""
        plan = x.plan
        assert plan is not None
        try:
            await self.counters.top_up(plan, amount)
            return True
        except Refusal as refusal:
            self.metrics.inc("tollgate_refusals_total", status="402")
            x.error_type, x.error_message = "budget_exhausted", refusal.message
            return False
        except Exception as exc:
            self.metrics.inc("tollgate_counter_store_errors_total", step="top_up")
            if self.config.counters_fail_open:
                self.metrics.inc("tollgate_admitted_without_counters_total")
                return True
            log.warning("counter store unreachable, cutting %s (fail-closed): %r", x.request_id, exc)
            x.error_type = "budget_unchecked"
            x.error_message = (
                "Tollgate could not check the budgets for the rest of this answer (its counter store is "
                "unreachable), so it ended the answer here. Retry in a moment."
            )
            return False

    async def settle(self, x: Exchange) -> None:
        """Replace the reservation with the actual cost. Runs after the response's
        last byte is sent, so the client does not wait for it. A complete answer
        also teaches the estimate what this key's requests for the model cost."""
        plan = x.plan
        if plan is None:
            return
        observed = None
        usage = x.usage
        if plan.estimate is not None and usage is not None and x.status == 200 and not x.error_type:
            price = self.holder.current.price_for(x.served_model or x.model, x.provider.id if x.provider else None)
            if price is not None:
                output_nano = int(usage.output_tokens * price.output * NANO)
                observed = (max(int(x.cost * NANO) - output_nano, 0), usage.output_tokens)
        for delay in (0.0, 0.5, 2.0, 5.0):
            if delay:
                await asyncio.sleep(delay)
            try:
                await self.counters.settle(plan, int(x.cost * NANO), x.tokens, observed)
                return
            except Exception as exc:
                self.metrics.inc("tollgate_counter_store_errors_total", step="settle")
                log.warning("settlement of %s failed (%s); retrying", plan.request_id, exc)
        log.error("settlement of %s abandoned; its reservation expires on its own", plan.request_id)

    async def release_lost(self, begin: dict[str, Any]) -> None:
        """A request of a dead worker never settles: give its reservations back."""
        holds = begin.get("holds")
        if holds:
            await self.counters.release(str(begin["request_id"]), [str(k) for k in holds])

    def cut_revoked(self, snapshot: Any) -> None:
        """A new snapshot is in: end the streams of keys it no longer lets through
        (disabled, deleted, expired, or of a deactivated user)."""
        if not self.live:
            return
        now = time.time()
        allowed = {
            e.id for e in snapshot.keys.values() if e.active and (e.expires_at is None or e.expires_at > now)
        }
        for x in list(self.live.values()):
            if x.key is not None and x.key.id not in allowed and x.task is not None and not x.revoked:
                x.revoked = True
                x.task.cancel()

    def watch_disconnect(self, receive: Receive, x: Exchange) -> asyncio.Future[Any]:
        """Cancel the request's task if the client goes away before we finish."""
        task = asyncio.current_task()
        x.task = task
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
        if path == "/mcp" or path.startswith("/mcp/"):
            await self.mcp(scope, receive, send, path)
            return
        if path.startswith("/anthropic/"):
            path = path[10:]
        route = ROUTES.get(path)
        if route is None:
            if path.startswith("/v1/models/"):
                route = ROUTES["/v1/models"]
            elif path.startswith("/genai/v1beta/models/"):
                route = ("POST", "generate_content", gemini_ingress.generate)
            elif path in signin.PATHS:
                await signin.serve(self, scope, receive, send, path)
                return
            else:
                await self._local(scope, path, send)
                return
        method, endpoint, handler = route
        x = Exchange(_request_id(), endpoint)
        if endpoint == "models" and path == "/v1/models" and b"anthropic-version" not in dict(scope["headers"]):
            # The OpenAI SDK's listing (the Anthropic SDK always sends anthropic-version).
            handler = openai_ingress.models
        if endpoint in ("chat_completions", "responses") or handler is openai_ingress.models:
            x.shape = "openai"
        elif endpoint == "generate_content":
            x.shape = "gemini"
        if scope["method"] != method:
            await self._refuse(send, x, GatewayError(405, f"{path} accepts {method} only."), record=False)
            return
        too_large = headers_too_large(scope["headers"])
        if too_large is not None:
            await self._refuse(send, x, GatewayError(431, too_large, retry=False), record=False)
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
        self.record(x)
        self.metrics.inc("tollgate_requests_total", endpoint=endpoint, code=str(x.status))
        await self.settle(x)

    def record(self, x: Exchange) -> None:
        """Emit the request's usage event, once. The relay records an answer before
        its last bytes go out, so a worker killed just after serving it still
        leaves the row of a served request, not of a lost one."""
        if not x.recorded:
            x.recorded = True
            self.events.emit(x.event(self.holder.current))

    async def _refuse(self, send: Send, x: Exchange, err: GatewayError, *, record: bool) -> None:
        x.fail(err.status, err.error_type, err.message)
        self.metrics.inc("tollgate_requests_total", endpoint=x.endpoint, code=str(err.status))
        headers = list(_JSON)
        headers.append((b"x-tollgate-request-id", x.request_id.encode()))
        if err.retry is False:
            headers.append((b"x-should-retry", b"false"))
        headers.extend(err.headers)
        if x.shape == "openai":
            body = openai_error_body(err.status, err.message)
        elif x.shape == "gemini":
            body = gemini_ingress.google_error_body(err.status, err.message)
        else:
            body = anthropic_error_body(err.error_type, err.message, x.request_id)
        await send_response(send, err.status, headers, body)
        if record:
            self.events.emit(x.event(self.holder.current))
            await self.settle(x)

    async def _local(self, scope: Scope, path: str, send: Send) -> None:
        if path == "/api/hello":
            # Claude Code's warm-up probe.
            await send_response(send, 200, [], b"")
        elif path == "/healthz":
            await send_response(send, 200, list(_JSON), b'{"status":"ok"}')
        elif path == "/metrics":
            gauges = {}
            if self.started:
                gauges = {
                    "tollgate_snapshot_version": float(self.holder.current.version),
                    "tollgate_usage_events_buffered": float(self.events.buffered),
                }
            await send_response(send, 200, [(b"content-type", b"text/plain; version=0.0.4")], self.metrics.render(gauges))
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
