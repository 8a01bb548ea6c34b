from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from controlplane.celery import app
from ledger.models import DailyUsage, RequestLog, RollupState
from ledger.services import usage_rollup, usage_rollup_recent
from ledger.tasks import rollup_recent_days
from tests.ledger.factories import at, log_cost, log_row, log_rows

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 2)
SPREAD = [
    {"organization_id": 1, "team_id": 10, "user_id": 100, "key_id": 1000},
    {"organization_id": 1, "team_id": None, "user_id": 101, "key_id": 1001},
    {
        "organization_id": 2,
        "team_id": 20,
        "user_id": None,
        "key_id": 2000,
        "model_served": "claude-opus-4-1",
    },
    {
        "organization_id": None,
        "team_id": None,
        "user_id": None,
        "key_id": None,
        "status": 401,
        "cost_usd": 0,
    },
]


def rolled() -> list[dict]:
    return list(
        DailyUsage.objects.order_by(
            "day", "organization_id", "team_id", "user_id", "key_id", "model"
        ).values()
    )


def strip_ids(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "id"} for r in rows]


def test_it_rolls_a_day_up_to_the_log_exactly() -> None:
    log_rows(500, spread=SPREAD, days=[DAY, DAY + timedelta(days=1)])
    usage_rollup(day=DAY)

    day_log = RequestLog.objects.filter(
        created_at__gte=at(DAY), created_at__lt=at(DAY + timedelta(days=1))
    )
    cost = sum(day_log.values_list("cost_usd", flat=True), Decimal(0))
    sums = DailyUsage.objects.aggregate(
        requests=Sum("requests"), input=Sum("input_tokens"), cache_write=Sum("cache_write_tokens")
    )
    assert sums == {
        "requests": day_log.count(),
        "input": day_log.aggregate(s=Sum("input_tokens"))["s"],
        "cache_write": day_log.aggregate(s=Sum("cache_write_tokens"))["s"],
    }
    assert sum(DailyUsage.objects.values_list("cost_usd", flat=True), Decimal(0)) == cost
    assert set(DailyUsage.objects.values_list("day", flat=True)) == {DAY}
    # "None" is 0 in the roll-up, so the unique constraint holds without NULLs.
    refused = DailyUsage.objects.get(organization_id=0)
    assert (refused.team_id, refused.user_id, refused.key_id) == (0, 0, 0)
    assert refused.errors == refused.requests > 0
    assert RollupState.objects.get(day=DAY).rolled_at <= timezone.now()


def test_it_rolls_up_idempotently() -> None:
    log_rows(200, spread=SPREAD, days=[DAY])
    assert usage_rollup(day=DAY) == 4
    first = strip_ids(rolled())
    assert usage_rollup(day=DAY) == 4
    assert strip_ids(rolled()) == first


def test_it_counts_the_served_model_or_else_the_requested_one() -> None:
    RequestLog.objects.bulk_create(
        [
            log_row(model_requested="claude-sonnet-4-5", model_served="claude-sonnet-4-5-20250929"),
            log_row(
                model_requested="claude-sonnet-4-5",
                model_served="",
                status=502,
                error_type="upstream",
            ),
            log_row(model_requested="claude-haiku-4-5", model_served="", unpriced=True),
        ]
    )
    usage_rollup(day=DAY)
    by_model = {
        u.model: (u.requests, u.errors, u.unpriced_requests) for u in DailyUsage.objects.all()
    }
    assert by_model == {
        "claude-sonnet-4-5-20250929": (1, 0, 0),
        "claude-sonnet-4-5": (1, 1, 0),
        "claude-haiku-4-5": (1, 0, 1),
    }


def test_it_empties_a_day_whose_rows_are_gone() -> None:
    DailyUsage.objects.create(day=DAY, model="stale", requests=3)
    assert usage_rollup(day=DAY) == 0
    assert not DailyUsage.objects.exists()


def test_it_backfills_history_and_then_takes_late_rows() -> None:
    now = at(date(2026, 11, 24), 3600)
    old_days = [date(2026, 10, 30), date(2026, 11, 2)]
    log_rows(100, spread=SPREAD, days=old_days)

    # The first sweep reads the whole log: every day with rows, plus today and yesterday.
    days = usage_rollup_recent(now=now)
    assert days == [*old_days, date(2026, 11, 23), date(2026, 11, 24)]
    assert sum(DailyUsage.objects.values_list("cost_usd", flat=True), Decimal(0)) == log_cost()

    # The next sweep rescans from the mark before the last one, in case a
    # writer took its ids before that sweep but committed after it.
    assert usage_rollup_recent(now=now + timedelta(minutes=5)) == days

    # A row replayed late for a day long closed lands at the next sweep.
    log_row(created_at=at(DAY, 60), cost_usd=Decimal("0.0000031")).save()
    recent = [date(2026, 11, 23), date(2026, 11, 24)]
    assert usage_rollup_recent(now=now + timedelta(minutes=10)) == [DAY, *recent]
    assert sum(DailyUsage.objects.values_list("cost_usd", flat=True), Decimal(0)) == log_cost()
    assert usage_rollup_recent(now=now + timedelta(minutes=15)) == [DAY, *recent]
    assert usage_rollup_recent(now=now + timedelta(minutes=20)) == recent


def test_it_runs_the_sweep_from_beat() -> None:
    log_row(created_at=timezone.now()).save()
    assert rollup_recent_days() == 2
    assert DailyUsage.objects.get().requests == 1
    schedule = app.conf.beat_schedule["usage-rollup"]
    assert (schedule["task"], schedule["schedule"]) == ("ledger.tasks.rollup_recent_days", 300.0)
