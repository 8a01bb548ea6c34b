from __future__ import annotations

from celery import shared_task

from audit.anchor import request_log_anchor_all
from audit.archive import archive_store, audit_archive_all, audit_archive_expire
from audit.models import AuditArchive
from audit.services import audit_checkpoint, audit_retention
from audit.sinks import sinks_deliver_all


@shared_task(name="audit.tasks.checkpoint", ignore_result=True)
def checkpoint() -> int | None:
    event = audit_checkpoint()
    return event.seq if event is not None else None


@shared_task(name="audit.tasks.retention", ignore_result=True)
def retention() -> int | None:
    """With a bucket: move events past the archive age there, and expire parts past
    retention. Without one: remove events past retention from the database."""
    if archive_store() is not None:
        audit_archive_all()
        audit_archive_expire()
    else:
        audit_retention(actor="retention")
    return AuditArchive.objects.order_by("-last_seq").values_list("last_seq", flat=True).first()


@shared_task(name="audit.tasks.anchor_request_log", ignore_result=True)
def anchor_request_log() -> int:
    return request_log_anchor_all()


@shared_task(name="audit.tasks.deliver_sinks", ignore_result=True)
def deliver_sinks() -> int:
    return sinks_deliver_all()
