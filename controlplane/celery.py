"""The Celery app and the beat schedule; tasks stay thin and call services."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

from django.conf import settings  # noqa: E402

app = Celery("tollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["governance", "ledger", "audit"])

app.conf.beat_schedule = {
    # A safety net under the on-commit publish: a Redis restart or a lost
    # publish heals within a minute without anyone touching the configuration.
    "snapshot-republish": {"task": "governance.tasks.snapshot_republish", "schedule": 60.0},
    # Budget counters to PostgreSQL, one of the two sources a lost counter is
    # rebuilt from; on the embedded default, the API's view of spend.
    "budget-spend-persist": {
        "task": "governance.tasks.budget_spend_persist",
        "schedule": settings.BUDGET_SPEND_PERSIST_SECONDS,
    },
    # Budget warnings: thresholds reached fire once per period; failed deliveries retry.
    "budget-alerts": {"task": "governance.tasks.budget_alerts", "schedule": 15.0},
    # Recomputing today and yesterday lets rows the log writer delivered late land.
    "usage-rollup": {"task": "ledger.tasks.rollup_recent_days", "schedule": 300.0},
    # A signed head makes a rewrite of the whole audit table detectable.
    "audit-checkpoint": {"task": "audit.tasks.checkpoint", "schedule": settings.AUDIT_CHECKPOINT_SECONDS},
    "audit-retention": {"task": "audit.tasks.retention", "schedule": 86400.0},
    # Request-log rows into the audit chain, a Merkle root per batch of up to 1000.
    "audit-anchor-request-log": {"task": "audit.tasks.anchor_request_log", "schedule": 60.0},
    # SIEM exports: each sink from its cursor; a failing one waits out its backoff.
    "audit-deliver-sinks": {"task": "audit.tasks.deliver_sinks", "schedule": 10.0},
}
