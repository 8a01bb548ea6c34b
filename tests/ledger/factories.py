"""Request-log rows as the ledger writer leaves them, for roll-up and report tests."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from ledger.models import RequestLog

# Prices that do not sum neatly: fractions of a cent, the log's last place.
AWKWARD_COSTS = (
    Decimal("0.0000031"),
    Decimal("0.0123456789"),
    Decimal("1.2345678901"),
    Decimal("0.0000000001"),
    Decimal("0.3333333333"),
    Decimal("12.0000000007"),
    Decimal("0"),
)


def at(day: date, seconds: int = 0) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC) + timedelta(seconds=seconds)


def log_row(**values: Any) -> RequestLog:
    """An unsaved RequestLog row; defaults describe a priced, successful request."""
    fields: dict[str, Any] = {
        "request_id": uuid.uuid4().hex,
        "created_at": at(date(2026, 11, 2), 3600),
        "endpoint": "anthropic.messages",
        "model_requested": "claude-sonnet-4-5",
        "model_served": "claude-sonnet-4-5",
        "provider_kind": "anthropic",
        "status": 200,
        "input_tokens": 1000,
        "output_tokens": 200,
        "cache_read_tokens": 50,
        "cache_write_tokens": 10,
        "cost_usd": Decimal("0.0000031"),
    }
    fields.update(values)
    return RequestLog(**fields)


def log_rows(count: int, *, spread: list[dict[str, Any]], days: list[date]) -> list[RequestLog]:
    """``count`` rows cycling through identities in ``spread``, days, and awkward costs.

    Every identity gets rows on every day, some at 00:00:00 and 23:59:59.
    """
    rows = []
    seconds = (0, 1, 43_200, 86_399)
    for n in range(count):
        who = spread[n % len(spread)]
        day = days[(n // len(spread)) % len(days)]
        second = seconds[(n // (len(spread) * len(days))) % len(seconds)]
        values = {
            "created_at": at(day, second),
            "cost_usd": AWKWARD_COSTS[n % len(AWKWARD_COSTS)],
            "input_tokens": n,
            "output_tokens": 2 * n,
            "cache_read_tokens": 3 * n,
            "cache_write_tokens": n % 7,
        }
        rows.append(log_row(**{**values, **who}))
    RequestLog.objects.bulk_create(rows)
    return rows


def log_cost() -> Decimal:
    """The request log's total cost, summed in Python from the stored values."""
    return sum(RequestLog.objects.values_list("cost_usd", flat=True), Decimal(0))
