"""Writes of derived ledger tables: the daily usage roll-up and the sweep that keeps it current.

RequestLog stays the source of truth; DailyUsage is rebuilt from it a whole
day at a time, so running a roll-up again, or late, only ever corrects it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ledger.aggregates import LOG_METRICS, day_bounds, served_model, usd, utc_day
from ledger.models import DailyUsage, RequestLog, RollupCursor, RollupState


@transaction.atomic
def usage_rollup(*, day: date) -> int:
    """Recompute DailyUsage for ``day`` from the request log; returns the rows written."""
    state, _ = RollupState.objects.get_or_create(day=day, defaults={"rolled_at": timezone.now()})
    # Two roll-ups of one day at once would both delete and then collide on
    # insert; the lock on the day's state row makes the second wait its turn.
    RollupState.objects.select_for_update().filter(pk=state.pk).get()
    start, end = day_bounds(day)
    groups = (
        RequestLog.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("organization_id", "team_id", "user_id", "key_id", model=served_model())
        .annotate(**LOG_METRICS)
        .order_by()
    )
    rows = [_daily_usage(day, g) for g in groups]
    DailyUsage.objects.filter(day=day).delete()
    DailyUsage.objects.bulk_create(rows, batch_size=500)
    RollupState.objects.filter(pk=state.pk).update(rolled_at=timezone.now())
    return len(rows)


def _daily_usage(day: date, group: dict[str, Any]) -> DailyUsage:
    return DailyUsage(
        day=day,
        organization_id=group["organization_id"] or 0,
        team_id=group["team_id"] or 0,
        user_id=group["user_id"] or 0,
        key_id=group["key_id"] or 0,
        model=group["model"] or "",
        requests=group["requests"],
        input_tokens=group["input_tokens"] or 0,
        output_tokens=group["output_tokens"] or 0,
        cache_read_tokens=group["cache_read_tokens"] or 0,
        cache_write_tokens=group["cache_write_tokens"] or 0,
        cache_write_1h_tokens=group["cache_write_1h_tokens"] or 0,
        web_search_requests=group["web_search_requests"] or 0,
        cost_usd=usd(group["cost_units"]),
        unpriced_requests=group["unpriced_requests"],
        errors=group["errors"],
        refusals=group["refusals"],
    )


def usage_rollup_recent(*, now: datetime | None = None) -> list[date]:
    """Recompute today, yesterday and every day that received rows since the last sweeps.

    The first sweep reads the whole log, which backfills every day ever logged.
    Returns the days recomputed.
    """
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    cursor, _ = RollupCursor.objects.get_or_create(pk=1)
    high = RequestLog.objects.aggregate(high=Max("id"))["high"] or 0
    late = (
        RequestLog.objects.filter(id__gt=cursor.rescan_from_id, id__lte=high)
        .annotate(day=utc_day())
        .values_list("day", flat=True)
        .distinct()
        .order_by()
    )
    days = sorted({today, today - timedelta(days=1), *late})
    # A transaction per day: on SQLite a roll-up holds the one write lock, and
    # the log writer must not wait behind a backfill of the whole history.
    for day in days:
        usage_rollup(day=day)
    RollupCursor.objects.filter(pk=cursor.pk).update(
        rescan_from_id=cursor.seen_id, seen_id=high, swept_at=now
    )
    return days
