"""OpenAI Chat Completions ingress: ``/v1/chat/completions`` (and under ``/openai``).

Models are named ``provider/model`` (``anthropic/claude-sonnet-4-6``,
``openai/gpt-5``, the provider as named in Tollgate), or by a name a route
matches. OpenAI-family providers get the body as sent; Anthropic-shaped ones
(Anthropic, Bedrock, Vertex) get it translated, and their answer, stream
included, translated back (dataplane/translation/). Errors speak OpenAI's
error JSON.
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
from dataplane.providers.base import AnthropicRequest, Target
from dataplane.providers.openai import OPENAI_NATIVE
from dataplane.reshape import ViaAnthropic
from dataplane.routing import MIN_ATTEMPTS, Plan
from dataplane.translation import (
    AnthropicToOpenAIStream,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)

if TYPE_CHECKING:
    from dataplane.app import Gateway

OPENAI_FAMILY = frozenset({"openai", "azure_openai", "openai_compatible"})


@dataclass(slots=True)
class OpenAIRequest:
    doc: dict[str, Any]
    headers: list[tuple[bytes, bytes]]
    stream: bool
    include_usage: bool
    endpoint: str = "chat_completions"
    # The Anthropic form of the request for the attempt being built, if any.
    translated: AnthropicRequest | None = None


_VIA = {
    kind: ViaAnthropic(
        kind,
        to_anthropic=lambda doc, model: openai_request_to_anthropic(doc, model=model),
        stream=lambda model, request: AnthropicToOpenAIStream(include_usage=request.include_usage, model=model),
        to_client=lambda doc, model: anthropic_response_to_openai(doc, model=model),
        error=anthropic_error_to_openai,
    )
    for kind in ("anthropic", "bedrock", "vertex", "gemini")
}


def plan_named(gw: Gateway, x: Exchange, model: str, *, servable: Any, api: str) -> Plan:
    """The plan for an OpenAI-shaped caller's model: ``provider/model`` names a
    provider outright; anything else goes through the routes."""
    assert x.key is not None
    snapshot = gw.holder.current
    prefix, _, bare = model.partition("/")
    provider = snapshot.providers_by_name.get(prefix) if bare else None
    if not x.key.allows(bare if provider else model):
        allowed = "; ".join(x.key.allowed_models)
        raise GatewayError(403, f"Model '{model}' is not allowed for Tollgate key {x.key.prefix}…; allowed: {allowed}.", retry=False)
    if provider is not None:
        plan = Plan(None, [Target(provider, bare)] * MIN_ATTEMPTS, MIN_ATTEMPTS)
    else:
        plan = gw.router.plan(snapshot, x.key, model, x.session_id, [])
    if not plan.targets:
        raise GatewayError(
            503, f"No provider serves '{model}'. Name one as 'provider/model', or ask your platform admin for a route.", retry=False
        )
    for target in plan.targets:
        if target.provider.kind not in servable:
            raise GatewayError(400, f"Provider '{target.provider.name}' cannot serve {api} yet.", retry=False)
    return plan


def _module(kind: str) -> Any:
    return OPENAI_NATIVE if kind in OPENAI_FAMILY else _VIA[kind]


async def chat_completions(
    gw: Gateway, scope: Scope, receive: Receive, send: Send, x: Exchange, headers: dict[bytes, bytes]
) -> None:
    x.key = gw.authenticate(headers)
    ctype = headers.get(b"content-type")
    if ctype is not None and not ctype.split(b";", 1)[0].strip().lower().endswith(b"json"):
        raise GatewayError(415, "Send the request as application/json.", retry=False)
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
    if not isinstance(doc.get("messages"), list) or not doc["messages"]:
        raise GatewayError(400, "messages: a non-empty list of messages is required.", retry=False)
    x.model = model
    x.stream = doc.get("stream") is True
    plan = plan_named(gw, x, model, servable=OPENAI_FAMILY | _VIA.keys(), api="Chat Completions")
    x.route_id = plan.route.id if plan.route else None
    x.provider = plan.targets[0].provider
    request = OpenAIRequest(
        doc=doc,
        headers=scope["headers"],
        stream=x.stream,
        include_usage=bool((doc.get("stream_options") or {}).get("include_usage")),
    )
    if x.key.governed:
        max_tokens = doc.get("max_completion_tokens") or doc.get("max_tokens")
        await gw.admit(x, len(body), max_tokens, plan.targets)
    await forward(gw, receive, send, x, request, plan, resolve=_module)


# Which provider kinds serve which model families, for listing ``provider/model`` names.
_FAMILIES = (
    (("claude-",), ("anthropic", "bedrock", "vertex")),
    (("gpt-", "o1", "o3", "o4"), ("openai", "azure_openai")),
    (("gemini-",), ("gemini", "vertex")),
)


def model_listing(snapshot: Any, key: Any) -> bytes:
    """OpenAI's model list: every priced model the key may use, named
    ``provider/model`` for each provider of a kind that serves its family."""
    data = []
    for model in sorted(snapshot.prices):
        if not key.allows(model):
            continue
        kinds = next((k for prefixes, k in _FAMILIES if model.startswith(prefixes)), ())
        for provider in snapshot.providers.values():
            # The OpenAI-compatible family (OpenRouter, vLLM…) may serve any model.
            if provider.kind in kinds or provider.kind == "openai_compatible":
                data.append({"id": f"{provider.name}/{model}", "object": "model", "created": 0, "owned_by": provider.name})
    return orjson.dumps({"object": "list", "data": data})


async def models(
    gw: Gateway, scope: Scope, receive: Receive, send: Send, x: Exchange, headers: dict[bytes, bytes]
) -> None:
    from dataplane.http import send_response

    x.key = gw.authenticate(headers)
    x.free = True
    x.status = 200
    x.done = True
    await send_response(send, 200, [(b"content-type", b"application/json")], model_listing(gw.holder.current, x.key))
