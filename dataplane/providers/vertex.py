"""Google Vertex AI, Anthropic models: the Messages API behind Google's URLs and auth.

The router calls the module-level instance ``VERTEX`` (a ``ProviderModule``):
``await VERTEX.build(target, request)`` for the upstream call, then
``VERTEX.adapter(target, request, status, content_type)`` for the answer. The
adapter's ``status`` is the one to show the client: 502 where Google refused
the gateway's own credential (401/403), the upstream status otherwise.

Vertex takes Anthropic's body almost as is
(https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude):
the model moves into the URL (``:rawPredict``, or ``:streamRawPredict`` when
``stream`` is true) and ``anthropic_version`` goes in the body. count_tokens is
``models/count-tokens:rawPredict`` with the model kept in the body
(https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/count-tokens).
Answers are Anthropic's JSON and SSE byte for byte; Google's own errors
(``{"error": {"code", "message", "status"}}``) are rewritten as Anthropic errors.

Provider settings: ``location`` (default ``global``), ``project_id`` (else the
key's), ``beta_allowlist`` (``anthropic-beta`` flags passed on; absent = all:
Vertex refuses flags it does not know, and Claude Code sends some).
The credential is a service-account JSON key; see ``gcp_auth``.

Gemini on Vertex would need Anthropic⇄Gemini translation, which does not exist
yet: ``build`` refuses any model that is not Claude.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from dataplane.errors import GatewayError, context_too_long, hide_cloud_ids
from dataplane.providers.anthropic import SSEUsageScanner, Usage, usage_from_json
from dataplane.providers.base import AnthropicRequest, Outbound, Target, attributed
from dataplane.providers.gcp_auth import TokenCache

ANTHROPIC_VERSION = "vertex-2023-10-16"
DEFAULT_LOCATION = "global"

# https://cloud.google.com/apis/design/errors#handling_errors
_GOOGLE_STATUS_TYPES = {
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "OUT_OF_RANGE": "invalid_request_error",
    "NOT_FOUND": "not_found_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
    "UNAVAILABLE": "overloaded_error",
    "DEADLINE_EXCEEDED": "timeout_error",
}
_HTTP_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def base_url(location: str) -> str:
    # Multi-region and global endpoints have no location prefix:
    # https://cloud.google.com/vertex-ai/generative-ai/docs/learn/locations#global-endpoint
    if location == "global":
        return "https://aiplatform.googleapis.com"
    if location in ("us", "eu"):
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def is_claude(model: str) -> bool:
    return model.startswith("claude-")


def google_error(status: int, body: bytes) -> bytes:
    """Any error body from Vertex as Anthropic error JSON.

    Anthropic's own errors (Vertex relays some) pass through untouched.
    """
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("type") == "error" and isinstance(doc.get("error"), dict):
        return body
    # Some Google front ends answer with a list of one error object.
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        doc = doc[0]
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, dict):
        google_status = str(error.get("status") or "")
        message = str(error.get("message") or google_status or f"HTTP {status}")
        code = error.get("code")
        if isinstance(code, int) and code >= 400:
            status = code
    else:
        google_status = ""
        text = body[:500].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    if status in (401, 403) or google_status in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        # The caller's key was fine; it is the gateway's credential Google refused.
        error_type = "api_error"
        message = (
            "Google refused the gateway's credential for this Vertex provider; an admin "
            f"must fix the service-account key or its IAM roles ({message})"
        )
    else:
        error_type = _GOOGLE_STATUS_TYPES.get(google_status) or _HTTP_TYPES.get(status, "api_error")
    if context_too_long(message):
        # Word for word: Claude Code compacts and retries on this message.
        return orjson.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": message}})
    return orjson.dumps(
        {"type": "error", "error": {"type": error_type, "message": f"Vertex: {hide_cloud_ids(message)}"}}
    )


class VertexAdapter:
    """Vertex answers in Anthropic's shape already: relay, read usage, fix errors."""

    __slots__ = ("usage", "content_type", "status", "_scanner")

    def __init__(self, status: int, content_type: str) -> None:
        self._scanner = SSEUsageScanner()
        self.usage: Usage = self._scanner.usage
        streaming = status < 400 and content_type.startswith("text/event-stream")
        self.content_type = "text/event-stream" if streaming else "application/json"
        # What the client should see: a refused gateway credential is a bad
        # gateway, not the caller's 401/403 (Claude Code would ask to log in again).
        self.status = 502 if status in (401, 403) else status

    def convert(self, status: int, body: bytes) -> bytes:
        if status >= 400:
            body = google_error(status, body)
        usage = usage_from_json(body)
        usage.agent_id = self.usage.agent_id
        self.usage = usage
        return body

    def feed(self, chunk: bytes) -> bytes:
        self._scanner.feed(chunk)
        return chunk

    def close(self) -> bytes:
        return b""


