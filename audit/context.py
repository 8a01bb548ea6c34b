"""Who is asking, for the audit record: set per request by the middleware."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str = ""
    ip: str | None = None


current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "tollgate_request_context", default=RequestContext()
)
