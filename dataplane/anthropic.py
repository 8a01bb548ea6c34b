"""Anthropic Messages API ingress: ``/anthropic/v1/…`` and ``/v1/…``.

When the provider is Anthropic-native the request goes upstream byte for byte:
the (possibly gzip-encoded) body, the query string (``?beta=true``),
``anthropic-version``, ``anthropic-beta`` and every unknown field. Only the
credential changes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from dataplane.errors import GatewayError, anthropic_sse_error
from dataplane.exchange import Exchange
from dataplane.forward import forward
from dataplane.http import Receive, Scope, Send, decode_body, read_body, send_response
from dataplane.model_ids import checked, segment, sole
from dataplane.providers.anthropic import (
    DROP_RESPONSE,
    SSEUsageScanner,
    upstream_headers,
    upstream_query,
    usage_from_json,
)
from dataplane.providers.base import AnthropicRequest, ProviderConfig
from dataplane.snapshot import KeyEntry

if TYPE_CHECKING:
    from dataplane.app import Gateway


def _json_content_type(headers: dict[bytes, bytes]) -> None:
    ctype = headers.get(b"content-type")
    if ctype is None:
        return
    main = ctype.split(b";", 1)[0].strip().lower()
    if main != b"application/json" and not main.endswith(b"+json"):
        raise GatewayError(
            415,
            f"Content-Type '{ctype.decode('latin-1')}' is not supported; send application/json.",
            retry=False,
        )


def _parse_request(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, f"The request body is not valid JSON: {exc}.", retry=False) from None
    if not isinstance(doc, dict):
        raise GatewayError(400, "The request body must be a JSON object.", retry=False)
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "model: Field required (a model id such as 'claude-sonnet-4-5').", retry=False)
    checked(model)
    sole(body, model)
    return doc


def _check_model(key: KeyEntry, model: str) -> None:
    if not key.allows(model):
        allowed = "; ".join(key.allowed_models)
        raise GatewayError(
            # A signed-in Claude Code takes a 400 naming the model as "pick another one".
            400 if key.signin else 403,
            f"Model '{model}' is not allowed for Tollgate key {key.prefix}…; allowed: {allowed}. "
            "Pick a model that matches (for Claude Code: /model), or ask your platform admin.",
            retry=False,
        )


def _provider(gw: Gateway) -> ProviderConfig:
    provider = gw.holder.current.anthropic
    if provider is None:
        raise GatewayError(
            503,
            "No Anthropic provider is configured in Tollgate yet. Ask your platform admin to add one.",
            retry=False,
        )
    return provider


async def messages(
    gw: Gateway, scope: Scope, receive: Receive, send: Send, x: Exchange, headers: dict[bytes, bytes]
) -> None:
    x.key = gw.authenticate(headers)
    _json_content_type(headers)
    raw = await read_body(receive, gw.config.max_body_bytes, headers.get(b"content-length"), gw.config.body_read_timeout)
    encoding = headers.get(b"content-encoding")
    body = decode_body(raw, encoding, gw.config.max_body_bytes)
    doc = _parse_request(body)
    x.model = doc["model"]
    if x.endpoint == "messages":
        if not isinstance(doc.get("messages"), list):
            raise GatewayError(400, "messages: Field required (a list of messages).", retry=False)
        x.stream = doc.get("stream") is True
    else:
        x.free = True
    _check_model(x.key, x.model)
    fallbacks = _fallbacks(headers)
    for extra in fallbacks:
        _check_model(x.key, extra)
    request = AnthropicRequest(
        endpoint=x.endpoint,
        doc=doc,
        raw=raw,
        content_encoding=encoding,
        headers=scope["headers"],
        query=scope.get("query_string") or b"",
        stream=x.stream,
    )
    snapshot = gw.holder.current
    plan = gw.router.plan(snapshot, x.key, x.model, x.session_id, fallbacks)
    if not plan.targets:
        raise GatewayError(
            503,
            f"No provider serves '{x.model}' in Tollgate yet. Ask your platform admin to add a provider or a route.",
            retry=False,
        )
    x.route_id = plan.route.id if plan.route else None
    x.provider = plan.targets[0].provider
    if x.key.governed and x.endpoint == "messages":
        await gw.admit(x, len(body), doc.get("max_tokens"), plan.targets)
    await forward(gw, receive, send, x, request, plan)


def _fallbacks(headers: dict[bytes, bytes]) -> list[str]:
    """``x-tollgate-fallbacks: model-a, model-b``: tried in order once the route's
    own targets are exhausted."""
    raw = headers.get(b"x-tollgate-fallbacks")
    if not raw:
        return []
    return [checked(m.strip(), "x-tollgate-fallbacks") for m in raw.decode("latin-1").split(",") if m.strip()][:5]


async def models(
    gw: Gateway, scope: Scope, receive: Receive, send: Send, x: Exchange, headers: dict[bytes, bytes]
) -> None:
    x.key = gw.authenticate(headers)
    x.free = True
    x.provider = _provider(gw)
    path = scope["path"]
    if path.startswith("/anthropic/"):
        path = path[10:]
    if path != "/v1/models":
        # The path was percent-decoded already: "..%2F" arrives as "../".
        model_id = path[len("/v1/models/") :]
        if "/" in model_id or not model_id:
            raise GatewayError(404, f"Tollgate has no route GET {scope['path']}.", retry=False)
        x.model = checked(model_id)
        _check_model(x.key, x.model)
        path = "/v1/models/" + segment(model_id)
    await relay(gw, scope, receive, send, x, "GET", path, None)


def _filter_models(body: bytes, key: KeyEntry) -> bytes:
    """Drop the models the key may not use from a model listing."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        return body
    doc["data"] = [m for m in doc["data"] if isinstance(m, dict) and key.allows(str(m.get("id", "")))]
    if doc["data"]:
        doc["first_id"] = doc["data"][0].get("id")
        doc["last_id"] = doc["data"][-1].get("id")
    return orjson.dumps(doc)


