"""Spend reports: whole days from the roll-up, the rest straight from the request log.

A day is read from DailyUsage only once it is settled: rolled up at least
SETTLE_AFTER past its end, when the log writer has long caught up with it.
Today, yesterday until then, and any day never rolled up (no Celery beat on
the embedded default) are summed from RequestLog, so a report always covers
every row logged so far. Rows replayed even later (a writer down for hours)
reach the roll-up at the next sweep, within two beat intervals.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Max, Min, Q, QuerySet
from django.utils import timezone

from governance.models import Organization, Team, VirtualKey
from ledger.aggregates import (
    LOG_METRICS,
    ROLLUP_METRICS,
    SESSION_METRICS,
    cost_units,
    day_bounds,
    served_model,
    usd,
    utc_day,
)
from ledger.models import DailyUsage, RequestLog, RollupState

SETTLE_AFTER = timedelta(minutes=15)

GROUP_BY = ("organization", "team", "user", "key", "model", "day", "session")

# The database columns each grouping sums over.
_GROUP_FIELDS = {
    "organization": ("organization_id",),
    "team": ("organization_id", "team_id"),
    "user": ("organization_id", "user_id"),
    "key": ("organization_id", "key_id"),
    "model": ("model",),
    "day": ("day",),
    "session": ("session_id", "organization_id", "user_id", "key_id"),
}

# The columns a report row shows for each grouping, before the metrics.
GROUP_COLUMNS = {
    "organization": ("organization_id", "organization", "organization_name"),
    "team": ("organization_id", "organization", "team_id", "team", "team_name"),
    "user": ("organization_id", "organization", "user_id", "username"),
    "key": ("organization_id", "organization", "key_id", "key_prefix", "key_name"),
    "model": ("model",),
    "day": ("day",),
    "session": (
        "session_id",
        "organization_id",
        "organization",
        "user_id",
        "username",
        "key_id",
        "key_prefix",
        "first_seen",
        "last_seen",
        "subagents",
        "subagent_requests",
        "main_cost_usd",
        "subagent_cost_usd",
    ),
}

METRIC_COLUMNS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "web_search_requests",
    "cost_usd",
    "unpriced_requests",
    "errors",
    "refusals",
)
_COUNTS = tuple(c for c in METRIC_COLUMNS if c != "cost_usd")


@dataclass(frozen=True, slots=True)
class ReportScope:
    """Whose spend a reader may see.

    ``organization_ids`` None means every organization (a platform admin);
    in ``own_organization_ids`` only ``user_id``'s own requests count.
    """

    organization_ids: frozenset[int] | None
    own_organization_ids: frozenset[int] = frozenset()
    user_id: int | None = None

    def q(self) -> Q:
        if self.organization_ids is None:
            return Q()
        whole = Q(organization_id__in=self.organization_ids)
        if self.own_organization_ids and self.user_id is not None:
            return whole | Q(organization_id__in=self.own_organization_ids, user_id=self.user_id)
        return whole


@dataclass(slots=True)
class CostReport:
    group_by: str
    start: date
    end: date
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def dimensions(self) -> tuple[str, ...]:
        return tuple(self.group_by.split(","))


def report_dimensions(group_by: str | tuple[str, ...]) -> tuple[str, ...]:
    """'team,model' (or a tuple) → ('team', 'model'): one or two distinct groupings."""
    dims = (
        tuple(d.strip() for d in group_by.split(","))
        if isinstance(group_by, str)
        else tuple(group_by)
    )
    unknown = [d for d in dims if d not in GROUP_BY]
    if unknown:
        raise ValueError(f"unknown grouping {unknown[0]!r}")
    if not 1 <= len(dims) <= 2 or len(set(dims)) != len(dims):
        raise ValueError("group by one dimension or two different ones")
    return dims


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def cost_report(
    *, scope: ReportScope, group_by: str | tuple[str, ...], start: date, end: date
) -> CostReport:
    """Spend from ``start`` to ``end`` (inclusive UTC days) grouped by one dimension
    or two (``"team,model"``: a row per team and model)."""
    (report,) = cost_reports(scope=scope, group_bys=[group_by], start=start, end=end)
    return report


def cost_reports(
    *, scope: ReportScope, group_bys: Iterable[str | tuple[str, ...]], start: date, end: date
) -> list[CostReport]:
    """Several cost reports of one period, as ``cost_report`` gives each. The log's
    live days are read once for all of them, grouped by every column any of them
    needs (a day of log rows is the costly part; its groups are few)."""
    wanted = [report_dimensions(g) for g in group_bys]
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    # Sessions are not in the roll-up, so a session report reads only the log.
    by_day = [dims for dims in wanted if "session" not in dims]
    settled = _settled_days(days) if by_day else set()
    live = [d for d in days if d not in settled]
    shared: list[dict[str, Any]] = []
    if by_day and live:
        dims = _unique(d for ds in by_day for d in ds)
        keys = _unique(f for d in dims for f in _GROUP_FIELDS[d])
        shared = list(_log_groups(scope, keys, dims, live))
    reports = []
    for dims in wanted:
        keys = _unique(f for d in dims for f in _GROUP_FIELDS[d])
        merged: dict[tuple[Any, ...], dict[str, Any]] = {}
        if "session" in dims:
            _merge(merged, keys, _log_groups(scope, keys, dims, days))
        else:
            if settled:
                _merge(merged, keys, _rollup_groups(scope, keys, settled))
            _merge(merged, keys, shared)
        reports.append(_report(dims, keys, merged, start, end))
    return reports


def top_sessions(*, scope: ReportScope, day: date, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` costliest Claude Code sessions of ``day``, ranked as the day's
    session report ranks them. The database sorts the groups by cost; only those
    down to the last one's cost (ties included) are fetched and labelled."""
    keys = _GROUP_FIELDS["session"]
    since, until = day_bounds(day)
    groups = (
        RequestLog.objects.filter(
            scope.q(), ~Q(session_id=""), created_at__gte=since, created_at__lt=until
        )
        .values(*keys)
        .annotate(
            **LOG_METRICS,
            first_seen=Min("created_at"),
            last_seen=Max("created_at"),
            **SESSION_METRICS,
        )
        .order_by("-cost_units")
    )
    kept: list[dict[str, Any]] = []
    for g in groups.iterator(chunk_size=4 * limit):
        if len(kept) >= limit and g["cost_units"] < kept[limit - 1]["cost_units"]:
            break
        kept.append(g)
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    _merge(merged, keys, kept)
    return _report(("session",), keys, merged, day, day).rows[:limit]


