from __future__ import annotations

from typing import Any

from django.db import models, transaction

from audit import context
from audit.models import AuditEvent


def audit_record(
    *,
    actor: Any,
    action: str,
    target: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit row. Call inside the transaction that makes the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the changing transaction")
    ctx = context.current.get()
    is_user = actor is not None and getattr(actor, "pk", None) is not None
    return AuditEvent.objects.create(
        actor=actor if is_user else None,
        actor_label=(actor.get_username() if is_user else str(actor or "system")),
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_label=str(target)[:300],
        before=before,
        after=after,
        request_id=ctx.request_id,
        ip=ctx.ip,
    )
