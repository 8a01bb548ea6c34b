"""The Gemini API (Google AI Studio keys) for Anthropic-shaped requests:
``{base}/v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse`` with ``x-goog-api-key``
(https://ai.google.dev/api/generate-content). Requests and answers, streams
included, go through dataplane/translation/gemini.py.
"""

from __future__ import annotations

from typing import Any

import orjson

from dataplane.providers.base import AnthropicRequest, EstimatedCount, Outbound, Target
from dataplane.translation.gemini import (
    GeminiToAnthropicStream,
    anthropic_request_to_gemini,
    gemini_response_to_anthropic,
)
from dataplane.usage import Usage

DEFAULT_BASE = "https://generativelanguage.googleapis.com"
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "api_error",  # Google refused Tollgate's key, not the client's
    403: "api_error",
    404: "not_found_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}


def _usage_into(translated: Any, usage: Usage) -> None:
    usage.input_tokens = translated.input_tokens
    usage.output_tokens = translated.output_tokens
    usage.cache_read_tokens = translated.cache_read_input_tokens
    usage.cache_write_tokens = translated.cache_creation_input_tokens


class _FromGemini:
    __slots__ = ("usage", "content_type", "_stream", "_model", "_provider")

    def __init__(self, model: str, provider: str, stream: bool) -> None:
        self.usage = Usage(model=model)
        self.content_type = "text/event-stream" if stream else "application/json"
        self._stream = GeminiToAnthropicStream(model=model) if stream else None
        self._model = model
        self._provider = provider

    def convert(self, status: int, body: bytes) -> bytes:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, list) and doc:
            doc = doc[0]
        if status >= 400 or not isinstance(doc, dict) or "candidates" not in doc:
            message = body[:500].decode("utf-8", "replace")
            if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
                message = str(doc["error"].get("message") or message)
            error_type = _ERROR_TYPES.get(status, "api_error")
            self.usage.error_type = error_type
            self.usage.error_message = message[:2000]
            return orjson.dumps({"type": "error", "error": {"type": error_type, "message": f"{self._provider}: {message}"}})
        out = gemini_response_to_anthropic(doc, model=self._model)
        self.usage.take(out.get("usage") or {})
        self.usage.stop_reason = str(out.get("stop_reason") or "")
        return orjson.dumps(out)

    def feed(self, chunk: bytes) -> bytes:
        assert self._stream is not None
        out = self._stream.feed(chunk)
        _usage_into(self._stream.usage, self.usage)
        return out

    def close(self) -> bytes:
        assert self._stream is not None
        out = self._stream.close()
        _usage_into(self._stream.usage, self.usage)
        self.usage.stop_reason = self._stream.stop_reason or ""
        return out


class GeminiApi:
    local_count_tokens = True

    async def build(self, target: Target, request: AnthropicRequest) -> Outbound:
        base = target.provider.base_url or DEFAULT_BASE
        method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        url = f"{base}/v1beta/models/{target.model}:{method}"
        body = anthropic_request_to_gemini(request.doc)
        headers = {"x-goog-api-key": target.provider.credential, "content-type": "application/json"}
        return Outbound("POST", url, headers, orjson.dumps(body))

    def adapter(self, target: Target, request: AnthropicRequest, status: int, content_type: str) -> _FromGemini:
        stream = request.stream and status < 400 and content_type == "text/event-stream"
        return _FromGemini(target.model, target.provider.name, stream)

    def estimate(self, request: AnthropicRequest) -> EstimatedCount:
        return EstimatedCount.of(request)


GEMINI = GeminiApi()