def _report(
    dims: tuple[str, ...],
    keys: tuple[str, ...],
    merged: dict[tuple[Any, ...], dict[str, Any]],
    start: date,
    end: date,
) -> CostReport:
    rows = list(merged.values())
    columns = _unique(c for d in dims for c in GROUP_COLUMNS[d])
    _label(rows, columns)
    rows.sort(
        key=lambda r: (
            (r["day"], -r["cost_usd"], _sort_key(r, keys))
            if "day" in dims
            else (-r["cost_usd"], _sort_key(r, keys))
        )
    )
    totals = {c: sum(r[c] for r in rows) for c in _COUNTS}
    totals["cost_usd"] = sum((r["cost_usd"] for r in rows), usd(0))
    return CostReport(
        group_by=",".join(dims),
        start=start,
        end=end,
        columns=columns + METRIC_COLUMNS,
        rows=rows,
        totals=totals,
    )


def _settled_days(days: list[date]) -> set[date]:
    states = RollupState.objects.filter(day__gte=days[0], day__lte=days[-1]).values_list(
        "day", "rolled_at"
    )
    return {day for day, rolled_at in states if rolled_at >= day_bounds(day)[1] + SETTLE_AFTER}


def _rollup_groups(scope: ReportScope, keys: Iterable[str], days: set[date]) -> QuerySet[Any]:
    return (
        DailyUsage.objects.filter(scope.q(), day__in=sorted(days))
        .values(*keys)
        .annotate(**ROLLUP_METRICS)
        .order_by()
    )


def _log_groups(
    scope: ReportScope, keys: Iterable[str], dims: tuple[str, ...], days: list[date]
) -> QuerySet[Any]:
    when = Q()
    for first, last in _runs(days):
        when |= Q(created_at__gte=day_bounds(first)[0], created_at__lt=day_bounds(last)[1])
    logs = RequestLog.objects.filter(scope.q(), when)
    if "model" in dims:
        logs = logs.annotate(model=served_model())
    if "day" in dims:
        logs = logs.annotate(day=utc_day())
    extra: dict[str, Any] = {}
    if "session" in dims:
        extra = {"first_seen": Min("created_at"), "last_seen": Max("created_at"), **SESSION_METRICS}
    return logs.values(*keys).annotate(**LOG_METRICS, **extra).order_by()


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) runs, so the log is read with a few range scans."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


# --- spend since an instant, for budget periods ----------------------------------------

_CHAIN = ("organization_id", "team_id", "user_id", "key_id")


