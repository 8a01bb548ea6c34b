"""The adapter for providers that answer in another shape (OpenAI, Gemini):
their whole answers, streams and errors re-said as Anthropic's, usage on the side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from dataplane.usage import Usage


def usage_into(translated: Any, usage: Usage) -> None:
    """Copy a translation's usage (Anthropic's terms) into the request's."""
    usage.input_tokens = translated.input_tokens
    usage.output_tokens = translated.output_tokens
    usage.cache_read_tokens = translated.cache_read_input_tokens
    usage.cache_write_tokens = translated.cache_creation_input_tokens


class Translated:
    __slots__ = ("usage", "content_type", "_stream", "_model", "_provider", "_answer_key", "_to_anthropic", "_error_types")

    def __init__(
        self,
        *,
        model: str,
        provider: str,
        stream: Any,
        answer_key: str,
        to_anthropic: Callable[[dict[str, Any], str], dict[str, Any]],
        error_types: dict[int, str],
    ) -> None:
        self.usage = Usage(model=model)
        self.content_type = "text/event-stream" if stream is not None else "application/json"
        self._stream = stream
        self._model = model
        self._provider = provider
        self._answer_key = answer_key
        self._to_anthropic = to_anthropic
        self._error_types = error_types

    def convert(self, status: int, body: bytes) -> bytes:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, list) and doc:  # Google sometimes wraps one object in a list
            doc = doc[0]
        if status >= 400 or not isinstance(doc, dict) or self._answer_key not in doc:
            message = body[:500].decode("utf-8", "replace")
            if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
                message = str(doc["error"].get("message") or message)
            error_type = self._error_types.get(status, "api_error")
            self.usage.error_type = error_type
            self.usage.error_message = message[:2000]
            return orjson.dumps({"type": "error", "error": {"type": error_type, "message": f"{self._provider}: {message}"}})
        out = self._to_anthropic(doc, self._model)
        self.usage.take(out.get("usage") or {})
        self.usage.stop_reason = str(out.get("stop_reason") or "")
        return orjson.dumps(out)

    def feed(self, chunk: bytes) -> bytes:
        out: bytes = self._stream.feed(chunk)
        usage_into(self._stream.usage, self.usage)
        return out

    def close(self) -> bytes:
        out: bytes = self._stream.close()
        usage_into(self._stream.usage, self.usage)
        self.usage.stop_reason = self._stream.stop_reason or ""
        return out
