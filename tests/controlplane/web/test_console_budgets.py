"""Budgets and rate limits: usage as the data plane counts it, edits through the API's services."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from governance import services
from governance.models import Budget
from tests.conftest import REDIS

PAGE = "/budgets/"
BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}


def _browser(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def _spent(page: str, budget: Budget) -> str:
    row = re.search(rf'<tr data-budget="{budget.pk}">(.*?)</tr>', page, re.S).group(1)
    return re.search(r'<td class="num spent-usd">([^<]+)</td>', row).group(1)


@pytest.fixture
def _state_in_tmp(settings: Any) -> None:
    """Keep the session's snapshot and spool, where the gateway process reads (the
    control-plane default moves them into each test's own directory)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_it_shows_a_requests_cost_on_the_team_budget(gateway, world, publish, ledger) -> None:
    # A browser test before this one may have flushed the shipped prices (transactional tests).
    services.price_set(
        actor=world.alice, model="claude-sonnet-4-6", input_per_mtok=Decimal("3"), output_per_mtok=Decimal("15")
    )
    budget = services.budget_set(
        actor=world.alice,
        level="team",
        organization=world.acme,
        team=world.payments,
        amount_usd=Decimal("10"),
        period="monthly",
    )
    publish()
    browser = _browser(world.alice)
    assert _spent(browser.get(PAGE).content.decode(), budget) == "$0.00"
    response = httpx.post(
        f"{gateway.url}/v1/messages", json=BODY, headers={"x-api-key": world.secret}, timeout=20
    )
    assert response.status_code == 200, response.text
    (row,) = ledger(1)
    assert row.cost_usd > 0
    page = browser.get(PAGE, HTTP_HX_REQUEST="true").content.decode()
    shown = f"${row.cost_usd:.4f}" if row.cost_usd < 1 else f"${row.cost_usd:,.2f}"
    assert _spent(page, budget) == shown
    assert ("from the counter store" if REDIS else "from the request log") in page


def test_it_lets_an_admin_set_edit_and_remove_a_budget(acme, bob) -> None:
    services.team_create(actor=None, organization=acme, name="Payments")
    browser = _browser(bob)
    form = {"org": "acme", "target": "team:payments", "amount_usd": "250", "period": "monthly"}
    assert browser.post("/budgets/set/", form).status_code == 302
    budget = Budget.objects.get(team__slug="payments")
    assert budget.amount_usd == Decimal("250")
    assert browser.post("/budgets/set/", form | {"amount_usd": "300"}).status_code == 302
    budget.refresh_from_db()
    assert budget.amount_usd == Decimal("300") and Budget.objects.count() == 1
    page = browser.get(PAGE).content.decode()
    assert "Team Payments" in page and "$300.00" in page
    assert browser.post(f"/budgets/{budget.pk}/delete/").status_code == 302
    assert not Budget.objects.exists()
    assert [e.action for e in AuditEvent.objects.order_by("id")][-3:] == [
        "budget.set",
        "budget.set",
        "budget.delete",
    ]


def test_it_shows_a_viewer_budgets_without_controls(acme, dave) -> None:
    budget = services.budget_set(
        actor=None, level="organization", organization=acme, amount_usd=Decimal("5"), period="daily"
    )
    browser = _browser(dave)
    page = browser.get(PAGE).content.decode()
    assert "Acme" in page and "$5.00" in page
    assert "Set a budget" not in page and "Edit" not in page and "Remove" not in page
    form = {"org": "acme", "target": "organization", "amount_usd": "500", "period": "daily"}
    assert browser.post("/budgets/set/", form).status_code == 403
    assert browser.post(f"/budgets/{budget.pk}/delete/").status_code == 403
    budget.refresh_from_db()
    assert budget.amount_usd == Decimal("5")


def test_it_refuses_a_budget_for_a_key_outside_the_organization(acme, globex, bob) -> None:
    theirs, _ = services.key_create(actor=None, organization=globex, name="globex key")
    form = {"org": "acme", "target": f"key:{theirs.pk}", "amount_usd": "1", "period": "daily"}
    assert _browser(bob).post("/budgets/set/", form).status_code == 400
    assert not Budget.objects.exists()


def test_it_reads_budget_usage_in_constant_queries(acme, bob) -> None:
    browser = _browser(bob)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert browser.get(PAGE, HTTP_HX_REQUEST="true").status_code == 200
        return len(queries)

    services.budget_set(
        actor=None, level="organization", organization=acme, amount_usd=Decimal("5"), period="daily"
    )
    few = count()
    for i in range(6):
        team = services.team_create(actor=None, organization=acme, name=f"Team {i}")
        services.budget_set(
            actor=None,
            level="team",
            organization=acme,
            team=team,
            amount_usd=Decimal("5"),
            period="daily",
        )
    assert count() == few
