from __future__ import annotations

import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit import context


class RequestContextMiddleware:
    """Gives every control-plane request an id (echoed back) and remembers the client IP."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        ip = request.META.get("REMOTE_ADDR") or None
        token = context.current.set(context.RequestContext(request_id=request_id[:64], ip=ip))
        try:
            response = self.get_response(request)
        finally:
            context.current.reset(token)
        response["X-Request-Id"] = request_id
        return response
