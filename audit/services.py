"""The only writers of the audit trail: events, signed checkpoints, retention."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.utils import timezone

from audit import canonical, context, signing
from audit.archive import range_remove
from audit.chain import chain_append, chain_head, chain_lock
from audit.models import AuditArchive, AuditEvent

CHECKPOINT = "audit.checkpoint"
RETENTION = "audit.retention"


def _actor(actor: Any) -> tuple[int | None, str]:
    if actor is not None and getattr(actor, "pk", None) is not None:
        return actor.pk, actor.get_username()
    return None, str(actor or "system")


def audit_record(
    *,
    actor: Any,
    action: str,
    target: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain. Call inside the transaction that makes the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the changing transaction")
    ctx = context.current.get()
    actor_id, actor_label = _actor(actor)
    return chain_append(
        actor_id=actor_id,
        actor_label=actor_label,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_label=str(target),
        before=before,
        after=after,
        request_id=ctx.request_id,
        ip=ctx.ip,
        user_agent=ctx.user_agent,
    )


@transaction.atomic
def audit_note(
    *,
    actor: Any,
    action: str,
    target_type: str,
    target_id: str,
    target_label: str = "",
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """An act that changes nothing but must be on record (an export, a use of a
    credential), in a transaction of its own, with the request's context."""
    ctx = context.current.get()
    actor_id, actor_label = _actor(actor)
    return chain_append(
        actor_id=actor_id,
        actor_label=actor_label,
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=target_label,
        after=after,
        request_id=ctx.request_id,
        ip=ctx.ip,
        user_agent=ctx.user_agent,
    )


@transaction.atomic
def audit_checkpoint() -> AuditEvent | None:
    """Sign the chain's head and append the signature as an event of its own,
    so checkpoints travel with the events to every export. None when nothing
    happened since the last checkpoint."""
    key = signing.signing_key()
    if key is None:
        raise ImproperlyConfigured("TOLLGATE_AUDIT_SIGNING_KEY is not set: checkpoints cannot be signed")
    chain_lock()
    head = chain_head()
    last = AuditEvent.objects.filter(seq=head.seq).values_list("action", flat=True).first()
    if head.seq == 0 or last == CHECKPOINT:
        return None
    signed_at = canonical.time_text(timezone.now())
    message = canonical.checkpoint_message(seq=head.seq, head_hash=head.hash, signed_at=signed_at)
    public = signing.public_key_text(key.public_key())
    return chain_append(
        actor_id=None,
        actor_label="system",
        action=CHECKPOINT,
        target_type="audit.chain",
        target_id=str(head.seq),
        target_label=f"head at seq {head.seq}",
        after={
            "seq": head.seq,
            "hash": head.hash,
            "signed_at": signed_at,
            "public_key": public,
            "key_id": canonical.key_id(public),
            "signature": base64.b64encode(key.sign(message)).decode(),
        },
    )


@transaction.atomic
def audit_retention(*, actor: Any, older_than: timedelta | None = None) -> AuditArchive | None:
    """Remove events older than the retention period, oldest first, as one range.

    The range is recorded (AuditArchive: first and last seq, the last hash)
    before the rows go, so the chain still verifies from there; the head is
    never removed, and the removal is itself an event on the chain.
    """
    older_than = older_than if older_than is not None else timedelta(days=settings.AUDIT_RETENTION_DAYS)
    chain_lock()
    head = chain_head()
    cutoff = timezone.now() - older_than
    # A prefix of the chain: everything before the first event younger than the cutoff.
    first_kept = AuditEvent.objects.filter(created_at__gte=cutoff).order_by("seq").values_list("seq", flat=True).first()
    last_seq = min(first_kept - 1 if first_kept is not None else head.seq, head.seq - 1)
    first = AuditEvent.objects.order_by("seq").values_list("seq", flat=True).first()
    if first is None or last_seq < first:
        return None
    return range_remove(
        actor=actor,
        action=RETENTION,
        first_seq=first,
        last_seq=last_seq,
        extra={"older_than_days": older_than.total_seconds() / 86400},
    )
