"""Gemini API ingress for Gemini CLI: ``/genai/v1beta/models/{model}:generateContent``,
``:streamGenerateContent`` (``?alt=sse``) and ``:countTokens``.

Point Gemini CLI at the gateway with ``GOOGLE_GEMINI_BASE_URL=…/genai`` and a
virtual key as ``GEMINI_API_KEY`` (sent as ``x-goog-api-key``, or ``?key=``).
Gemini providers get the body as sent; every other provider gets it
translated to Anthropic's shape (and on to theirs), with the answer, stream
included, translated back (dataplane/translation/gemini.py). Errors speak
Google's error JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from dataplane.errors import GatewayError
from dataplane.exchange import Exchange
from dataplane.forward import forward
from dataplane.http import Receive, Scope, Send, decode_body, read_body
from dataplane.model_ids import checked, segment
from dataplane.providers.base import AnthropicRequest, Outbound, Target
from dataplane.reshape import ViaAnthropic
from dataplane.routing import MIN_ATTEMPTS, Plan
from dataplane.translation import (
    AnthropicToGeminiStream,
    anthropic_response_to_gemini,
    gemini_request_to_anthropic,
)
from dataplane.translation import Usage as Translated
from dataplane.usage import Usage

if TYPE_CHECKING:
    from dataplane.app import Gateway

_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "RESOURCE_EXHAUSTED", 403: "PERMISSION_DENIED",
           404: "NOT_FOUND", 413: "INVALID_ARGUMENT", 415: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED",
           499: "CANCELLED", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def google_error_body(status: int, message: str) -> bytes:
    return orjson.dumps({"error": {"code": status, "message": message, "status": _STATUS.get(status, "INTERNAL")}})


def _google_error_from_anthropic(status: int, body: bytes) -> bytes:
    try:
        message = str(orjson.loads(body)["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        message = body[:500].decode("utf-8", "replace")
    return google_error_body(status, message)


@dataclass(slots=True)
class GeminiRequest:
    doc: dict[str, Any]
    stream: bool
    endpoint: str = "generate_content"
    translated: AnthropicRequest | None = None


class _GeminiPassThrough:
    __slots__ = ("usage", "content_type", "_pending")

    def __init__(self, model: str, stream: bool) -> None:
        self.usage = Usage(model=model)
        self.content_type = "text/event-stream" if stream else "application/json"
        self._pending = b""

    def _take(self, meta: Any) -> None:
        if isinstance(meta, dict):
            from dataplane.translation.gemini import usage_from_gemini

            got: Translated = usage_from_gemini(meta)
            self.usage.input_tokens = got.input_tokens
            self.usage.output_tokens = got.output_tokens
            self.usage.cache_read_tokens = got.cache_read_input_tokens

    def convert(self, status: int, body: bytes) -> bytes:
        if status < 400:
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                return body
            if isinstance(doc, dict):
                self._take(doc.get("usageMetadata"))
        else:
            self.usage.error_type = "api_error"
            self.usage.error_message = body[:2000].decode("utf-8", "replace")
        return body

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        if b"usageMetadata" in data:
            for line in data.split(b"\n"):
                if line.startswith(b"data: ") and b"usageMetadata" in line:
                    try:
                        doc = orjson.loads(line[6:])
                    except orjson.JSONDecodeError:
                        self._pending = data[data.rfind(b"\n") + 1 :]
                        continue
                    self._take(doc.get("usageMetadata"))
        self._pending = data[data.rfind(b"\n") + 1 :] if b"\n" in data else data
        return chunk

    def close(self) -> bytes:
        self._pending = b""
        return b""


class _GeminiNative:
    async def build(self, target: Target, request: GeminiRequest) -> Outbound:
        if request.endpoint == "count_tokens":
            method = "countTokens"
        else:
            method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        url = f"{target.provider.base_url}/v1beta/models/{segment(target.model)}:{method}"
        headers = {"x-goog-api-key": target.provider.credential, "content-type": "application/json"}
        return Outbound("POST", url, headers, orjson.dumps(request.doc))

    def adapter(self, target: Target, request: GeminiRequest, status: int, content_type: str) -> _GeminiPassThrough:
        return _GeminiPassThrough(target.model, request.stream and status < 400 and content_type == "text/event-stream")


_NATIVE = _GeminiNative()
_VIA = {
    kind: ViaAnthropic(
        kind,
        to_anthropic=lambda doc, model: gemini_request_to_anthropic(doc, model=model),
        stream=lambda model, request: AnthropicToGeminiStream(model=model),
        to_client=lambda doc, model: anthropic_response_to_gemini(doc, model=model),
        error=_google_error_from_anthropic,
    )
    for kind in ("anthropic", "bedrock", "vertex", "openai", "azure_openai", "openai_compatible")
}


def _module(kind: str) -> Any:
    return _NATIVE if kind == "gemini" else _VIA[kind]


def key_from_query(scope: Scope, headers: dict[bytes, bytes]) -> None:
    """Gemini clients may send the key as ``?key=``; treat it as the header."""
    if b"x-goog-api-key" in headers or b"x-api-key" in headers or b"authorization" in headers:
        return
    query = (scope.get("query_string") or b"").decode("latin-1")
    key = parse_qs(query).get("key")
    if key:
        headers[b"x-goog-api-key"] = key[0].encode("latin-1")


async def generate(
    gw: Gateway, scope: Scope, receive: Receive, send: Send, x: Exchange, headers: dict[bytes, bytes]
) -> None:
    key_from_query(scope, headers)
    x.key = gw.authenticate(headers)
    tail = scope["path"].split("/models/", 1)[-1]
    model, _, method = tail.partition(":")
    if method not in ("generateContent", "streamGenerateContent", "countTokens") or not model:
        raise GatewayError(404, f"Tollgate has no Gemini method '{method or tail}'.")
    checked(model)
    raw = await read_body(receive, gw.config.max_body_bytes, headers.get(b"content-length"), gw.config.body_read_timeout)
    body = decode_body(raw, headers.get(b"content-encoding"), gw.config.max_body_bytes)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, f"Invalid JSON payload received: {exc}.", retry=False) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("contents"), list):
        raise GatewayError(400, "* GenerateContentRequest.contents: contents is not specified", retry=False)
    x.model = model
    if not x.key.allows(model):
        raise GatewayError(403, f"Model '{model}' is not allowed for Tollgate key {x.key.prefix}…; allowed: {'; '.join(x.key.allowed_models)}.", retry=False)
    counting = method == "countTokens"
    x.free = counting
    x.stream = method == "streamGenerateContent"
    snapshot = gw.holder.current
    route = snapshot.routes.match(x.key, model)
    if route is not None:
        plan = gw.router.plan(snapshot, x.key, model, x.session_id, [])
    else:
        gemini = next((p for p in snapshot.providers.values() if p.kind == "gemini"), None)
        plan = Plan(None, [Target(gemini, model)] * MIN_ATTEMPTS if gemini else [], MIN_ATTEMPTS)
    if not plan.targets:
        raise GatewayError(503, f"No provider serves '{model}' in Tollgate. Ask your platform admin for a Gemini provider or a route.", retry=False)
    x.route_id = plan.route.id if plan.route else None
    x.provider = plan.targets[0].provider
    if counting:
        # Counted by a Gemini upstream as sent; anything else has no count in
        # Google's terms, and Tollgate does not guess one.
        target = next((t for t in plan.targets if t.provider.kind == "gemini"), None)
        if target is None:
            raise GatewayError(501, f"No Gemini provider serves '{model}', so Tollgate cannot count its tokens.", retry=False)
        count_plan = Plan(None, [target], 1)
        await forward(gw, receive, send, x, GeminiRequest(doc=doc, stream=False, endpoint="count_tokens"), count_plan, resolve=_module)
        return
    if x.key.governed:
        max_tokens = (doc.get("generationConfig") or {}).get("maxOutputTokens")
        await gw.admit(x, len(body), max_tokens, plan.targets)
    await forward(gw, receive, send, x, GeminiRequest(doc=doc, stream=x.stream), plan, resolve=_module)