async def relay(
    gw: Gateway,
    scope: Scope,
    receive: Receive,
    send: Send,
    x: Exchange,
    method: str,
    path: str,
    body: bytes | None,
) -> None:
    provider = x.provider
    assert provider is not None
    query = upstream_query(scope.get("query_string") or b"")
    url = provider.base_url + path + ("?" + query if query else "")
    hdrs = upstream_headers(provider, scope["headers"])
    watcher = gw.watch_disconnect(receive, x)
    try:
        x.upstream_started = gw.clock()
        try:
            response = await gw.session.request(method, url, data=body, headers=hdrs)
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise GatewayError(
                502,
                f"Tollgate could not reach provider '{provider.name}' ({type(exc).__name__}). "
                "Retrying shortly usually helps; if it persists, tell your platform admin.",
            ) from None
        except TimeoutError:
            raise GatewayError(504, f"Provider '{provider.name}' did not answer in time.") from None
        try:
            await _relay_response(gw, send, x, response)
        finally:
            response.release()
    except asyncio.CancelledError:
        if not x.disconnected:
            raise
        # Our own doing: the client went away, so the upstream call was dropped
        # with the response above. The request is still recorded.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        x.status = 499
        x.error_type = "client_disconnected"
        x.error_message = "The client disconnected before the response was complete."
    finally:
        x.done = True
        watcher.cancel()


async def _relay_response(gw: Gateway, send: Send, x: Exchange, response: aiohttp.ClientResponse) -> None:
    x.status = response.status
    out_headers = [(k.lower(), v) for k, v in response.raw_headers if k.lower() not in DROP_RESPONSE]
    out_headers.append((b"x-tollgate-request-id", x.request_id.encode()))
    if response.content_type == "text/event-stream":
        scanner = SSEUsageScanner()
        x.usage = scanner.usage
        await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
        try:
            async for chunk in response.content.iter_any():
                if not x.first_byte:
                    x.first_byte = gw.clock()
                scanner.feed(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            # Headers are gone already: end the stream the way Anthropic does.
            message = f"The provider connection broke mid-stream ({type(exc).__name__}); retry the request."
            x.error_type = "upstream_stream_error"
            x.error_message = message
            await send(
                {"type": "http.response.body", "body": anthropic_sse_error("api_error", message), "more_body": True}
            )
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
    if x.endpoint == "messages" or response.status >= 400:
        x.usage = usage_from_json(payload)
    elif x.endpoint == "models" and x.key is not None and x.key.allowed:
        payload = _filter_models(payload, x.key)
    x.done = True
    await send_response(send, response.status, out_headers, payload)
