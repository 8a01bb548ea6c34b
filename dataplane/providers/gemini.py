"""The Gemini API (Google AI Studio keys) for Anthropic-shaped requests:
``{base}/v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse`` with ``x-goog-api-key``
(https://ai.google.dev/api/generate-content). Requests and answers, streams
included, go through dataplane/translation/gemini.py.
"""

from __future__ import annotations

import orjson

from dataplane.model_ids import segment
from dataplane.providers.base import AnthropicRequest, Outbound, Target, attributed
from dataplane.providers.translated import Translated
from dataplane.translation.gemini import (
    GeminiToAnthropicStream,
    anthropic_request_to_gemini,
    gemini_response_to_anthropic,
)

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


def from_gemini(model: str, provider: str, stream: bool) -> Translated:
    return Translated(
        model=model,
        provider=provider,
        stream=GeminiToAnthropicStream(model=model) if stream else None,
        answer_key="candidates",
        to_anthropic=lambda doc, m: gemini_response_to_anthropic(doc, model=m),
        error_types=_ERROR_TYPES,
    )


class GeminiCount:
    """``:countTokens`` answered in Anthropic's shape: ``{"input_tokens": n}``."""

    __slots__ = ("usage", "content_type", "_errors")

    def __init__(self, target: Target) -> None:
        self.content_type = "application/json"
        self._errors = from_gemini(target.model, target.provider.name, False)
        self.usage = self._errors.usage

    def convert(self, status: int, body: bytes) -> bytes:
        if status >= 400:
            out = self._errors.convert(status, body)
            self.usage = self._errors.usage
            return out
        try:
            tokens = int(orjson.loads(body)["totalTokens"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return self._errors.convert(502, b'{"error": {"code": 502, "message": "countTokens answered without totalTokens"}}')
        return orjson.dumps({"input_tokens": tokens})

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def close(self) -> bytes:
        return b""


class GeminiApi:
    async def build(self, target: Target, request: AnthropicRequest) -> Outbound:
        base = target.provider.base_url or DEFAULT_BASE
        body = anthropic_request_to_gemini(request.doc)
        headers = {"x-goog-api-key": target.provider.credential, "content-type": "application/json"}
        if request.endpoint == "count_tokens":
            # The whole request counts (system, tools), not only the turns.
            url = f"{base}/v1beta/models/{segment(target.model)}:countTokens"
            counted = {"generateContentRequest": {"model": f"models/{target.model}", **body}}
            return Outbound("POST", url, headers, orjson.dumps(counted))
        method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        url = f"{base}/v1beta/models/{segment(target.model)}:{method}"
        return Outbound("POST", url, headers, orjson.dumps(body))

    def adapter(self, target: Target, request: AnthropicRequest, status: int, content_type: str) -> Translated | GeminiCount:
        if request.endpoint == "count_tokens":
            return GeminiCount(target)
        stream = request.stream and status < 400 and content_type == "text/event-stream"
        return attributed(from_gemini(target.model, target.provider.name, stream), request)


GEMINI = GeminiApi()