class VertexProvider:
    def __init__(self, tokens: TokenCache | None = None) -> None:
        self.tokens = tokens or TokenCache()

    async def build(self, target: Target, request: AnthropicRequest) -> Outbound:
        provider = target.provider
        gemini = target.model.startswith("gemini-")
        if not is_claude(target.model) and not gemini:
            raise GatewayError(
                400,
                f"Provider {provider.name!r}: {target.model!r} is neither a Claude nor a Gemini model; "
                "the Vertex provider serves those two families.",
                error_type="invalid_request_error",
                retry=False,
            )
        tokens = self.tokens.for_provider(provider)
        settings = provider.settings
        location = str(settings.get("location") or DEFAULT_LOCATION)
        project = settings.get("project_id") or tokens.project_id
        if not project:
            raise GatewayError(
                502,
                f"Provider {provider.name!r}: no GCP project: set project_id in the provider's "
                "settings or use a service-account key that names one.",
                error_type="api_error",
                retry=False,
            )
        root = (provider.base_url or base_url(location)).rstrip("/")
        if gemini:
            return await self._gemini(target, request, root, str(project), location, tokens)
        prefix = f"{root}/v1/projects/{quote(str(project), safe='')}/locations/{quote(location, safe='')}/publishers/anthropic/models"

        body = dict(request.doc)
        body["anthropic_version"] = ANTHROPIC_VERSION
        if request.endpoint == "count_tokens":
            body["model"] = target.model
            url = f"{prefix}/count-tokens:rawPredict"
        else:
            body.pop("model", None)
            action = "streamRawPredict" if body.get("stream") else "rawPredict"
            url = f"{prefix}/{quote(target.model, safe='@.-_~')}:{action}"

        headers = {
            "content-type": "application/json",
            "authorization": f"Bearer {await tokens.token()}",
        }
        betas = request.betas
        allowlist = settings.get("beta_allowlist")
        if allowlist is not None:
            allowed = set(allowlist)
            betas = [b for b in betas if b in allowed]
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        return Outbound("POST", url, headers, orjson.dumps(body))

    async def _gemini(
        self, target: Target, request: AnthropicRequest, root: str, project: str, location: str, tokens: Any
    ) -> Outbound:
        """Gemini on Vertex: Google's generateContent, translated both ways
        (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference)."""
        from dataplane.translation import anthropic_request_to_gemini

        prefix = f"{root}/v1/projects/{quote(project, safe='')}/locations/{quote(location, safe='')}/publishers/google/models"
        body = anthropic_request_to_gemini(request.doc)
        if request.endpoint == "count_tokens":
            url = f"{prefix}/{quote(target.model, safe='@.-_~')}:countTokens"
            body = {"contents": body.get("contents", [])}
        else:
            action = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
            url = f"{prefix}/{quote(target.model, safe='@.-_~')}:{action}"
        headers = {"content-type": "application/json", "authorization": f"Bearer {await tokens.token()}"}
        return Outbound("POST", url, headers, orjson.dumps(body))

    def adapter(self, target: Target, request: AnthropicRequest, status: int, content_type: str) -> Any:
        if target.model.startswith("gemini-"):
            if request.endpoint == "count_tokens":
                return _GeminiCount()
            from dataplane.providers.gemini import from_gemini

            stream = request.stream and status < 400 and content_type == "text/event-stream"
            return attributed(from_gemini(target.model, target.provider.name, stream), request)
        return attributed(VertexAdapter(status, content_type), request)


class _GeminiCount:
    """Vertex's countTokens answer (``totalTokens``) as Anthropic's."""

    __slots__ = ("usage", "content_type")

    def __init__(self) -> None:
        from dataplane.usage import Usage

        self.usage = Usage()
        self.content_type = "application/json"

    def convert(self, status: int, body: bytes) -> bytes:
        try:
            return orjson.dumps({"input_tokens": int(orjson.loads(body)["totalTokens"])})
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return body

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def close(self) -> bytes:
        return b""


VERTEX = VertexProvider()