def spend_since(
    *, organization_ids: Iterable[int], starts: Iterable[datetime]
) -> dict[datetime, list[dict[str, Any]]]:
    """Spend per organization × team × user × key since each of ``starts`` (budget
    periods), exact to the log's precision: whole settled days from the roll-up, the
    rest (a period's first hours, today, days not settled yet) from the log. Three
    queries, whatever the number of starts: one sum per start in each."""
    org_ids = sorted(set(organization_ids))
    starts = sorted(set(starts))
    if not starts:
        return {}
    firsts = [_first_whole_day(s) for s in starts]
    today = timezone.now().astimezone(UTC).date()
    days = [min(firsts) + timedelta(days=n) for n in range((today - min(firsts)).days + 1)]
    settled = sorted(_settled_days(days)) if days else []
    names = [f"since_{n}" for n in range(len(starts))]
    groups: list[Any] = []
    if settled:
        groups.append(
            DailyUsage.objects.filter(organization_id__in=org_ids, day__in=settled)
            .values(*_CHAIN)
            .annotate(
                **{
                    name: cost_units(filter=Q(day__gte=first))
                    for name, first in zip(names, firsts, strict=True)
                }
            )
            .order_by()
        )
    spans = [
        _unsettled_spans(since, [d for d in settled if d >= first])
        for since, first in zip(starts, firsts, strict=True)
    ]
    sums_since = {
        name: cost_units(filter=_spans_q(s)) for name, s in zip(names, spans, strict=True)
    }
    # One SELECT per stretch of time, each a range scan of the (organization,
    # time) index, in one UNION ALL: an OR of ranges would read every row of
    # the organization on SQLite.
    parts = [
        RequestLog.objects.filter(_spans_q([span]), organization_id__in=org_ids)
        .values(*_CHAIN)
        .annotate(**sums_since)
        .order_by()
        for span in _disjoint([span for s in spans for span in s])
    ]
    groups.append(parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0])
    sums: dict[tuple[Any, ...], list[int]] = {}
    for group in groups:
        for g in group:
            # The roll-up stores 0 for "none", the log NULL.
            units = sums.setdefault(tuple(g[k] or None for k in _CHAIN), [0] * len(starts))
            for n, name in enumerate(names):
                units[n] += int(g[name] or 0)
    return {
        since: [
            dict(zip(_CHAIN, ident, strict=True), cost_usd=usd(units[n]))
            for ident, units in sums.items()
        ]
        for n, since in enumerate(starts)
    }


def _first_whole_day(since: datetime) -> date:
    first = since.astimezone(UTC).date()
    return first if day_bounds(first)[0] >= since else first + timedelta(days=1)


def _disjoint(
    spans: list[tuple[datetime, datetime | None]],
) -> list[tuple[datetime, datetime | None]]:
    """The same stretches of time, overlapping ones joined (an end of None is open)."""
    joined: list[tuple[datetime, datetime | None]] = []
    for start, end in sorted(spans, key=lambda s: s[0]):
        if joined and (joined[-1][1] is None or start <= joined[-1][1]):
            last_end = joined[-1][1]
            joined[-1] = (
                joined[-1][0],
                None if end is None or last_end is None else max(end, last_end),
            )
        else:
            joined.append((start, end))
    return joined


def _spans_q(spans: list[tuple[datetime, datetime | None]]) -> Q:
    return reduce(
        operator.or_,
        (
            Q(created_at__gte=start, created_at__lt=end) if end else Q(created_at__gte=start)
            for start, end in spans
        ),
    )


def _unsettled_spans(
    since: datetime, settled: list[date]
) -> list[tuple[datetime, datetime | None]]:
    """From ``since`` on, the stretches of time between the settled days; the last is open."""
    spans: list[tuple[datetime, datetime | None]] = []
    cursor = since
    for first, last in _runs(settled):
        start = day_bounds(first)[0]
        if cursor < start:
            spans.append((cursor, start))
        cursor = day_bounds(last)[1]
    spans.append((cursor, None))
    return spans


def _merge(
    merged: dict[tuple[Any, ...], dict[str, Any]],
    keys: Iterable[str],
    groups: Iterable[dict[str, Any]],
) -> None:
    keys = tuple(keys)
    for g in groups:
        # The roll-up stores 0 for "no team", the log NULL; no session is "".
        ident = {k: (g[k] or None) if k.endswith("_id") else g[k] for k in keys}
        row = merged.get(tuple(ident.values()))
        if row is None:
            row = merged[tuple(ident.values())] = {
                **ident,
                **{c: 0 for c in _COUNTS},
                "cost_usd": usd(0),
            }
        for c in _COUNTS:
            row[c] += g[c] or 0
        row["cost_usd"] += usd(g["cost_units"])
        if "first_seen" in g:
            row["first_seen"] = g["first_seen"]
            row["last_seen"] = g["last_seen"]
            row["subagents"] = g["subagents"]
            row["subagent_requests"] = g["subagent_requests"]
            row["subagent_cost_usd"] = usd(g["subagent_cost_units"])
            row["main_cost_usd"] = row["cost_usd"] - row["subagent_cost_usd"]


