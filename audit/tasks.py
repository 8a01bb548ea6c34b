from __future__ import annotations

from celery import shared_task

from audit.services import audit_checkpoint, audit_retention


@shared_task(name="audit.tasks.checkpoint", ignore_result=True)
def checkpoint() -> int | None:
    event = audit_checkpoint()
    return event.seq if event is not None else None


@shared_task(name="audit.tasks.retention", ignore_result=True)
def retention() -> int | None:
    archive = audit_retention(actor="retention")
    return archive.last_seq if archive is not None else None
