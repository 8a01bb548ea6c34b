"""Cost reports for finance: team × model for last month, the CSV equal to the API to the cent."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance import services
from ledger.models import RequestLog
from ledger.services import usage_rollup
from tests.ledger.factories import AWKWARD_COSTS, at, log_row


def _browser(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def _last_month():
    first_this = timezone.now().date().replace(day=1)
    end = first_this - timedelta(days=1)
    return end.replace(day=1), end


def _spend(acme, bob, charlie):
    payments = services.team_create(actor=None, organization=acme, name="Payments")
    start, end = _last_month()
    rows = []
    for n in range(90):
        day = start + timedelta(days=n % ((end - start).days + 1))
        rows.append(
            log_row(
                organization_id=acme.pk,
                team_id=payments.pk if n % 3 else None,
                user_id=charlie.pk if n % 2 else bob.pk,
                model_served=("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5")[n % 3],
                cost_usd=AWKWARD_COSTS[n % len(AWKWARD_COSTS)],
                created_at=at(day, 3600 + n),
                status=402 if n % 10 == 0 else 200,
                provider_id=None,
            )
        )
    # This month's spend is not last month's.
    rows.append(log_row(organization_id=acme.pk, cost_usd=Decimal("99"), created_at=timezone.now()))
    RequestLog.objects.bulk_create(rows)
    for n in range(0, (end - start).days + 1, 2):
        usage_rollup(
            day=start + timedelta(days=n)
        )  # half the days from the roll-up, half from the log
    return payments, start, end


def _csv(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_it_gives_finance_a_team_by_model_csv_equal_to_the_api(
    client_for, acme, bob, charlie, dave
) -> None:
    payments, start, end = _spend(acme, bob, charlie)
    query = {"org": "acme", "first": "team", "second": "model", "since": start, "until": end}
    response = _browser(dave).get("/costs/export.csv", query)
    assert response.status_code == 200
    assert f"tollgate-costs-acme-team-model-{start}-{end}.csv" in response["Content-Disposition"]
    rows = _csv(response)
    *groups, total = rows
    assert list(rows[0]) == [
        "period_from", "period_to", "team", "model", "requests", "input_tokens", "output_tokens",
        "cache_read_tokens", "cache_write_tokens", "errors", "refusals", "currency", "cost",
    ]  # fmt: skip
    assert {(r["period_from"], r["period_to"], r["currency"]) for r in rows} == {
        (str(start), str(end), "USD")
    }
    assert total["team"] == "Total"
    assert "(no team)" in {r["team"] for r in groups} and "" not in {r["team"] for r in groups}
    assert all(len(r["cost"].split(".")[1]) == 6 for r in rows)

    api = (
        client_for(dave)
        .get(
            "/api/v1/reports/costs/",
            {"group_by": "team,model", "organization": "acme", "from": start, "to": end},
        )
        .json()
    )
    by_api = {
        (r["team_name"] or "(no team)", r["model"]): Decimal(r["cost_usd"]) for r in api["rows"]
    }
    by_csv = {(r["team"], r["model"]): Decimal(r["cost"]) for r in groups}
    assert by_csv.keys() == by_api.keys()
    for group, cost in by_api.items():
        assert round(cost, 2) == round(by_csv[group], 2), group
    logged = sum(
        RequestLog.objects.filter(
            created_at__date__gte=start, created_at__date__lte=end
        ).values_list("cost_usd", flat=True),
        Decimal(0),
    )
    assert (
        round(Decimal(total["cost"]), 2)
        == round(Decimal(api["totals"]["cost_usd"]), 2)
        == round(logged, 2)
    )
    assert int(total["refusals"]) == 9 and int(total["errors"]) == 0
    assert int(total["requests"]) == 90


def test_it_shows_the_report_on_screen_with_a_totals_row(acme, bob, charlie) -> None:
    payments, start, end = _spend(acme, bob, charlie)
    page = _browser(bob).get(
        "/costs/", {"org": "acme", "first": "team", "second": "model", "since": start, "until": end}
    )
    text = page.content.decode()
    assert "Payments" in text and "(no team)" in text and "claude-opus-4-1" in text
    assert '<td colspan="2">Total</td>' in text


def test_it_shows_a_developer_only_their_own_spend(acme, bob, charlie) -> None:
    _, start, end = _spend(acme, bob, charlie)
    rows = _csv(
        _browser(charlie).get(
            "/costs/export.csv", {"org": "acme", "first": "user", "since": start, "until": end}
        )
    )
    assert {r["person"] for r in rows[:-1]} == {"charlie"}


def test_it_refuses_the_same_grouping_twice(bob) -> None:
    page = _browser(bob).get("/costs/", {"org": "acme", "first": "team", "second": "team"})
    assert "Pick a different second grouping" in page.content.decode()


def test_it_reports_in_constant_queries(acme, bob, charlie) -> None:
    _, start, end = _spend(acme, bob, charlie)
    browser = _browser(bob)
    query = {"org": "acme", "first": "team", "second": "user", "since": start, "until": end}
    with CaptureQueriesContext(connection) as queries:
        assert browser.get("/costs/", query).status_code == 200
    assert len(queries) <= 13, [q["sql"][:80] for q in queries]
