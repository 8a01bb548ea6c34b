"""``/healthz`` and ``/readyz`` for the control plane, answered before host checks.

Probes (Docker, kubelet, HAProxy) call the pod or container address, which is
not in TOLLGATE_ALLOWED_HOSTS and arrives over plain HTTP; answering here,
ahead of SecurityMiddleware and CommonMiddleware, keeps both checks strict for
everyone else.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse


class HealthMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return HttpResponse("ok\n", content_type="text/plain")
        if request.path == "/readyz":
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
            except Exception as exc:
                return HttpResponse(f"database unreachable: {type(exc).__name__}\n", status=503, content_type="text/plain")
            return HttpResponse("ready\n", content_type="text/plain")
        return self.get_response(request)
