"""Reads of the request log for people: filtered lists, their totals, one request's detail.

The console's explorer and ``GET /api/v1/requests/`` take the same filters
through ``RequestFilter`` and see the same rows: those of ``ReportScope``,
so a developer finds only their own requests. Names (team slug, username,
model) are resolved here, once per query, never per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet, Sum

from governance.models import ModelPrice, Organization, Provider, Team, VirtualKey
from ledger.aggregates import IS_ERROR, IS_REFUSAL, REFUSAL_STATUSES, cost_units, usd
from ledger.models import DailyUsage, RequestLog
from ledger.selectors import ReportScope

STATUSES = ("ok", "error", "refused")


@dataclass(frozen=True, slots=True)
class RequestFilter:
    organization: Organization | None = None
    team: str | None = None  # a team slug, within ``organization``
    user: str | None = None  # a username
    key: int | None = None
    model: str | None = None  # requested or served
    provider: str | None = None  # a provider name
    status: str | None = None  # "ok", "error", "refused" or a number
    session: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def request_log_rows(*, scope: ReportScope, flt: RequestFilter) -> QuerySet[RequestLog]:
    """The rows ``scope`` may read that match ``flt``, newest first (by id, the insert order)."""
    rows = RequestLog.objects.filter(scope.q())
    if flt.organization is not None:
        rows = rows.filter(organization_id=flt.organization.pk)
    if flt.team:
        teams = Team.objects.filter(slug=flt.team)
        if flt.organization is not None:
            teams = teams.filter(organization=flt.organization)
        rows = rows.filter(team_id__in=list(teams.values_list("pk", flat=True)))
    if flt.user:
        user_ids = list(
            get_user_model().objects.filter(username=flt.user).values_list("pk", flat=True)
        )
        rows = rows.filter(user_id__in=user_ids)
    if flt.key is not None:
        rows = rows.filter(key_id=flt.key)
    if flt.model:
        rows = rows.filter(Q(model_requested=flt.model) | Q(model_served=flt.model))
    if flt.provider:
        provider_ids = list(Provider.objects.filter(name=flt.provider).values_list("pk", flat=True))
        rows = rows.filter(provider_id__in=provider_ids)
    if flt.status == "ok":
        rows = rows.exclude(IS_ERROR)
    elif flt.status == "error":
        rows = rows.filter(IS_ERROR).exclude(IS_REFUSAL)
    elif flt.status == "refused":
        rows = rows.filter(IS_REFUSAL)
    elif flt.status:
        rows = rows.filter(status=int(flt.status))
    if flt.session:
        rows = rows.filter(session_id=flt.session)
    if flt.since is not None:
        rows = rows.filter(created_at__gte=flt.since)
    if flt.until is not None:
        rows = rows.filter(created_at__lt=flt.until)
    return rows.order_by("-id")


def request_log_page(rows: QuerySet[RequestLog], *, size: int) -> list[RequestLog]:
    """The newest ``size`` of ``rows``. Their ids are chosen first, in a subquery: the
    database reads the window through the (organization, time) index and sorts ids
    alone, rather than sorting whole rows, or walking ids down from the newest row
    through all of the history when few rows match."""
    return list(RequestLog.objects.filter(id__in=rows.values("id")[:size]).order_by("-id"))


def request_log_totals(rows: QuerySet[RequestLog]) -> dict[str, Any]:
    """Sums over a filtered set, cost exact to the log's precision on every backend."""
    totals = rows.order_by().aggregate(
        requests=Count("id"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cache_read_tokens=Sum("cache_read_tokens"),
        cache_write_tokens=Sum("cache_write_tokens"),
        cost_units=cost_units(),
        errors=Count("id", filter=IS_ERROR & ~IS_REFUSAL),
        refusals=Count("id", filter=IS_REFUSAL),
    )
    cost: Decimal = usd(totals.pop("cost_units"))
    return {k: v or 0 for k, v in totals.items()} | {"cost_usd": cost}


def request_log_labels(rows: list[RequestLog]) -> dict[str, dict[int, Any]]:
    """Names for the ids on a page of rows: one query per kind of id present."""

    def lookup(model: Any, ids: set[int | None], *fields: str) -> dict[int, Any]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        found = model.objects.filter(pk__in=wanted).values_list("pk", *fields)
        return {pk: rest[0] if len(rest) == 1 else tuple(rest) for pk, *rest in found}

    return {
        "organizations": lookup(Organization, {r.organization_id for r in rows}, "name"),
        "teams": lookup(Team, {r.team_id for r in rows}, "name"),
        "users": lookup(get_user_model(), {r.user_id for r in rows}, "username"),
        "keys": lookup(VirtualKey, {r.key_id for r in rows}, "name"),
        "providers": lookup(Provider, {r.provider_id for r in rows}, "name"),
    }


def request_outcome(row: RequestLog) -> str:
    if row.status in REFUSAL_STATUSES and row.provider_id is None:
        return "refused"
    if row.status >= 400 or row.error_type:
        return "error"
    return "ok"


def request_models() -> list[str]:
    """Models for a filter's choices: the priced ones and those the roll-up has seen
    (reading the roll-up, not a million log rows)."""
    seen = DailyUsage.objects.values_list("model", flat=True).distinct()
    return sorted({*ModelPrice.objects.values_list("model", flat=True), *seen} - {""})
