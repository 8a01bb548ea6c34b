"""One request's way to a provider: attempts in the router's order, retries
with backoff, and the relay of the answer that counts.

A failure before the first byte reaches the client (connection refused, 429,
5xx, 529) moves on to the next target: at once when it is another deployment,
after a jittered exponential backoff (or the provider's ``retry-after``, up to
10 s) when it is the same one again. A stream that has sent bytes to the
client is never retried: it ends with an error event in the caller's shape.

Only what the provider cannot be running is sent again: a connection that
never opened, or one the server closed without answering (the provider SDKs
retry those too). A request that timed out waiting for its answer may still be
running, and billed, upstream: the caller gets a 504 and no second copy goes.
Each provider takes at most ``max_concurrency`` requests in flight per worker
(its settings, else TOLLGATE_UPSTREAM_MAX_CONCURRENCY); past that the next
target is tried, else the caller gets a 529 (503 on OpenAI and Gemini routes).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from dataplane.errors import (
    GatewayError,
    anthropic_error_body,
    openai_error_body,
    sse_error,
)
from dataplane.exchange import Exchange
from dataplane.http import Receive, Send, send_response
from dataplane.keepalive import Keepalive
from dataplane.limits import usage_headers
from dataplane.meter import EVENT_END, StreamMeter
from dataplane.providers.anthropic import DROP_RESPONSE, AnthropicNative
from dataplane.providers.base import count_not_supported
from dataplane.providers.registry import module_for
from dataplane.routing import Plan

if TYPE_CHECKING:
    from dataplane.app import Gateway

RETRYABLE = frozenset({408, 429, 500, 502, 503, 504, 529})
STREAMING_TYPES = frozenset({"text/event-stream", "application/vnd.amazon.eventstream"})
MAX_RETRY_AFTER = 10.0


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _backoff(retry: int) -> float:
    return min(8.0, 0.25 * 2**retry) * (0.5 + random.random() / 2)


async def forward(
    gw: Gateway,
    receive: Receive,
    send: Send,
    x: Exchange,
    request: Any,
    plan: Plan,
    resolve: Callable[[str], Any] = module_for,
) -> None:
    """Try the plan's targets; ``resolve`` picks the module for a provider kind
    (the caller's API shape decides: Anthropic callers and OpenAI callers need
    different ones for the same provider)."""
    begin = x.event(gw.holder.current)
    if x.plan is not None and x.plan.budgets:
        # What to give back if this worker dies before settling.
        begin["holds"] = [step.key for step in x.plan.budgets]
    gw.events.begin(begin)
    watcher = gw.watch_disconnect(receive, x)
    try:
        await _attempts(gw, send, x, request, plan, resolve)
    except asyncio.CancelledError:
        if not x.disconnected:
            raise
        # Our own doing: the client went away, so the upstream call was dropped
        # with its response. The request is still recorded.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        x.status = 499
        x.error_type = "client_disconnected"
        x.error_message = "The client disconnected before the response was complete."
    finally:
        x.done = True
        watcher.cancel()


async def _attempts(
    gw: Gateway, send: Send, x: Exchange, request: Any, plan: Plan, resolve: Callable[[str], Any]
) -> None:
    last: tuple[int, list[tuple[bytes, bytes]], bytes, str, str] | None = None
    previous = None
    same_retries = 0
    delay = 0.0
    targets = plan.targets
    for n, target in enumerate(targets):
        if n:
            if target == previous:
                same_retries += 1
                await asyncio.sleep(delay or _backoff(same_retries))
            else:
                same_retries = 0
        previous = target
        delay = 0.0
        module = resolve(target.provider.kind)
        x.attempts = n + 1
        x.provider = target.provider
        x.served_model = target.model
        # Served by anything but the first choice: a failover, or the request's own fallbacks.
        x.fallback = target != targets[0]
        if request.endpoint == "count_tokens" and not _counts(module, target):
            raise count_not_supported(target)
        uid = target.provider.uid
        inflight = gw.inflight.get(uid, 0)
        if inflight >= (target.provider.settings.get("max_concurrency") or gw.config.upstream_max_concurrency):
            message = (
                f"Provider '{target.provider.name}' already has {inflight} requests in flight from this "
                "Tollgate worker, its limit; retry in a moment."
            )
            last = (529 if x.shape == "anthropic" else 503, [], b"", "overloaded_error", message)
            continue
        outbound = await module.build(target, request)
        if not x.upstream_started:
            x.upstream_started = gw.clock()
        gw.inflight[uid] = inflight + 1
        try:
            try:
                if request.stream:
                    # Headers within the first-byte limit; then silence between
                    # chunks is what the session's read timeout bounds.
                    waited = gw.config.upstream_first_byte_timeout
                    async with asyncio.timeout(waited):
                        response = await gw.session.request(
                            outbound.method, outbound.url, data=outbound.body, headers=outbound.headers, timeout=gw.timeout_stream
                        )
                else:
                    waited = gw.config.upstream_response_timeout
                    response = await gw.session.request(
                        outbound.method, outbound.url, data=outbound.body, headers=outbound.headers
                    )
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.ServerDisconnectedError) as exc:
                # Never reached the provider, or closed unanswered: safe to send again.
                gw.router.health.failed(target)
                message = (
                    f"Tollgate could not reach provider '{target.provider.name}' ({type(exc).__name__}). "
                    "Retrying shortly usually helps; if it persists, tell your platform admin."
                )
                last = (502, [], b"", "api_error", message)
                continue
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                # Sent, then no answer: the provider may be running it still.
                gw.router.health.failed(target)
                if isinstance(exc, TimeoutError):
                    status, what = 504, f"did not start answering within {waited:g} s"
                else:
                    status, what = 502, f"broke the connection ({type(exc).__name__})"
                raise GatewayError(
                    status,
                    f"Provider '{target.provider.name}' {what}. Tollgate did not send the request again, since "
                    "the provider may still be working on it; retry if you need the answer.",
                ) from None
            try:
                status = response.status
                more = n + 1 < len(targets)
                wait = _retry_after(response.headers.get("retry-after"))
                # A long retry-after on the same target again goes back to the client
                # (Claude Code honours it) instead of holding the request here.
                hand_back = wait is not None and wait > MAX_RETRY_AFTER and more and targets[n + 1] == target
                if status in RETRYABLE and more and not hand_back:
                    body = await response.read()
                    gw.router.health.failed(target)
                    adapter = module.adapter(target, request, status, response.content_type)
                    converted = adapter.convert(status, body)
                    last = (status, _headers_for(module, x, response, adapter), converted, adapter.usage.error_type, adapter.usage.error_message)
                    delay = wait or 0.0
                    continue
                if status < 500:
                    gw.router.health.succeeded(target)
                else:
                    gw.router.health.failed(target)
                if plan.route is not None and x.session_id and status < 400:
                    gw.router.sticky.remember(x.session_id, plan.route.id, target)
                adapter = module.adapter(target, request, status, response.content_type)
                await _relay(gw, send, x, module, response, adapter)
                return
            finally:
                response.release()
        finally:
            gw.inflight[uid] -= 1
    if last is None:
        raise GatewayError(503, "No provider is configured for this model. Ask your platform admin to add a route.", retry=False)
    status, headers, body, error_type, message = last
    if not body:
        raise GatewayError(status, message, error_type=error_type)
    x.status = status
    x.error_type = error_type
    x.error_message = message
    x.upstream_ended = gw.clock()
    x.done = True
    gw.record(x)  # before the answer goes out: a worker killed now leaves the row of an answered request
    await send_response(send, status, headers, body)


def _counts(module: Any, target: Any) -> bool:
    """Whether the upstream counts tokens for this target (``counts_tokens``:
    a flag, or a function of the target; a module without it does)."""
    counts = getattr(module, "counts_tokens", True)
    return bool(counts(target)) if callable(counts) else bool(counts)


def _own_headers(x: Exchange, content_type: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", content_type.encode()),
        (b"x-tollgate-request-id", x.request_id.encode()),
    ]


def _headers_for(module: Any, x: Exchange, response: aiohttp.ClientResponse, adapter: Any) -> list[tuple[bytes, bytes]]:
    plan = x.plan
    budgeted = plan is not None and plan.admitted and plan.budgets and x.shape == "anthropic"
    if isinstance(module, AnthropicNative):
        # Anthropic's own headers (request-id, rate-limit state, retry-after) reach the client;
        # under a Tollgate budget, its rate-limit state gives way to the budget's.
        headers = [
            (k.lower(), v) for k, v in response.raw_headers
            if k.lower() not in DROP_RESPONSE and not (budgeted and k.lower().startswith(b"anthropic-ratelimit-"))
        ]
        headers.append((b"x-tollgate-request-id", x.request_id.encode()))
    else:
        headers = _own_headers(x, adapter.content_type)
        retry_after = response.headers.get("retry-after")
        if retry_after:
            headers.append((b"retry-after", retry_after.encode("latin-1")))
    if x.attempts > 1 or x.fallback:
        headers.append((b"x-tollgate-attempts", str(x.attempts).encode()))
    headers.append((b"x-tollgate-provider", x.provider.name.encode() if x.provider else b""))
    if budgeted and response.status < 400:
        headers.extend(usage_headers(plan))  # type: ignore[arg-type]
    return headers


async def _cut(send: Send, x: Exchange, keepalive: Keepalive, out: bytes, meter: StreamMeter, adapter: Any) -> None:
    """End a stream its budgets cannot cover further: finish the event the client
    is in the middle of, then the budget's message in the caller's shape. What
    was generated is charged at the meter's estimate (the provider's own count
    never arrives)."""
    keepalive.close()
    if keepalive.busy is not None:
        await keepalive.busy
    if not keepalive.at_boundary:
        marker = EVENT_END.get(x.shape, b"\n\n")
        end = out.find(marker)
        if end >= 0:
            await send({"type": "http.response.body", "body": out[: end + len(marker)], "more_body": True})
    message = x.error_message
    await send({"type": "http.response.body", "body": sse_error(x.shape, 402, "billing_error", message), "more_body": True})
    usage = adapter.usage
    usage.output_tokens = max(usage.output_tokens, meter.relayed_tokens)
    x.status = 402


async def _relay(gw: Gateway, send: Send, x: Exchange, module: Any, response: aiohttp.ClientResponse, adapter: Any) -> None:
    x.status = response.status
    headers = _headers_for(module, x, response, adapter)
    x.usage = adapter.usage
    if response.content_type in STREAMING_TYPES and adapter.content_type == "text/event-stream":
        idle = gw.config.upstream_idle_timeout
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        keepalive = Keepalive(send, gw.config.stream_ping_seconds, shape=x.shape)
        gw.live[x.request_id] = x
        plan = x.plan
        meter = None
        if plan is not None and plan.budgets and plan.estimate is not None:
            price = gw.holder.current.price_for(x.served_model or x.model, x.provider.id if x.provider else None)
            meter = StreamMeter(plan, price, x.shape)
        try:
            async for chunk in response.content.iter_any():
                if not x.first_byte:
                    x.first_byte = gw.clock()
                out = adapter.feed(chunk)
                if out:
                    if adapter.usage.stop_reason and not x.recorded:
                        # The provider has finished and its usage is final: on record
                        # before the end reaches the client (Gateway.record).
                        x.usage = adapter.usage
                        x.upstream_ended = gw.clock()
                        gw.record(x)
                    if meter is not None:
                        need = meter.need(out, adapter.usage)
                        if need and not await gw.top_up(x, need):
                            await _cut(send, x, keepalive, out, meter, adapter)
                            break
                    if keepalive.busy is not None:
                        await keepalive.busy
                    await send({"type": "http.response.body", "body": out, "more_body": True})
                    keepalive.wrote(out)
            else:
                keepalive.close()
                if keepalive.busy is not None:
                    await keepalive.busy
                tail = adapter.close()
                if tail:
                    await send({"type": "http.response.body", "body": tail, "more_body": True})
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
            keepalive.close()
            if keepalive.busy is not None:
                await keepalive.busy
            # Headers are gone already: end the stream with an error event in the caller's shape.
            if isinstance(exc, TimeoutError):
                message = f"The provider sent nothing for {idle:g} s in the middle of the answer; retry the request."
            else:
                message = f"The provider connection broke mid-stream ({type(exc).__name__}); retry the request."
            x.error_type = "upstream_stream_error"
            x.error_message = message
            await send({"type": "http.response.body", "body": sse_error(x.shape, 502, "api_error", message), "more_body": True})
        except asyncio.CancelledError:
            if not x.revoked:
                raise
            # The key was revoked mid-stream (Gateway.cut_revoked): end it here.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            keepalive.close()
            message = f"Tollgate key {x.key.prefix if x.key else ''}… was disabled while this answer streamed."
            x.status, x.error_type, x.error_message = 401, "key_revoked", message
            if keepalive.at_boundary:
                await send({"type": "http.response.body", "body": sse_error(x.shape, 401, "authentication_error", message), "more_body": True})
        finally:
            keepalive.close()
            gw.live.pop(x.request_id, None)
        x.usage = adapter.usage
        x.upstream_ended = gw.clock()
        x.done = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    try:
        payload = await response.read()
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
        raise GatewayError(502, f"The provider connection broke ({type(exc).__name__}); retry the request.") from None
    x.upstream_ended = gw.clock()
    x.first_byte = x.upstream_ended
    body = adapter.convert(response.status, payload)
    x.usage = adapter.usage
    status = response.status
    if status == 401:
        # The provider refused Tollgate's own credential. Passed on as a 401,
        # Claude Code would tell the engineer their key is invalid and to log in.
        status = 502
        x.status = 502
        message = (
            f"Provider '{x.provider.name if x.provider else '?'}' refused Tollgate's credential for it. "
            "Your key is fine; tell your platform admin to check the provider's credential."
        )
        x.error_type, x.error_message = "api_error", message
        headers = [h for h in headers if h[0] != b"content-type"] + [(b"content-type", b"application/json")]
        if x.shape == "openai":
            body = openai_error_body(502, message)
        elif x.shape == "gemini":
            body = orjson.dumps({"error": {"code": 502, "message": message, "status": "UNAVAILABLE"}})
        else:
            body = anthropic_error_body("api_error", message, x.request_id)
    x.done = True
    gw.record(x)  # before the answer goes out: a worker killed now leaves the row of a served request
    await send_response(send, status, headers, body)
