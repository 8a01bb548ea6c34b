"""The control plane's Prometheus metrics: what only the database knows.

The data-plane workers serve their own ``/metrics``; this one counts the
ledger's state (usage events set aside by the log writer) and the audit
trail's exports (the chain's head, each sink's lag and failures), a few
cheap queries per scrape.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from audit.sinks import metrics_text
from ledger.models import UsageDeadLetter


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    dead = UsageDeadLetter.objects.count()
    body = (
        "# HELP tollgate_usage_dead_letters Usage events the log writer could not store, kept aside for an admin.\n"
        "# TYPE tollgate_usage_dead_letters gauge\n"
        f"tollgate_usage_dead_letters {dead}\n"
    ) + metrics_text()
    return HttpResponse(body, content_type="text/plain; version=0.0.4")
