"""What the roll-up and the reports share: UTC days and the sums, written once so both count alike."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    BigIntegerField,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, NullIf, Round, TruncDate

# Costs are summed as integers of 1e-10 USD, the log's precision. SQLite keeps
# decimals as binary floats and SUM()s them as floats, which drifts in the last
# places over many rows; an integer SUM is exact on every backend.
UNITS_PER_USD = 10**10


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants a day starts and ends (exclusive)."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def cost_units(field: str = "cost_usd", filter: Q | None = None) -> Sum:
    scaled = ExpressionWrapper(
        F(field) * Value(UNITS_PER_USD),
        output_field=DecimalField(max_digits=30, decimal_places=10),
    )
    return Sum(Cast(Round(scaled), BigIntegerField()), filter=filter)


def usd(units: Any) -> Decimal:
    """Integer units back to dollars, exactly."""
    return Decimal(int(units or 0)).scaleb(-10)


class UTCDay(TruncDate):
    """A timestamp's UTC day. SQLite keeps timestamps as UTC text, so there it is
    the built-in date() rather than Django's per-row Python function, which costs
    a second or so over a day of a busy log."""

    def __init__(self, expression: str) -> None:
        super().__init__(expression, tzinfo=UTC)

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, Any]:
        sql, params = compiler.compile(self.lhs)
        return f"date({sql})", params


def utc_day(field: str = "created_at") -> UTCDay:
    return UTCDay(field)


def served_model() -> Coalesce:
    return Coalesce(NullIf(F("model_served"), Value("")), F("model_requested"))


IS_ERROR = Q(status__gte=400) | ~Q(error_type="")
# Refused by the gateway itself (unknown key, budget, policy, rate limit)
# before any provider was asked: finance counts these apart from errors.
REFUSAL_STATUSES = (401, 402, 403, 429)
IS_REFUSAL = Q(status__in=REFUSAL_STATUSES, provider_id__isnull=True)

# Aggregates of RequestLog rows, named as DailyUsage's columns.
LOG_METRICS = {
    "requests": Count("id"),
    "input_tokens": Sum("input_tokens"),
    "output_tokens": Sum("output_tokens"),
    "cache_read_tokens": Sum("cache_read_tokens"),
    "cache_write_tokens": Sum("cache_write_tokens"),
    "cache_write_1h_tokens": Sum("cache_write_1h_tokens"),
    "web_search_requests": Sum("web_search_requests"),
    "cost_units": cost_units(),
    "unpriced_requests": Count("id", filter=Q(unpriced=True)),
    "errors": Count("id", filter=IS_ERROR),
    "refusals": Count("id", filter=IS_REFUSAL),
}

# A session's split between its main loop and the subagents it started.
BY_SUBAGENT = ~Q(agent_id="")
SESSION_METRICS = {
    "subagents": Count("agent_id", distinct=True, filter=BY_SUBAGENT),
    "subagent_requests": Count("id", filter=BY_SUBAGENT),
    "subagent_cost_units": cost_units(filter=BY_SUBAGENT),
}

# The same aggregates over DailyUsage rows.
ROLLUP_METRICS = {
    "requests": Sum("requests"),
    "input_tokens": Sum("input_tokens"),
    "output_tokens": Sum("output_tokens"),
    "cache_read_tokens": Sum("cache_read_tokens"),
    "cache_write_tokens": Sum("cache_write_tokens"),
    "cache_write_1h_tokens": Sum("cache_write_1h_tokens"),
    "web_search_requests": Sum("web_search_requests"),
    "cost_units": cost_units(),
    "unpriced_requests": Sum("unpriced_requests"),
    "errors": Sum("errors"),
    "refusals": Sum("refusals"),
}