def _label(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """Add slugs, names and prefixes, one query per kind of id present."""
    if "organization" in columns:
        orgs = _lookup(Organization.objects.all(), rows, "organization_id", "slug", "name")
        for r in rows:
            r["organization"], r["organization_name"] = orgs.get(r["organization_id"], (None, None))
    if "team" in columns:
        teams = _lookup(Team.objects.all(), rows, "team_id", "slug", "name")
        for r in rows:
            r["team"], r["team_name"] = teams.get(r["team_id"], (None, None))
    if "username" in columns:
        users = _lookup(get_user_model().objects.all(), rows, "user_id", "username")
        for r in rows:
            r["username"] = users.get(r["user_id"], (None,))[0]
    if "key_prefix" in columns:
        keys = _lookup(VirtualKey.objects.all(), rows, "key_id", "prefix", "name")
        for r in rows:
            r["key_prefix"], r["key_name"] = keys.get(r["key_id"], (None, None))
    for r in rows:
        for c in columns:
            r.setdefault(c, None)


def _lookup(
    objects: QuerySet[Any], rows: list[dict[str, Any]], id_field: str, *fields: str
) -> dict[int, tuple[Any, ...]]:
    ids = {r[id_field] for r in rows if r[id_field] is not None}
    if not ids:
        return {}
    return {pk: tuple(rest) for pk, *rest in objects.filter(pk__in=ids).values_list("pk", *fields)}


def _sort_key(row: dict[str, Any], keys: Iterable[str]) -> tuple[Any, ...]:
    return tuple((row[k] is None, str(row[k])) for k in keys)


# --- FOCUS chargeback export -------------------------------------------------------
#
# FinOps Open Cost and Usage Specification 1.2 (https://focus.finops.org/focus-specification/v1-2/):
# one Usage row per UTC day × team × user × key × model × provider, read from the
# request log. Tollgate bills at the price list, so BilledCost, EffectiveCost,
# ListCost and ContractedCost are the same figure; the organization is the
# billing account, its team the sub-account, the virtual key the resource.
# Columns Tollgate has nothing for are present and empty, as the spec allows for
# nullable ones; Tollgate's own figures ride in x_ columns.

FOCUS_VERSION = "1.2"
FOCUS_COLUMNS = (
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingCurrency",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
    "x_Requests",
    "x_InputTokens",
    "x_OutputTokens",
    "x_CacheReadTokens",
    "x_CacheWriteTokens",
    "x_CacheWrite1hTokens",
    "x_WebSearchRequests",
    "x_UnpricedRequests",
    "x_UserName",
)

_PROVIDER_NAMES = {
    "anthropic": "Anthropic",
    "bedrock": "AWS",
    "vertex": "Google Cloud",
    "gemini": "Google",
    "openai": "OpenAI",
    "azure_openai": "Microsoft",
    "openai_compatible": "OpenAI-compatible",
}
_PUBLISHERS = (
    ("claude", "Anthropic"),
    ("gpt-", "OpenAI"),
    ("o3", "OpenAI"),
    ("o4", "OpenAI"),
    ("gemini", "Google"),
)


@dataclass(slots=True)
class FocusExport:
    organization: Organization
    month: date
    rows: list[dict[str, Any]]


def focus_export(*, scope: ReportScope, organization: Organization, month: date) -> FocusExport:
    """The month's spend of ``organization`` (as far as ``scope`` sees it) in FOCUS rows."""
    start = month.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    since, until = day_bounds(start)[0], day_bounds(end)[0]
    groups = (
        RequestLog.objects.filter(
            scope.q(), organization_id=organization.pk, created_at__gte=since, created_at__lt=until
        )
        .annotate(day=utc_day(), model=served_model())
        .values("day", "team_id", "user_id", "key_id", "model", "provider_kind")
        .annotate(**LOG_METRICS)
        .order_by("day", "team_id", "user_id", "key_id", "model", "provider_kind")
    )
    groups = list(groups)
    teams = _lookup(Team.objects.all(), groups, "team_id", "slug", "name")
    users = _lookup(get_user_model().objects.all(), groups, "user_id", "username")
    keys = _lookup(VirtualKey.objects.all(), groups, "key_id", "prefix", "name")
    billing = {
        "BillingAccountId": organization.slug,
        "BillingAccountName": organization.name,
        "BillingAccountType": "Organization",
        "BillingCurrency": "USD",
        "BillingPeriodStart": day_bounds(start)[0],
        "BillingPeriodEnd": day_bounds(end)[0],
    }
    rows = []
    for g in groups:
        cost = usd(g["cost_units"])
        team_slug, team_name = teams.get(g["team_id"], (None, None))
        (username,) = users.get(g["user_id"], (None,))
        prefix, key_name = keys.get(g["key_id"], (None, None))
        provider = _PROVIDER_NAMES.get(g["provider_kind"], g["provider_kind"] or None)
        model = g["model"] or ""
        publisher = next((name for head, name in _PUBLISHERS if model.startswith(head)), provider)
        tokens = sum(
            g[c] or 0
            for c in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
        )
        day_start, day_end = day_bounds(g["day"])
        tags = {
            k: v
            for k, v in (
                ("tollgate/team", team_slug),
                ("tollgate/user", username),
                ("tollgate/key", prefix),
                ("tollgate/model", model),
            )
            if v
        }
        rows.append(
            {
                **billing,
                "BilledCost": cost,
                "EffectiveCost": cost,
                "ListCost": cost,
                "ContractedCost": cost,
                "ChargeCategory": "Usage",
                "ChargeClass": None,
                "ChargeDescription": f"{model} through Tollgate: {g['requests']} requests, {tokens} tokens",
                "ChargeFrequency": "Usage-Based",
                "ChargePeriodStart": day_start,
                "ChargePeriodEnd": day_end,
                "ConsumedQuantity": tokens,
                "ConsumedUnit": "Tokens",
                "PricingCategory": "Standard",
                "PricingCurrency": "USD",
                "PricingQuantity": tokens,
                "PricingUnit": "Tokens",
                "InvoiceIssuerName": provider,
                "ProviderName": provider,
                "PublisherName": publisher,
                "ResourceId": prefix,
                "ResourceName": key_name,
                "ResourceType": "Virtual key" if prefix else None,
                "ServiceCategory": "AI and Machine Learning",
                "ServiceSubcategory": "Generative AI",
                "ServiceName": model or None,
                "SkuId": model or None,
                "SkuMeter": "Tokens",
                "SkuPriceId": f"{g['provider_kind']}:{model}" if model else None,
                "SubAccountId": team_slug,
                "SubAccountName": team_name,
                "SubAccountType": "Team" if team_slug else None,
                "Tags": tags,
                "x_Requests": g["requests"],
                "x_InputTokens": g["input_tokens"] or 0,
                "x_OutputTokens": g["output_tokens"] or 0,
                "x_CacheReadTokens": g["cache_read_tokens"] or 0,
                "x_CacheWriteTokens": g["cache_write_tokens"] or 0,
                "x_CacheWrite1hTokens": g["cache_write_1h_tokens"] or 0,
                "x_WebSearchRequests": g["web_search_requests"] or 0,
                "x_UnpricedRequests": g["unpriced_requests"],
                "x_UserName": username,
            }
        )
    return FocusExport(organization=organization, month=start, rows=rows)


# --- one session, split by who spent ---------------------------------------------------


def session_agents(*, scope: ReportScope, session_id: str) -> list[dict[str, Any]]:
    """A Claude Code session's spend, its main loop first (``agent_id`` ""), then
    each subagent it started, in the order they first spoke."""
    groups = (
        RequestLog.objects.filter(scope.q(), session_id=session_id)
        .values("agent_id")
        .annotate(**LOG_METRICS, first_seen=Min("created_at"), last_seen=Max("created_at"))
        .order_by()
    )
    rows = []
    for g in groups:
        models = sorted(
            m
            for m in RequestLog.objects.filter(
                scope.q(), session_id=session_id, agent_id=g["agent_id"]
            )
            .annotate(model=served_model())
            .values_list("model", flat=True)
            .distinct()
            .order_by()
            if m
        )
        row = {c: g[c] or 0 for c in _COUNTS}
        row.update(
            agent_id=g["agent_id"],
            role="subagent" if g["agent_id"] else "main",
            cost_usd=usd(g["cost_units"]),
            first_seen=g["first_seen"],
            last_seen=g["last_seen"],
            models=models,
        )
        rows.append(row)
    rows.sort(key=lambda r: (r["role"] != "main", r["first_seen"]))
    return rows
