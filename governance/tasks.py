from __future__ import annotations

from decimal import Decimal
from typing import Any

from celery import shared_task
from django.conf import settings

from governance.services import budget_spend_persist
from governance.snapshot import snapshot_publish


@shared_task(name="governance.tasks.snapshot_republish", ignore_result=True)
def snapshot_republish() -> int:
    return snapshot_publish()


@shared_task(name="governance.tasks.budget_spend_persist", ignore_result=True)
def persist_budget_spend() -> int:
    """Persist the counters' spend, so a Redis that loses them is rebuilt from PostgreSQL."""
    if not settings.COUNTERS_REDIS_URL:
        return 0  # embedded: the counters live in the data plane; the request log is the record
    import redis

    from dataplane.limits import NANO, budget_key, policy_uid

    client = redis.Redis.from_url(settings.COUNTERS_REDIS_URL, socket_timeout=5)

    def read_spent(budget: Any, start: float) -> Decimal | None:
        raw = client.hget(budget_key(settings.REDIS_PREFIX, budget.organization_id, policy_uid(budget.id, budget.created_at.timestamp()), start), "spent")
        return None if raw is None else Decimal(int(raw)) / NANO

    try:
        return budget_spend_persist(read_spent=read_spent)
    finally:
        client.close()
