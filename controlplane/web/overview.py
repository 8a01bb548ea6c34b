"""Overview: spend today, this month and the month-end projection, spend over time by team
and by model, the top spenders, error and refusal rates, budgets past 75 %, requests per minute.

Every figure is the cost report's or the request log's over the reader's
ReportScope, so a developer's overview is their own usage.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from controlplane.web.budgets import policy_label
from controlplane.web.costs import _label
from controlplane.web.scope import page_scope
from governance import counters, selectors
from ledger.access import report_scope
from ledger.request_log import RequestFilter, request_log_rows, request_log_totals
from ledger.selectors import cost_reports, top_sessions

TOP = 5
SERIES = 6  # the biggest teams or models get their own line; the rest are summed as "others"
WARN_PERCENT = 75


def month_end_projection(month_to_date: Decimal, now: datetime) -> Decimal:
    """This month's spend if the rest of it runs at the pace so far."""
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = calendar.monthrange(now.year, now.month)[1]
    elapsed = (now - start).total_seconds()
    if elapsed <= 0:
        return month_to_date
    return month_to_date * Decimal(days * 86400) / Decimal(elapsed)


def _chart(report: Any, dim: str, days: list[Any]) -> dict[str, Any]:
    """Daily spend per label for uPlot: x as epoch seconds, one series per label."""
    per: dict[str, dict[Any, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in report.rows:
        label = _label(row, dim)
        per[label][row["day"]] += row["cost_usd"]
        totals[label] += row["cost_usd"]
    ranked = sorted(totals, key=lambda k: -totals[k])
    shown, rest = ranked[:SERIES], ranked[SERIES:]
    series = [{"label": label, "values": [float(per[label][d]) for d in days]} for label in shown]
    if rest:
        series.append(
            {"label": "others", "values": [float(sum(per[r][d] for r in rest)) for d in days]}
        )
    x = [datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() for d in days]
    return {"x": x, "series": series}


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    scope = page_scope(request)
    context: dict[str, Any] = {"title": "Overview", **scope.context()}
    if scope.access is None:
        return render(request, "console/overview.html", context)
    org = scope.organization
    reader = report_scope(user=request.user, organization=org.slug)
    now = timezone.now()
    today = now.date()
    first = today.replace(day=1)
    days = [first + timedelta(days=n) for n in range((today - first).days + 1)]

    # One read of today's log rows for all four; settled days from the roll-up.
    by_team, by_model, by_user, by_key = cost_reports(
        scope=reader, group_bys=["day,team", "day,model", "user", "key"], start=first, end=today
    )
    month = by_team.totals["cost_usd"]
    spent_today = sum((r["cost_usd"] for r in by_team.rows if r["day"] == today), Decimal(0))
    top_users = by_user.rows[:TOP]
    top_keys = by_key.rows[:TOP]
    # Sessions are not rolled up: today's, read from the log.
    sessions = top_sessions(scope=reader, day=today, limit=TOP)

    hour = request_log_totals(
        request_log_rows(
            scope=reader, flt=RequestFilter(organization=org, since=now - timedelta(hours=1))
        )
    )
    requests = hour["requests"]
    owner = None if scope.access.sees_every_key else request.user
    budgets = list(selectors.budget_list(organization=org, owner=owner))
    hot = [
        {
            "usage": u,
            "label": policy_label(u.budget),
            "percent": u.spent_percent + u.reserved_percent,
        }
        for u in counters.budget_usage(budgets=budgets)
        if u.spent_percent + u.reserved_percent >= WARN_PERCENT
    ]
    context |= {
        "today": spent_today,
        "month": month,
        "projection": month_end_projection(month, now),
        "hour": hour,
        "per_minute": requests / 60,
        "error_rate": (hour["errors"] / requests * 100) if requests else None,
        "refusal_rate": (hour["refusals"] / requests * 100) if requests else None,
        "charts": {"team": _chart(by_team, "team", days), "model": _chart(by_model, "model", days)},
        "top_users": [
            {"label": _label(r, "user"), "cost": r["cost_usd"], "requests": r["requests"]}
            for r in top_users
        ],
        "top_keys": [
            {"label": _label(r, "key"), "cost": r["cost_usd"], "requests": r["requests"]}
            for r in top_keys
        ],
        "top_sessions": [
            {
                "label": r["session_id"],
                "who": r.get("username") or "—",
                "cost": r["cost_usd"],
                "requests": r["requests"],
                "last": r["last_seen"],
            }
            for r in sessions
        ],
        "hot_budgets": sorted(hot, key=lambda h: -h["percent"]),
        "own_only": not scope.access.sees_every_key,
    }
    return render(request, "console/overview.html", context)
