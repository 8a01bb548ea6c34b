"""What finance, a viewer and an admin do in the browser (chromium), end to end."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from governance import services
from governance.models import Budget
from tests.controlplane.conftest import PASSWORD

BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.fixture
def _state_in_tmp(settings: Any) -> None:
    """Keep the session's snapshot and spool, where the gateway process reads."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_it_moves_the_team_bar_and_logs_a_gateway_request(
    console, gateway, world, publish, ledger
) -> None:
    # A browser test before this one may have flushed the shipped prices (transactional tests).
    services.price_set(
        actor=world.alice, model="claude-sonnet-4-6", input_per_mtok=Decimal("3"), output_per_mtok=Decimal("15")
    )
    budget = services.budget_set(
        actor=world.alice, level="team", organization=world.acme, team=world.payments,
        amount_usd=Decimal("0.01"), period="monthly",
    )  # fmt: skip
    publish()
    tab = console(world.alice)
    tab.go("/budgets/")
    row = tab.page.locator(f'tr[data-budget="{budget.pk}"]')
    assert row.locator(".spent-usd").inner_text() == "$0.00"
    answer = httpx.post(
        f"{gateway.url}/v1/messages", json=BODY, headers={"x-api-key": world.secret}, timeout=20
    )
    assert answer.status_code == 200, answer.text
    # By key: an earlier test's late usage events may still be in this session's stream.
    (logged,) = ledger(1, key_id=world.key.pk)
    # The bar refreshes itself (htmx, every 5 s): no reload.
    shown = f"${logged.cost_usd:.4f}"
    row.locator(".spent-usd", has_text=shown).wait_for(timeout=15_000)
    width = row.locator(".bar .spent").evaluate("el => parseFloat(el.style.width)")
    assert width == pytest.approx(float(logged.cost_usd / Decimal("0.01") * 100), abs=0.01)

    tab.go("/requests/")
    first = tab.page.locator("#requests tbody tr").first
    assert "charlie laptop" in first.inner_text() and "Payments" in first.inner_text()
    assert shown in first.inner_text()


def test_it_edits_a_budget(console, acme, bob) -> None:
    services.team_create(actor=None, organization=acme, name="Payments")
    budget = services.budget_set(
        actor=None,
        level="organization",
        organization=acme,
        amount_usd=Decimal("100"),
        period="monthly",
    )
    tab = console(bob)
    tab.go("/budgets/")
    row = tab.page.locator(f'tr[data-budget="{budget.pk}"]')
    row.locator("summary", has_text="Edit").click()
    row.locator("input[name=amount_usd]").fill("250")
    row.locator("button", has_text="Save").click()
    tab.page.locator(".message.success").wait_for()
    assert Budget.objects.get(pk=budget.pk).amount_usd == Decimal("250")
    assert "$250.00" in tab.page.locator(f'tr[data-budget="{budget.pk}"]').inner_text()


def test_it_downloads_a_cost_csv_equal_to_the_api_to_the_cent(
    console, client_for, acme, bob, charlie, dave
) -> None:
    from tests.controlplane.web.test_console_costs import _spend

    _, start, end = _spend(acme, bob, charlie)
    tab = console(dave)  # finance reads as a viewer
    tab.go(f"/costs/?org=acme&first=team&second=model&since={start}&until={end}")
    with tab.page.expect_download() as download:
        tab.page.click("#csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    *groups, total = rows
    api = (
        client_for(dave)
        .get(
            "/api/v1/reports/costs/",
            {"group_by": "team,model", "organization": "acme", "from": start, "to": end},
        )
        .json()
    )
    assert round(Decimal(total["cost"]), 2) == round(Decimal(api["totals"]["cost_usd"]), 2)
    by_api = {
        (r["team_name"] or "(no team)", r["model"]): round(Decimal(r["cost_usd"]), 2)
        for r in api["rows"]
    }
    assert {(r["team"], r["model"]): round(Decimal(r["cost"]), 2) for r in groups} == by_api
    assert (
        tab.page.locator("#total-cost").inner_text()
        == f"${Decimal(api['totals']['cost_usd']):,.2f}"
    )


def test_it_gives_a_viewer_no_write_controls_and_the_api_says_403(
    console, client_for, acme, charlie, dave
) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="charlie laptop", user=charlie)
    services.budget_set(
        actor=None, level="organization", organization=acme, amount_usd=Decimal("5"), period="daily"
    )
    tab = console(dave)
    for path in ("/keys/", "/budgets/", "/people/"):
        tab.go(path)
        main = tab.page.locator("main")
        assert main.locator("form[method=post]").count() == 0, path
        assert main.locator("[hx-post]").count() == 0, path
    assert client_for(dave).post(f"/api/v1/keys/{key.pk}/disable/").status_code == 403
    assert (
        client_for(dave)
        .post("/api/v1/organizations/acme/keys/", {"name": "x"}, format="json")
        .status_code
        == 403
    )


def test_it_signs_a_finance_viewer_in_through_the_form(console, dave) -> None:
    tab = console()
    tab.go("/costs/")
    tab.page.fill("#id_login", "dave")
    tab.page.fill("#id_password", PASSWORD)
    tab.page.click("main button[type=submit]")
    tab.page.wait_for_url("**/costs/")
    assert tab.page.locator("#report-form").count() == 1
