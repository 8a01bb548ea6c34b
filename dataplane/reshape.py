"""Serving a caller of another API shape (OpenAI Chat, Responses, Gemini) from
any provider module the router speaks Anthropic to.

``ViaAnthropic`` is a provider module in the caller's shape: it translates the
request to Anthropic's, lets the inner module (Anthropic, Bedrock, Vertex,
Gemini, OpenAI…) build its call, and wraps the inner adapter so the answer,
stream included, comes back in the caller's shape. Each ingress supplies its
four translations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from dataplane.providers.base import AnthropicRequest, Outbound, Target
from dataplane.providers.registry import module_for

STREAMING = ("text/event-stream", "application/vnd.amazon.eventstream")


class Reshaped:
    """An Anthropic-shaped adapter whose output is re-said in the caller's shape."""

    __slots__ = ("inner", "content_type", "_stream", "_to_client", "_error")

    def __init__(self, inner: Any, stream: Any, to_client: Callable[[dict[str, Any]], dict[str, Any]], error: Callable[[int, bytes], bytes]) -> None:
        self.inner = inner
        self.content_type = "text/event-stream" if stream is not None else "application/json"
        self._stream = stream
        self._to_client = to_client
        self._error = error

    @property
    def usage(self) -> Any:
        return self.inner.usage

    def convert(self, status: int, body: bytes) -> bytes:
        converted = self.inner.convert(status, body)
        if status >= 400:
            return self._error(status, converted)
        try:
            return orjson.dumps(self._to_client(orjson.loads(converted)))
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return self._error(502, orjson.dumps({"error": {"message": "The provider's answer could not be read."}}))

    def feed(self, chunk: bytes) -> bytes:
        sse = self.inner.feed(chunk)
        return self._stream.feed(sse) if sse else b""

    def close(self) -> bytes:
        tail = self.inner.close()
        out = self._stream.feed(tail) if tail else b""
        return out + self._stream.close()


class ViaAnthropic:
    """A provider module for callers of another shape, over an Anthropic-speaking one.

    ``to_anthropic(doc, model)`` translates the caller's request;
    ``stream(model, request)`` makes the stream translator (Anthropic SSE in,
    the caller's out); ``to_client(anthropic_doc, model)`` translates a whole
    answer; ``error(status, anthropic_error_body)`` an error.
    """

    def __init__(
        self,
        kind: str,
        *,
        to_anthropic: Callable[[dict[str, Any], str], dict[str, Any]],
        stream: Callable[[str, Any], Any],
        to_client: Callable[[dict[str, Any], str], dict[str, Any]],
        error: Callable[[int, bytes], bytes],
    ) -> None:
        self.inner = module_for(kind)
        self._to_anthropic = to_anthropic
        self._stream = stream
        self._to_client = to_client
        self._error = error

    async def build(self, target: Target, request: Any) -> Outbound:
        doc = self._to_anthropic(request.doc, target.model)
        doc["stream"] = request.stream
        request.translated = AnthropicRequest(
            endpoint="messages",
            doc=doc,
            raw=orjson.dumps(doc),
            content_encoding=None,
            headers=[(b"content-type", b"application/json")],
            query=b"",
            stream=request.stream,
        )
        return await self.inner.build(target, request.translated)

    def adapter(self, target: Target, request: Any, status: int, content_type: str) -> Reshaped:
        inner = self.inner.adapter(target, request.translated, status, content_type)
        streaming = request.stream and status < 400 and content_type in STREAMING
        model = target.model
        return Reshaped(
            inner,
            self._stream(model, request) if streaming else None,
            lambda doc: self._to_client(doc, model),
            self._error,
        )
