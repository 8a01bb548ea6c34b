"""What every provider module offers the router: build the upstream call for
one attempt, and adapt the provider's answer back into Anthropic's shape.

The router works in Anthropic Messages terms (Claude Code's shape). A module
per provider turns an ``AnthropicRequest`` into an ``Outbound`` HTTP call for a
``Target`` (a provider and the model id it knows), and returns an ``Adapter``
that converts the response: ``convert`` for a whole body, ``feed``/``close`` for
a stream, each yielding Anthropic bytes (JSON, or SSE events) and filling
``usage`` on the side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from dataplane.errors import GatewayError
from dataplane.usage import Usage


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """A provider as the snapshot carries it, credential already unsealed.

    ``settings`` holds what a kind needs beyond a URL and a secret: AWS region,
    GCP project and location, Azure api-version, beta flags Bedrock accepts.
    """

    id: int
    name: str
    kind: str
    base_url: str
    credential: str
    settings: dict[str, Any] = field(default_factory=dict)
    # "<id>.<created ms>": ids can be reused (SQLite); health and stickiness must not be.
    uid: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    provider: ProviderConfig
    model: str  # the id the provider knows, e.g. "anthropic.claude-opus-4-5-20251101-v1:0"


@dataclass(slots=True)
class AnthropicRequest:
    endpoint: str  # "messages" | "count_tokens"
    doc: dict[str, Any]  # the parsed body
    raw: bytes  # the body exactly as received (possibly gzip-encoded)
    content_encoding: bytes | None
    headers: list[tuple[bytes, bytes]]  # the client's, lower-case names
    query: bytes
    stream: bool

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    @property
    def betas(self) -> list[str]:
        raw = self.header(b"anthropic-beta")
        if not raw:
            return []
        return [b.strip() for b in raw.decode("latin-1").split(",") if b.strip()]


@dataclass(slots=True)
class Outbound:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


class Adapter(Protocol):
    usage: Usage
    # The content type of what the adapter yields ("text/event-stream" or
    # "application/json"), so the relay can set the client's header.
    content_type: str

    def convert(self, status: int, body: bytes) -> bytes:
        """A whole upstream body (success or error) as Anthropic JSON."""

    def feed(self, chunk: bytes) -> bytes:
        """Upstream stream bytes in, Anthropic SSE bytes out (possibly empty)."""

    def close(self) -> bytes:
        """The stream ended: whatever is still owed to the client."""


class ProviderModule(Protocol):
    async def build(self, target: Target, request: AnthropicRequest) -> Outbound: ...

    def adapter(self, target: Target, request: AnthropicRequest, status: int, content_type: str) -> Adapter: ...


AGENT_HEADER = b"x-claude-code-agent-id"


def attributed(adapter: Any, request: AnthropicRequest) -> Any:
    """``adapter``, its usage naming the Claude Code subagent that sent ``request``
    (its ``x-claude-code-agent-id``), so the request log can split a session
    into its main loop and its subagents."""
    for name, value in request.headers:
        if name == AGENT_HEADER:
            adapter.usage.agent_id = value.decode("latin-1")[:64]
            break
    return adapter


def count_not_supported(target: Target) -> GatewayError:
    """count_tokens where the upstream has no count: said, never invented."""
    return GatewayError(
        501,
        f"Provider '{target.provider.name}' ({target.provider.kind}) has no token counting for "
        f"'{target.model}', and Tollgate does not guess one.",
        error_type="not_supported_error",
        retry=False,
    )
