from __future__ import annotations

from celery import shared_task

from ledger.services import usage_rollup_recent


@shared_task(name="ledger.tasks.rollup_recent_days", ignore_result=True)
def rollup_recent_days() -> int:
    return len(usage_rollup_recent())
