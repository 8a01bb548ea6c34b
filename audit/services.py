"""The only writers of the audit trail: events, signed checkpoints, retention."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.utils import timezone

from audit import canonical, context, guard, signing
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
def audit_retention(
    *, actor: Any, older_than: timedelta | None = None, location: str = "", manifest_sha256: str = ""
) -> AuditArchive | None:
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
    last_hash = AuditEvent.objects.filter(seq=last_seq).values_list("hash", flat=True).get()
    archive = AuditArchive.objects.create(
        first_seq=first,
        last_seq=last_seq,
        last_hash=last_hash,
        events=AuditEvent.objects.filter(seq__gte=first, seq__lte=last_seq).count(),
        location=location,
        manifest_sha256=manifest_sha256,
    )
    connection = transaction.get_connection()
    with guard.retention_window(connection):
        AuditEvent.objects.filter(seq__lte=last_seq).delete()
    actor_id, actor_label = _actor(actor)
    chain_append(
        actor_id=actor_id,
        actor_label=actor_label,
        action=RETENTION,
        target_type="audit.archive",
        target_id=str(archive.pk),
        target_label=str(archive),
        after={
            "first_seq": archive.first_seq,
            "last_seq": archive.last_seq,
            "last_hash": archive.last_hash,
            "events": archive.events,
            "older_than_days": older_than.total_seconds() / 86400,
            "location": location,
            "manifest_sha256": manifest_sha256,
        },
    )
    return archive
