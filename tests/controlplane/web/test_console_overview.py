"""Overview and My usage: spend today, this month, the projection; charts' data; one's own chain."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from controlplane.web.overview import month_end_projection
from governance import services
from ledger.models import RequestLog
from tests.ledger.factories import log_row


def _browser(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def _spend(acme, bob, charlie):
    payments = services.team_create(actor=None, organization=acme, name="Payments")
    services.membership_set(
        actor=None, user=charlie, organization=acme, role="developer", team=payments
    )
    key, _ = services.key_create(
        actor=None, organization=acme, name="charlie laptop", user=charlie, team=payments
    )
    now = timezone.now()
    RequestLog.objects.bulk_create(
        [
            log_row(organization_id=acme.pk, team_id=payments.pk, user_id=charlie.pk, key_id=key.pk, key_prefix=key.prefix,
                    created_at=now - timedelta(minutes=5), cost_usd=Decimal("2.50"), session_id="sess-a"),
            log_row(organization_id=acme.pk, user_id=bob.pk, created_at=now - timedelta(minutes=4),
                    cost_usd=Decimal("1.25"), model_served="claude-opus-4-1"),
            log_row(organization_id=acme.pk, user_id=bob.pk, created_at=now - timedelta(minutes=3), status=402,
                    provider_id=None, cost_usd=Decimal(0)),
        ]
    )  # fmt: skip
    return payments, key


def test_it_projects_the_month_end_at_the_pace_so_far() -> None:
    # Ten of thirty days gone: a third of the month's spend.
    now = datetime(2026, 11, 11, tzinfo=UTC)
    assert month_end_projection(Decimal("100"), now) == Decimal("300")


def test_it_shows_todays_and_this_months_spend_with_chart_data(acme, bob, charlie) -> None:
    _spend(acme, bob, charlie)
    page = _browser(bob).get("/").content.decode()
    assert re.search(r'id="spend-today">\$3.75<', page)
    assert re.search(r'id="spend-month">\$3.75<', page)
    charts = json.loads(
        re.search(
            r'<script id="chart-data" type="application/json">(.*?)</script>', page, re.S
        ).group(1)
    )
    assert {s["label"] for s in charts["team"]["series"]} == {"Payments", "(no team)"}
    assert {s["label"] for s in charts["model"]["series"]} == {
        "claude-sonnet-4-5",
        "claude-opus-4-1",
    }
    assert sum(sum(s["values"]) for s in charts["team"]["series"]) == 3.75
    assert "errors 0 %" in page and "refused 33 %" in page
    assert "sess-a" in page and "charlie laptop" in page


def test_it_lists_budgets_above_three_quarters(acme, bob, charlie) -> None:
    payments, _ = _spend(acme, bob, charlie)
    services.budget_set(
        actor=None,
        level="team",
        organization=acme,
        team=payments,
        amount_usd=Decimal("3"),
        period="monthly",
    )
    services.budget_set(
        actor=None,
        level="organization",
        organization=acme,
        amount_usd=Decimal("100"),
        period="monthly",
    )
    page = _browser(bob).get("/").content.decode()
    hot = re.search(r'id="hot-budgets">(.*?)</section>', page, re.S).group(1)
    assert "Team Payments" in hot and "83 %" in hot and "Acme" not in hot


def test_it_shows_a_developer_only_their_own_usage(acme, bob, charlie) -> None:
    _spend(acme, bob, charlie)
    page = _browser(charlie).get("/").content.decode()
    assert re.search(r'id="spend-month">\$2.50<', page)
    assert "Your own usage in Acme" in page


def test_it_shows_my_keys_budgets_and_sessions(acme, bob, charlie) -> None:
    payments, key = _spend(acme, bob, charlie)
    other = services.team_create(actor=None, organization=acme, name="Other")
    services.budget_set(
        actor=None,
        level="team",
        organization=acme,
        team=payments,
        amount_usd=Decimal("10"),
        period="monthly",
    )
    services.budget_set(
        actor=None,
        level="team",
        organization=acme,
        team=other,
        amount_usd=Decimal("10"),
        period="monthly",
    )
    services.budget_set(
        actor=None,
        level="user",
        organization=acme,
        user=charlie,
        amount_usd=Decimal("5"),
        period="daily",
    )
    page = _browser(charlie).get("/me/").content.decode()
    budgets = re.search(r'id="my-budgets">(.*?)</table>', page, re.S).group(1)
    assert "Team Payments" in budgets and "Team Other" not in budgets and "charlie" in budgets
    assert "$2.50" in budgets  # the team's spend so far, and charlie's own
    assert "charlie laptop" in page and "sess-a" in page
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:8080/anthropic" in page


def test_it_draws_the_overview_in_constant_queries(acme, bob, charlie) -> None:
    _spend(acme, bob, charlie)
    browser = _browser(bob)
    with CaptureQueriesContext(connection) as queries:
        assert browser.get("/").status_code == 200
    assert len(queries) <= 40, len(queries)
