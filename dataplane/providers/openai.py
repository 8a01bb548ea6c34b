"""OpenAI, Azure OpenAI and the OpenAI-compatible family, for Anthropic-shaped
requests: translate the request to Chat Completions, and the answer (stream
included) back to Anthropic Messages (dataplane/translation/).

- ``openai`` and ``openai_compatible``: ``{base_url}/chat/completions`` with
  ``Authorization: Bearer``; the base URL names the service (presets in
  governance/models.py: Mistral, Groq, DeepSeek, Together, OpenRouter,
  Fireworks, xAI, Ollama, vLLM).
- ``azure_openai``: ``{base_url}/openai/deployments/{deployment}/chat/completions
  ?api-version=…`` with an ``api-key`` header; the target's model is the
  deployment name (https://learn.microsoft.com/azure/ai-services/openai/reference).

Count-tokens has no equivalent in this family: the gateway answers 501
``not_supported_error`` (with ``x-should-retry: false``) rather than a guess.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from dataplane.model_ids import segment
from dataplane.providers.base import (
    AnthropicRequest,
    Outbound,
    ProviderConfig,
    Target,
    attributed,
)
from dataplane.providers.translated import Translated, usage_into
from dataplane.translation import (
    OpenAIToAnthropicStream,
    anthropic_request_to_openai,
    openai_response_to_anthropic,
)
from dataplane.translation import Usage as TranslationUsage
from dataplane.usage import Usage

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "api_error",  # the provider refused our credential, not the client's key
    403: "api_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
}


def chat_endpoint(provider: ProviderConfig, model: str) -> tuple[str, dict[str, str]]:
    """The Chat Completions URL and credential headers; Azure names the
    deployment in the path, so the model goes in as one quoted segment."""
    if provider.kind == "azure_openai":
        version = quote(str(provider.settings.get("api_version", "2024-10-21")), safe="-.")
        url = f"{provider.base_url}/openai/deployments/{segment(model)}/chat/completions?api-version={version}"
        return url, {"api-key": provider.credential, "content-type": "application/json"}
    return f"{provider.base_url}/chat/completions", {
        "authorization": f"Bearer {provider.credential}",
        "content-type": "application/json",
    }


class OpenAIChat:
    # Chat Completions has no token counting endpoint.
    counts_tokens = False

    async def build(self, target: Target, request: AnthropicRequest) -> Outbound:
        provider = target.provider
        settings = provider.settings
        url, headers = chat_endpoint(provider, target.model)
        body = anthropic_request_to_openai(
            request.doc,
            model=target.model,
            reasoning=bool(settings.get("reasoning")),
            max_tokens_field=settings.get("max_tokens_field", "max_completion_tokens" if provider.kind != "openai_compatible" else "max_tokens"),
            # Claude Code's metadata.user_id identifies the engineer's machine: a
            # third party gets it only when the provider is configured to.
            user=bool(settings.get("send_user_id")),
        )
        return Outbound("POST", url, headers, orjson.dumps(body))

    def adapter(self, target: Target, request: AnthropicRequest, status: int, content_type: str) -> Translated:
        stream = request.stream and status < 400 and content_type == "text/event-stream"
        translated = Translated(
            model=target.model,
            provider=target.provider.name,
            stream=OpenAIToAnthropicStream(model=target.model) if stream else None,
            answer_key="choices",
            to_anthropic=lambda doc, model: openai_response_to_anthropic(doc, model=model),
            error_types=_ERROR_TYPES,
        )
        return attributed(translated, request)

OPENAI = OpenAIChat()


class _OpenAIPassThrough:
    """An OpenAI-shaped answer for an OpenAI-shaped caller: relayed as it is,
    with usage read on the side. Tollgate always asks for the final usage
    chunk; a caller that did not ask for it does not get it."""

    __slots__ = ("usage", "content_type", "_include_usage", "_pending")

    def __init__(self, model: str, stream: bool, include_usage: bool) -> None:
        self.usage = Usage(model=model)
        self.content_type = "text/event-stream" if stream else "application/json"
        self._include_usage = include_usage
        self._pending = b""

    def _take(self, usage: Any) -> None:
        usage_into(TranslationUsage.from_openai(usage), self.usage)

    def convert(self, status: int, body: bytes) -> bytes:
        if status < 400:
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                return body
            if isinstance(doc, dict) and isinstance(doc.get("usage"), dict):
                self._take(doc["usage"])
        else:
            self.usage.error_type = _ERROR_TYPES.get(status, "api_error")
            self.usage.error_message = body[:2000].decode("utf-8", "replace")
        return body

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk if self._pending else chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._pending = data
            return b""
        complete, self._pending = data[: end + 2], data[end + 2 :]
        if b'"usage"' not in complete:
            return complete
        kept = []
        for event in complete.split(b"\n\n"):
            if b'"usage"' in event and event.startswith(b"data: {"):
                try:
                    doc = orjson.loads(event[6:])
                except orjson.JSONDecodeError:
                    doc = None
                if isinstance(doc, dict) and isinstance(doc.get("usage"), dict):
                    self._take(doc["usage"])
                    if not self._include_usage and not doc.get("choices"):
                        continue
            if event:
                kept.append(event + b"\n\n")
        return b"".join(kept)

    def close(self) -> bytes:
        tail, self._pending = self._pending, b""
        return tail


class OpenAINative:
    """OpenAI-family providers for OpenAI-shaped callers: the body goes as sent,
    with the served model and Tollgate's credential."""

    async def build(self, target: Target, request: Any) -> Outbound:
        url, headers = chat_endpoint(target.provider, target.model)
        doc = dict(request.doc)
        doc["model"] = target.model
        if request.stream:
            doc["stream_options"] = {**(doc.get("stream_options") or {}), "include_usage": True}
        return Outbound("POST", url, headers, orjson.dumps(doc))

    def adapter(self, target: Target, request: Any, status: int, content_type: str) -> _OpenAIPassThrough:
        stream = request.stream and status < 400 and content_type == "text/event-stream"
        return _OpenAIPassThrough(target.model, stream, request.include_usage)


OPENAI_NATIVE = OpenAINative()
