"""The monthly FOCUS 1.2 chargeback export, next to the cost report."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest

from governance import services
from ledger.models import RequestLog
from ledger.selectors import FOCUS_COLUMNS
from tests.ledger.factories import at, log_row

FOCUS = "/api/v1/reports/focus/"


@pytest.fixture
def november(acme, globex, bob, charlie, eve):
    payments = services.team_create(actor=None, organization=acme, name="Payments")
    services.membership_set(actor=None, user=charlie, organization=acme, role="developer", team=payments)
    laptop, _ = services.key_create(actor=None, organization=acme, name="charlie laptop", team=payments, user=charlie)
    ci, _ = services.key_create(actor=None, organization=acme, name="bob ci", user=bob)
    theirs, _ = services.key_create(actor=None, organization=globex, name="eve", user=eve)
    mine = {"organization_id": acme.pk, "team_id": payments.pk, "user_id": charlie.pk, "key_id": laptop.pk, "key_prefix": laptop.prefix}
    rows = [
        # Two requests of one group on Nov 2 (one at the last second of the day) and one on Nov 30.
        log_row(**mine, created_at=at(date(2026, 11, 2), 1), cost_usd=Decimal("0.0123456789"), cache_write_1h_tokens=7),
        log_row(**mine, created_at=at(date(2026, 11, 2), 86_399), cost_usd=Decimal("1.2345678901"), web_search_requests=2),
        log_row(**mine, created_at=at(date(2026, 11, 30), 86_399), cost_usd=Decimal("0.0000000001")),
        log_row(
            organization_id=acme.pk, team_id=None, user_id=bob.pk, key_id=ci.pk, key_prefix=ci.prefix,
            created_at=at(date(2026, 11, 2), 5), model_served="gpt-5", provider_kind="openai", cost_usd=Decimal("0.3333333333"),
        ),
        # Outside the month, and another organization's.
        log_row(**mine, created_at=at(date(2026, 10, 31), 86_399), cost_usd=Decimal("5")),
        log_row(**mine, created_at=at(date(2026, 12, 1), 0), cost_usd=Decimal("7")),
        log_row(organization_id=globex.pk, user_id=eve.pk, key_id=theirs.pk, created_at=at(date(2026, 11, 3)), cost_usd=Decimal("9")),
    ]
    RequestLog.objects.bulk_create(rows)
    return {"payments": payments, "laptop": laptop, "ci": ci}


def export(client, **params) -> list[dict[str, str]]:
    response = client.get(FOCUS, {"organization": "acme", "month": "2026-11", **params})
    assert response.status_code == 200, response.content
    assert response["Content-Disposition"] == 'attachment; filename="tollgate-focus-acme-2026-11.csv"'
    reader = csv.DictReader(io.StringIO(response.content.decode()))
    assert tuple(reader.fieldnames or ()) == FOCUS_COLUMNS
    return list(reader)


def test_it_exports_a_month_in_focus_columns(client_for, bob, november) -> None:
    rows = export(client_for(bob))
    assert len(rows) == 3
    assert sum(Decimal(r["BilledCost"]) for r in rows) == Decimal("1.5802469024")
    day = next(r for r in rows if r["ChargePeriodStart"] == "2026-11-02T00:00:00Z" and r["SubAccountId"] == "payments")
    assert day["BilledCost"] == day["EffectiveCost"] == day["ListCost"] == "1.2469135690"
    assert (day["ChargePeriodEnd"], day["BillingPeriodStart"], day["BillingPeriodEnd"]) == (
        "2026-11-03T00:00:00Z", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z",
    )
    assert (day["BillingAccountId"], day["BillingAccountName"], day["BillingCurrency"]) == ("acme", "Acme", "USD")
    assert (day["SubAccountName"], day["SubAccountType"]) == ("Payments", "Team")
    assert (day["ResourceId"], day["ResourceName"], day["ResourceType"]) == (november["laptop"].prefix, "charlie laptop", "Virtual key")
    assert (day["ServiceName"], day["ServiceCategory"], day["ProviderName"], day["PublisherName"]) == (
        "claude-sonnet-4-5", "AI and Machine Learning", "Anthropic", "Anthropic",
    )
    assert (day["ChargeCategory"], day["ChargeFrequency"], day["ConsumedUnit"]) == ("Usage", "Usage-Based", "Tokens")
    assert int(day["ConsumedQuantity"]) == 2 * (1000 + 200 + 50 + 10)
    assert (day["x_Requests"], day["x_CacheWrite1hTokens"], day["x_WebSearchRequests"], day["x_UserName"]) == ("2", "7", "2", "charlie")
    assert json.loads(day["Tags"]) == {
        "tollgate/key": november["laptop"].prefix, "tollgate/model": "claude-sonnet-4-5", "tollgate/team": "payments", "tollgate/user": "charlie",
    }
    ci = next(r for r in rows if r["ResourceId"] == november["ci"].prefix)
    assert (ci["SubAccountId"], ci["ProviderName"], ci["PublisherName"], ci["BilledCost"]) == ("", "OpenAI", "OpenAI", "0.3333333333")


def test_it_shows_a_developer_only_their_own_requests(client_for, charlie, november) -> None:
    rows = export(client_for(charlie))
    assert {r["x_UserName"] for r in rows} == {"charlie"} and len(rows) == 2


def test_it_keeps_other_organizations_out(client_for, eve, november) -> None:
    response = client_for(eve).get(FOCUS, {"organization": "acme", "month": "2026-11"})
    assert response.status_code == 400 and "organization" in response.json()


def test_it_wants_an_organization_and_a_real_month(client_for, bob) -> None:
    assert client_for(bob).get(FOCUS, {"month": "2026-11"}).status_code == 400
    assert client_for(bob).get(FOCUS, {"organization": "acme", "month": "2026-13"}).status_code == 400
