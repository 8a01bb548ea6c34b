"""OpenAI Responses API ingress for Codex CLI: ``/openai/v1/responses`` (and
``/v1/responses``).

Claude (Anthropic, Bedrock, Vertex) serves it through translation
(dataplane/translation/responses.py), stream included; OpenAI-family
providers get the body as sent at ``{base}/responses``. The gateway keeps no
conversation state, so ``previous_response_id`` and its kin are refused with
a message that says to send the whole conversation (Codex does by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from dataplane.errors import GatewayError, anthropic_error_to_openai
from dataplane.exchange import Exchange
from dataplane.forward import forward
from dataplane.http import Receive, Scope, Send, decode_body, read_body
from dataplane.model_ids import checked, sole
from dataplane.openai_ingress import OPENAI_FAMILY, plan_named
from dataplane.providers.base import AnthropicRequest, Outbound, Target
from dataplane.reshape import ViaAnthropic
from dataplane.translation import (
    AnthropicToResponsesStream,
    anthropic_response_to_responses,
    responses_request_to_anthropic,
    responses_unsupported,
)
from dataplane.translation import Usage as Translated
from dataplane.usage import Usage

if TYPE_CHECKING:
    from dataplane.app import Gateway

@dataclass(slots=True)
class ResponsesRequest:
    doc: dict[str, Any]
    stream: bool
    endpoint: str = "responses"
    translated: AnthropicRequest | None = None


class _ResponsesPassThrough:
    """An OpenAI Responses answer relayed as is; usage from ``response.completed``."""

    __slots__ = ("usage", "content_type", "_pending")

    def __init__(self, model: str, stream: bool) -> None:
        self.usage = Usage(model=model)
        self.content_type = "text/event-stream" if stream else "application/json"
        self._pending = b""

    def _take(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
        translated = Translated.from_openai(
            {"prompt_tokens": usage.get("input_tokens", 0), "completion_tokens": usage.get("output_tokens", 0),
             "prompt_tokens_details": {"cached_tokens": cached}}
        )
        self.usage.input_tokens = translated.input_tokens
        self.usage.output_tokens = translated.output_tokens
        self.usage.cache_read_tokens = translated.cache_read_input_tokens

    def convert(self, status: int, body: bytes) -> bytes:
        if status < 400:
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                return body
            if isinstance(doc, dict):
                self._take(doc.get("usage"))
        else:
            self.usage.error_type = "api_error"
            self.usage.error_message = body[:2000].decode("utf-8", "replace")
        return body

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._pending = data
            return b""
        complete, self._pending = data[: end + 2], data[end + 2 :]
        if b"response.completed" in complete or b"response.incomplete" in complete:
            for event in complete.split(b"\n\n"):
                marker = event.find(b"data: ")
                if marker >= 0 and b'"usage"' in event:
                    try:
                        doc = orjson.loads(event[marker + 6 :])
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(doc, dict) and isinstance(doc.get("response"), dict):
                        self._take(doc["response"].get("usage"))
        return complete

    def close(self) -> bytes:
        tail, self._pending = self._pending, b""
        return tail


class _OpenAIResponses:
    async def build(self, target: Target, request: ResponsesRequest) -> Outbound:
        provider = target.provider
        if provider.kind == "azure_openai":
            version = provider.settings.get("api_version", "2025-04-01-preview")
            url = f"{provider.base_url}/openai/responses?api-version={version}"
            headers = {"api-key": provider.credential}
        else:
            url = f"{provider.base_url}/responses"
            headers = {"authorization": f"Bearer {provider.credential}"}
        headers["content-type"] = "application/json"
        return Outbound("POST", url, headers, orjson.dumps({**request.doc, "model": target.model}))

    def adapter(self, target: Target, request: ResponsesRequest, status: int, content_type: str) -> _ResponsesPassThrough:
        return _ResponsesPassThrough(target.model, request.stream and status < 400 and content_type == "text/event-stream")


_VIA = {
    kind: ViaAnthropic(
        kind,
        to_anthropic=lambda doc, model: responses_request_to_anthropic(doc, model=model),
        stream=lambda model, request: AnthropicToResponsesStream(model=model),
        to_client=lambda doc, model: anthropic_response_to_responses(doc, model=model),
        error=anthropic_error_to_openai,
    )
    for kind in ("anthropic", "bedrock", "vertex", "gemini")
}
_OPENAI = _OpenAIResponses()


def _module(kind: str) -> Any:
    return _OPENAI if kind in OPENAI_FAMILY else _VIA[kind]


async def responses(
    gw: Gateway, scope: Scope, receive: Receive, send: Send, x: Exchange, headers: dict[bytes, bytes]
) -> None:
    x.key = gw.authenticate(headers)
    raw = await read_body(receive, gw.config.max_body_bytes, headers.get(b"content-length"), gw.config.body_read_timeout)
    body = decode_body(raw, headers.get(b"content-encoding"), gw.config.max_body_bytes)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, f"The request body is not valid JSON: {exc}.", retry=False) from None
    if not isinstance(doc, dict):
        raise GatewayError(400, "The request body must be a JSON object.", retry=False)
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "you must provide a model parameter (e.g. 'anthropic/claude-sonnet-4-6').", retry=False)
    checked(model)
    sole(body, model)
    if "input" not in doc:
        raise GatewayError(400, "input: a string or a list of input items is required.", retry=False)
    x.model = model
    x.stream = doc.get("stream") is True
    plan = plan_named(gw, x, model, servable=OPENAI_FAMILY | _VIA.keys(), api="the Responses API")
    # Translated once per attempt in build(); here only the cheap check for
    # state the gateway does not keep.
    unsupported = responses_unsupported(doc)
    if unsupported and any(t.provider.kind in _VIA for t in plan.targets):
        raise GatewayError(400, unsupported, retry=False)
    x.route_id = plan.route.id if plan.route else None
    x.provider = plan.targets[0].provider
    if x.key.governed:
        await gw.admit(x, len(body), doc.get("max_output_tokens"), plan.targets)
    await forward(gw, receive, send, x, ResponsesRequest(doc=doc, stream=x.stream), plan, resolve=_module)
