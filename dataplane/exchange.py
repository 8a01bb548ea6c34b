"""One request's record as it crosses the gateway, and the usage event it becomes."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from dataplane.events import UsageEvent
from dataplane.limits import Plan
from dataplane.providers.base import ProviderConfig
from dataplane.snapshot import KeyEntry, Snapshot
from dataplane.usage import Usage

_ZERO = Decimal(0)


class Exchange:
    __slots__ = (
        "request_id",
        "started_wall",
        "started",
        "endpoint",
        "key",
        "model",
        "provider",
        "stream",
        "status",
        "usage",
        "upstream_started",
        "upstream_ended",
        "first_byte",
        "error_type",
        "error_message",
        "disconnected",
        "done",
        "session_id",
        "user_agent",
        "free",
        "plan",
        "cost",
        "tokens",
        "served_model",
        "attempts",
        "fallback",
        "route_id",
        "shape",
        "task",
        "revoked",
        "recorded",
    )

    def __init__(self, request_id: str, endpoint: str) -> None:
        self.request_id = request_id
        self.started_wall = time.time()
        self.started = time.perf_counter()
        self.endpoint = endpoint
        self.key: KeyEntry | None = None
        self.model = ""
        self.provider: ProviderConfig | None = None
        self.stream = False
        self.status = 0
        self.usage: Usage | None = None
        self.upstream_started = 0.0
        self.upstream_ended = 0.0
        self.first_byte = 0.0
        self.error_type = ""
        self.error_message = ""
        self.disconnected = False
        self.done = False
        self.session_id = ""
        self.user_agent = ""
        # count_tokens and model listings cost nothing at the provider.
        self.free = False
        self.plan: Plan | None = None
        # Set by event(): what settlement charges and adds to token windows.
        self.cost = _ZERO
        self.tokens = 0
        self.served_model = ""
        self.attempts = 1
        self.fallback = False
        self.route_id: int | None = None
        # The caller's API shape, which errors must speak: "anthropic" or "openai".
        self.shape = "anthropic"
        # The task serving the request, and whether its key was revoked while it streamed.
        self.task: Any = None
        self.revoked = False
        self.recorded = False  # its usage event has been emitted (Gateway.record)

    def fail(self, status: int, error_type: str, message: str) -> None:
        self.status = status
        self.error_type = error_type
        self.error_message = message[:2000]

    def event(self, snapshot: Snapshot) -> UsageEvent:
        ended = time.perf_counter()
        usage = self.usage
        key = self.key
        provider = self.provider
        served = self.served_model or (usage.model if usage and usage.model else "") or self.model
        cost = _ZERO
        unpriced = False
        long_context = False
        if usage is not None and not self.free:
            price = snapshot.price_for(served, provider.id if provider else None)
            prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
            if price is None:
                unpriced = bool(prompt or usage.output_tokens)
            elif prompt or usage.output_tokens or usage.web_search_requests:
                if price.long is not None and prompt > price.long_threshold:
                    price = price.long
                    long_context = True
                cost = usage.input_tokens * price.input + usage.output_tokens * price.output
                # Terms that are mostly zero are skipped: each Decimal product costs.
                written = usage.cache_write_tokens
                if written:
                    hour = usage.cache_write_1h_tokens
                    if hour:
                        cost += (written - hour) * price.cache_write + hour * price.cache_write_1h  # type: ignore[operator]
                    else:
                        cost += written * price.cache_write
                if usage.cache_read_tokens:
                    cost += usage.cache_read_tokens * price.cache_read
                if usage.web_search_requests:
                    cost += usage.web_search_requests * price.web_search
        self.cost = cost
        if usage is not None:
            self.tokens = usage.input_tokens + usage.cache_write_tokens + usage.output_tokens
        upstream = (self.upstream_ended or ended) - self.upstream_started if self.upstream_started else 0.0
        latency = ended - self.started
        return {
            "request_id": self.request_id,
            "ts": self.started_wall,
            "endpoint": self.endpoint,
            "key_id": key.id if key else None,
            "key_prefix": key.prefix if key else "",
            "user_id": key.user_id if key else None,
            "team_id": key.team_id if key else None,
            "organization_id": key.organization_id if key else None,
            "model_requested": self.model,
            "model_served": served,
            "provider_id": provider.id if provider else None,
            "provider_kind": provider.kind if provider else "",
            "route_id": self.route_id,
            "attempts": self.attempts,
            "fallback": self.fallback,
            "stream": self.stream,
            "status": self.status,
            "input_tokens": usage.input_tokens if usage else 0,
            "output_tokens": usage.output_tokens if usage else 0,
            "cache_read_tokens": usage.cache_read_tokens if usage else 0,
            "cache_write_tokens": usage.cache_write_tokens if usage else 0,
            "cache_write_1h_tokens": usage.cache_write_1h_tokens if usage else 0,
            "web_search_requests": usage.web_search_requests if usage else 0,
            "long_context": long_context,
            "cost_usd": str(cost),
            "unpriced": unpriced,
            "latency_ms": latency * 1000,
            "ttfb_ms": (self.first_byte - self.started) * 1000 if self.first_byte else None,
            "overhead_ms": max(latency - upstream, 0.0) * 1000,
            "error_type": self.error_type or (usage.error_type if usage else ""),
            "error_message": self.error_message or (usage.error_message if usage else ""),
            "client_disconnected": self.disconnected,
            "session_id": self.session_id,
            "agent_id": usage.agent_id if usage else "",
            "user_agent": self.user_agent,
        }
