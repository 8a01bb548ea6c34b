from __future__ import annotations

from celery import shared_task

from governance.snapshot import snapshot_publish


@shared_task(name="governance.tasks.snapshot_republish", ignore_result=True)
def snapshot_republish() -> int:
    return snapshot_publish()
