from __future__ import annotations

from celery import shared_task

from governance.alerts import alert_deliveries_due, alert_delivery_attempt, budget_alerts_check
from governance.counters import read_spent_for_persist
from governance.services import budget_spend_persist
from governance.snapshot import snapshot_publish


@shared_task(name="governance.tasks.snapshot_republish", ignore_result=True)
def snapshot_republish() -> int:
    return snapshot_publish()


@shared_task(name="governance.tasks.budget_spend_persist", ignore_result=True)
def persist_budget_spend() -> int:
    """Persist each budget's current-period spend: with a counter store, so a
    store that loses its counters is rebuilt from PostgreSQL; on the embedded
    default, so the API shows spend (the counters are inside the data plane)."""
    return budget_spend_persist(read_spent=read_spent_for_persist())


@shared_task(name="governance.tasks.budget_alerts", ignore_result=True)
def budget_alerts() -> int:
    """Fire the thresholds spend has reached; retry deliveries whose pause is over."""
    fired = budget_alerts_check()
    alert_deliveries_due()
    return len(fired)


@shared_task(name="governance.tasks.budget_alert_deliver", ignore_result=True)
def budget_alert_deliver(delivery_id: int) -> None:
    alert_delivery_attempt(delivery_id=delivery_id)
