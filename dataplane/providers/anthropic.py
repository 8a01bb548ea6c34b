"""Anthropic, native: pass the caller's request through and read usage on the side.

Usage arrives in ``message_start`` (input and cache tokens) and ``message_delta``
(cumulative output tokens, and on newer API versions cumulative input too):
https://docs.anthropic.com/en/docs/build-with-claude/streaming
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from dataplane.providers.base import attributed
from dataplane.usage import Usage

# Forwarded upstream: what Anthropic's API and its clients (the SDKs, Claude
# Code) use, and nothing else. The caller's credentials, cookies, hop-by-hop
# and proxy headers (X-Forwarded-*, Forwarded, Via: our own users' addresses),
# Tollgate's own x-tollgate-* controls and anything unknown stay here.
_FORWARD_REQUEST = frozenset(
    {
        b"content-type",
        b"content-encoding",
        b"accept",
        b"user-agent",
        b"x-app",
        b"x-claude-code-session-id",
        b"x-claude-code-agent-id",
        b"x-client-request-id",
        b"idempotency-key",
    }
)
_FORWARD_PREFIXES = (b"anthropic-", b"x-stainless-")
# Query parameters Anthropic's API takes on the routes we relay.
_FORWARD_QUERY = frozenset({"beta", "limit", "before_id", "after_id"})

# Never relayed back: hop-by-hop, framing we redo, and the upstream's own
# server identity (uvicorn writes date and server).
DROP_RESPONSE = frozenset(
    {
        b"content-length",
        b"content-encoding",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"date",
        b"server",
        b"set-cookie",
        b"alt-svc",
    }
)


def upstream_headers(provider: Any, client_headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    out = {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in client_headers
        if k in _FORWARD_REQUEST or k.startswith(_FORWARD_PREFIXES)
    }
    out.pop("anthropic-api-key", None)
    out["x-api-key"] = provider.credential
    if "anthropic-version" not in out:
        out["anthropic-version"] = "2023-06-01"
    return out


def upstream_query(raw: bytes) -> str:
    """The caller's query string, reduced to the parameters Anthropic takes
    (``?beta=true`` from Claude Code), each re-encoded."""
    if not raw or raw == b"beta=true":
        return raw.decode("latin-1")
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return urlencode([(k, v) for k, v in pairs if k in _FORWARD_QUERY])


def usage_from_json(body: bytes) -> Usage:
    usage = Usage()
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return usage
    if not isinstance(doc, dict):
        return usage
    if doc.get("type") == "error":
        err = doc.get("error") or {}
        usage.error_type = str(err.get("type", ""))
        usage.error_message = str(err.get("message", ""))[:2000]
        return usage
    if isinstance(doc.get("usage"), dict):
        usage.take(doc["usage"])
    usage.model = str(doc.get("model") or "")
    usage.stop_reason = str(doc.get("stop_reason") or "")
    return usage


class SSEUsageScanner:
    """Reads usage out of a relayed SSE stream without touching content deltas.

    Only events whose name starts with ``message_`` or ``error`` are decoded;
    everything else is skipped by a prefix check, so the cost per chunk is a few
    ``bytes.find`` calls.
    """

    __slots__ = ("usage", "_pending", "events")

    def __init__(self) -> None:
        self.usage = Usage()
        self._pending = b""
        self.events = 0

    def feed(self, chunk: bytes) -> None:
        data = self._pending + chunk if self._pending else chunk
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        start = 0
        while True:
            end = data.find(b"\n\n", start)
            if end < 0:
                break
            self._event(data, start, end)
            start = end + 2
        self._pending = data[start:] if start < len(data) else b""

    def _event(self, data: bytes, start: int, end: int) -> None:
        self.events += 1
        if not data.startswith(b"event: message_", start) and not data.startswith(b"event: error", start):
            return
        block = data[start:end]
        marker = block.find(b"\ndata:")
        if marker < 0:
            return
        try:
            payload = orjson.loads(block[marker + 6 :])
        except orjson.JSONDecodeError:
            return
        kind = payload.get("type")
        usage = self.usage
        if kind == "message_start":
            message = payload.get("message") or {}
            usage.model = str(message.get("model") or "")
            if isinstance(message.get("usage"), dict):
                usage.take(message["usage"])
        elif kind == "message_delta":
            if isinstance(payload.get("usage"), dict):
                usage.take(payload["usage"])
            delta = payload.get("delta") or {}
            if delta.get("stop_reason"):
                usage.stop_reason = str(delta["stop_reason"])
        elif kind == "error":
            err = payload.get("error") or {}
            usage.error_type = str(err.get("type", ""))
            usage.error_message = str(err.get("message", ""))[:2000]


class _PassThrough:
    """Anthropic's answer is already in Anthropic's shape: read usage, change nothing."""

    __slots__ = ("usage", "content_type", "_scanner")

    def __init__(self, content_type: str) -> None:
        self.content_type = content_type
        self._scanner = SSEUsageScanner()
        self.usage = self._scanner.usage

    def convert(self, status: int, body: bytes) -> bytes:
        usage = usage_from_json(body)
        usage.agent_id = self.usage.agent_id
        self.usage = usage
        return body

    def feed(self, chunk: bytes) -> bytes:
        self._scanner.feed(chunk)
        return chunk

    def close(self) -> bytes:
        return b""


class AnthropicNative:
    """The Anthropic API itself: the body goes byte for byte unless the route
    serves another model, in which case only ``model`` changes."""

    async def build(self, target: Any, request: Any) -> Any:
        from dataplane.providers.base import Outbound

        path = "/v1/messages" if request.endpoint == "messages" else "/v1/messages/count_tokens"
        query = upstream_query(request.query)
        url = target.provider.base_url + path + ("?" + query if query else "")
        headers = upstream_headers(target.provider, request.headers)
        body = request.raw
        if target.model != request.doc.get("model"):
            body = orjson.dumps({**request.doc, "model": target.model})
            headers.pop("content-encoding", None)
        return Outbound("POST", url, headers, body)

    def adapter(self, target: Any, request: Any, status: int, content_type: str) -> _PassThrough:
        return attributed(_PassThrough(content_type if content_type else "application/json"), request)


ANTHROPIC = AnthropicNative()
