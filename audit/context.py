"""Who is asking, for the audit record: set per request by the middleware."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str = ""
    ip: str | None = None
    user_agent: str = ""


_NONE = RequestContext()
current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(  # noqa: B039 (frozen, immutable)
    "tollgate_request_context", default=_NONE
)
