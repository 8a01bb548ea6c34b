from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit import context

# What a tracing proxy or client sends as a request id (UUIDs, W3C/Datadog/AWS
# trace ids); anything else is client text that has no place in an audit row.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=/+-]{0,63}")


class RequestContextMiddleware:
    """Gives every control-plane request an id (echoed back) and remembers the client's address and user agent."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        sent = request.headers.get("x-request-id", "")
        request_id = sent if _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
        ip = request.META.get("REMOTE_ADDR") or None
        user_agent = request.headers.get("user-agent", "")[:300]
        token = context.current.set(context.RequestContext(request_id=request_id, ip=ip, user_agent=user_agent))
        try:
            response = self.get_response(request)
        finally:
            context.current.reset(token)
        response["X-Request-Id"] = request_id
        return response
