"""My usage: every signed-in engineer's own keys, spend against each budget on their chain,
Claude Code sessions, and how to connect Claude Code."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from controlplane.web.budgets import policy_label
from devicelogin.models import DeviceSignin
from governance import counters
from governance.models import Budget, Level, Membership, VirtualKey
from ledger.access import own_report_scope
from ledger.selectors import cost_report

SESSION_DAYS = 14


def _on_my_chain(budget: Budget, user: Any, teams: dict[int, int | None]) -> bool:
    if budget.level == Level.ORGANIZATION:
        return True
    if budget.level == Level.TEAM:
        return budget.team_id is not None and teams.get(budget.organization_id) == budget.team_id
    if budget.level == Level.USER:
        return budget.user_id == user.pk
    return budget.key is not None and budget.key.user_id == user.pk


@login_required
def my_usage(request: HttpRequest) -> HttpResponse:
    user = request.user
    memberships = list(
        Membership.objects.filter(user=user)
        .select_related("organization", "team")
        .order_by("organization__name")
    )
    teams = {m.organization_id: m.team_id for m in memberships}
    keys = list(
        VirtualKey.objects.filter(user=user)
        .select_related("organization", "team")
        .order_by("-created_at")
    )
    candidates = Budget.objects.filter(organization_id__in=teams).select_related(
        "organization", "team", "user", "key"
    )
    budgets = [b for b in candidates if _on_my_chain(b, user, teams)]
    today = timezone.now().date()
    mine = own_report_scope(user=user)
    month = cost_report(scope=mine, group_by="key", start=today.replace(day=1), end=today)
    spend = {r["key_id"]: r["cost_usd"] for r in month.rows}
    sessions = cost_report(
        scope=mine, group_by="session", start=today - timedelta(days=SESSION_DAYS - 1), end=today
    )
    context = {
        "title": "My usage",
        "memberships": memberships,
        "keys": [{"key": k, "spend": spend.get(k.pk, 0)} for k in keys],
        "month_total": month.totals["cost_usd"],
        "budgets": [
            {"usage": u, "label": policy_label(u.budget)}
            for u in counters.budget_usage(budgets=budgets)
        ],
        "sessions": [r for r in sessions.rows if r["session_id"]][:20],
        "session_days": SESSION_DAYS,
        "gateway_url": settings.GATEWAY_PUBLIC_URL.rstrip("/"),
        "devices": list(
            DeviceSignin.objects.filter(user=user, revoked_at=None).select_related("key").order_by("-created_at")
        ),
    }
    return render(request, "console/me.html", context)
