"""Reads of the audit trail for the console's viewer and ``GET /api/v1/audit/``, one filter for both.

Audit rows name no organization (a sign-in, a provider, a price are
platform-wide), so the trail is for platform admins; the access check is
``audit_read_require``, called by both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from audit.models import AuditEvent


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None  # a username or label such as "anonymous" or "system"
    action: str | None = None  # "key.create", or a prefix ending in "." ("key.")
    target: str | None = None  # words of the target's label or its type ("governance.virtualkey")
    since: datetime | None = None
    until: datetime | None = None


def audit_read_require(*, user: Any) -> None:
    if not user.is_superuser:
        raise PermissionDenied("The audit trail is for platform admins.")


def audit_event_rows(*, flt: AuditFilter) -> QuerySet[AuditEvent]:
    rows = AuditEvent.objects.all()
    if flt.actor:
        rows = rows.filter(actor_label=flt.actor)
    if flt.action:
        rows = (
            rows.filter(action__startswith=flt.action)
            if flt.action.endswith(".")
            else rows.filter(action=flt.action)
        )
    if flt.target:
        rows = rows.filter(Q(target_label__icontains=flt.target) | Q(target_type=flt.target))
    if flt.since is not None:
        rows = rows.filter(created_at__gte=flt.since)
    if flt.until is not None:
        rows = rows.filter(created_at__lt=flt.until)
    return rows.order_by("-id")


def audit_actions() -> list[str]:
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())
