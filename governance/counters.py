"""What budgets and rate limits have used right now, read where the data plane counts.

With a shared counter store (Redis) the figures are the live counters the
admission script checks: a budget's spend and its open reservations, a rate
window's count. The embedded default keeps its counters inside the one
data-plane process, out of the control plane's reach; there the figures come
from the request log, which the log writer fills within a second of each
request (reservations of requests still running are not visible then).
A budget whose counter the store does not hold yet (no request this period)
reads the floor the data plane would start it from (governance.snapshot).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from dataplane.limits import NANO, budget_key, period_bounds, policy_uid, window_key
from governance.models import Budget, BudgetSpend, Level, Metric, RateLimit
from ledger.models import RequestLog
from ledger.selectors import spend_since

COUNTER_STORE = "counter store"
REQUEST_LOG = "request log"


@dataclass(frozen=True, slots=True)
class BudgetUsage:
    budget: Budget
    period_start: datetime
    resets_at: datetime
    spent: Decimal
    reserved: Decimal
    source: str

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.budget.amount_usd - self.spent - self.reserved)

    @property
    def spent_percent(self) -> float:
        return _percent(self.spent, self.budget.amount_usd)

    @property
    def reserved_percent(self) -> float:
        return min(_percent(self.reserved, self.budget.amount_usd), 100 - self.spent_percent)


@dataclass(frozen=True, slots=True)
class RateLimitUsage:
    limit: RateLimit
    used: float
    source: str

    @property
    def percent(self) -> float:
        return _percent(Decimal(str(self.used)), Decimal(self.limit.limit))


def _percent(part: Decimal, whole: Decimal) -> float:
    if whole <= 0:
        return 100.0 if part > 0 else 0.0
    return min(100.0, float(part / whole * 100))


def _client() -> Any:
    import redis

    return redis.Redis.from_url(settings.COUNTERS_REDIS_URL, socket_timeout=2)


def _counter_key(budget: Budget, start: float) -> str:
    uid = policy_uid(budget.id, budget.created_at.timestamp())
    return budget_key(settings.REDIS_PREFIX, budget.organization_id, uid, start)


def budget_usage(*, budgets: list[Budget], now: datetime | None = None) -> list[BudgetUsage]:
    """Usage of each budget's current period: one counter-store round trip, and a
    few queries for those the store does not hold (one per distinct period start)."""
    now = now or timezone.now()
    bounds = [
        period_bounds(b.period, b.rolling, b.anchor.timestamp(), now.timestamp()) for b in budgets
    ]
    counted: list[tuple[int, int] | None] = [None] * len(budgets)
    if settings.COUNTERS_REDIS_URL and budgets:
        client = _client()
        try:
            pipe = client.pipeline(transaction=False)
            for budget, (start, _) in zip(budgets, bounds, strict=True):
                pipe.hmget(_counter_key(budget, start), "spent", "reserved")
            for i, (spent, reserved) in enumerate(pipe.execute()):
                if spent is not None or reserved is not None:
                    counted[i] = (int(spent or 0), int(reserved or 0))
        finally:
            client.close()
    missing = [i for i, c in enumerate(counted) if c is None]
    floors = _floors([budgets[i] for i in missing], [bounds[i][0] for i in missing])
    usages = []
    for i, budget in enumerate(budgets):
        start, end = bounds[i]
        if counted[i] is not None:
            spent_nano, reserved_nano = counted[i]
            spent, reserved, source = (
                Decimal(spent_nano) / NANO,
                Decimal(max(0, reserved_nano)) / NANO,
                COUNTER_STORE,
            )
        else:
            spent, reserved = floors[budget.pk], Decimal(0)
            source = COUNTER_STORE if settings.COUNTERS_REDIS_URL else REQUEST_LOG
        usages.append(
            BudgetUsage(
                budget=budget,
                period_start=datetime.fromtimestamp(start, tz=UTC),
                resets_at=datetime.fromtimestamp(end, tz=UTC),
                spent=spent,
                reserved=reserved,
                source=source,
            )
        )
    return usages


def _floors(budgets: list[Budget], starts: list[float]) -> dict[int, Decimal]:
    """As governance.snapshot.budget_floor, for many budgets in a few queries."""
    if not budgets:
        return {}
    by_start: dict[float, list[Budget]] = {}
    for budget, start in zip(budgets, starts, strict=True):
        by_start.setdefault(start, []).append(budget)
    floors: dict[int, Decimal] = {}
    persisted = {
        (row["budget_id"], row["period_start"]): row["spent_usd"]
        for row in BudgetSpend.objects.filter(budget__in=budgets).values(
            "budget_id", "period_start", "spent_usd"
        )
    }
    # Settled days from the roll-up, the rest from the log: a month's budget
    # never sums a month of log rows.
    spent = spend_since(
        organization_ids={b.organization_id for b in budgets},
        starts=[datetime.fromtimestamp(start, tz=UTC) for start in by_start],
    )
    for start, group in by_start.items():
        since = datetime.fromtimestamp(start, tz=UTC)
        rows = spent[since]
        for budget in group:
            logged = sum(
                (
                    r["cost_usd"]
                    for r in rows
                    if r["organization_id"] == budget.organization_id and _on_chain(budget, r)
                ),
                Decimal(0),
            )
            floors[budget.pk] = max(logged, persisted.get((budget.pk, since), Decimal(0)))
    return floors


def _on_chain(policy: Budget | RateLimit, row: dict[str, Any]) -> bool:
    if policy.level == Level.TEAM:
        return row["team_id"] == policy.team_id
    if policy.level == Level.USER:
        return row["user_id"] == policy.user_id
    if policy.level == Level.KEY:
        return row["key_id"] == policy.key_id
    return True


def rate_limit_usage(
    *, limits: list[RateLimit], now: datetime | None = None
) -> list[RateLimitUsage]:
    """Each window's weighted count as admission sees it (previous window × its
    remaining share + the current one), or the request log's count over the last window."""
    now = now or timezone.now()
    if settings.COUNTERS_REDIS_URL and limits:
        client = _client()
        try:
            pipe = client.pipeline(transaction=False)
            weights = []
            for rl in limits:
                index, offset = divmod(now.timestamp(), rl.window_seconds)
                uid = policy_uid(rl.id, rl.created_at.timestamp())
                pipe.get(window_key(settings.REDIS_PREFIX, rl.organization_id, uid, int(index)))
                pipe.get(window_key(settings.REDIS_PREFIX, rl.organization_id, uid, int(index) - 1))
                weights.append((rl.window_seconds - offset) / rl.window_seconds)
            raw = pipe.execute()
        finally:
            client.close()
        return [
            RateLimitUsage(
                limit=rl,
                used=float(raw[2 * i + 1] or 0) * weights[i] + float(raw[2 * i] or 0),
                source=COUNTER_STORE,
            )
            for i, rl in enumerate(limits)
        ]
    usages = []
    for rl in limits:
        rows = RequestLog.objects.filter(
            organization_id=rl.organization_id,
            created_at__gte=now - timedelta(seconds=rl.window_seconds),
        )
        if rl.level == Level.TEAM:
            rows = rows.filter(team_id=rl.team_id)
        elif rl.level == Level.USER:
            rows = rows.filter(user_id=rl.user_id)
        elif rl.level == Level.KEY:
            rows = rows.filter(key_id=rl.key_id)
        if rl.provider_id is not None:
            rows = rows.filter(provider_id=rl.provider_id)
        if rl.model_pattern:
            # A glob the database cannot match; a window holds a few minutes of rows at most.
            matching = [
                (i + o)
                for m, i, o in rows.values_list("model_requested", "input_tokens", "output_tokens")
                if fnmatch.fnmatchcase(m, rl.model_pattern)
            ]
            used = len(matching) if rl.metric == Metric.REQUESTS else sum(matching)
        elif rl.metric == Metric.REQUESTS:
            used = rows.aggregate(n=Count("id"))["n"]
        else:
            used = rows.aggregate(
                n=Coalesce(Sum("input_tokens"), 0) + Coalesce(Sum("output_tokens"), 0)
            )["n"]
        usages.append(RateLimitUsage(limit=rl, used=float(used or 0), source=REQUEST_LOG))
    return usages


def read_spent_for_persist() -> Any:
    """The ``read_spent`` that ``budget_spend_persist`` copies from: the live
    counter with a store; on the embedded default, what the request log and
    the last persisted copy say (the data plane's counter starts from that and
    adds each settled request, whose log row follows within seconds)."""
    from governance.snapshot import budget_floor

    if not settings.COUNTERS_REDIS_URL:
        return budget_floor

    def read(budget: Budget, start: float) -> Decimal | None:
        client = _client()
        try:
            raw = client.hget(_counter_key(budget, start), "spent")
        finally:
            client.close()
        return None if raw is None else Decimal(int(raw)) / NANO

    return read
