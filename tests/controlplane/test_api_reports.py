from __future__ import annotations

import csv
import io
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from governance import services
from ledger.models import RequestLog
from ledger.services import usage_rollup
from tests.ledger.factories import at, log_cost, log_row, log_rows

COSTS = "/api/v1/reports/costs/"
SESSIONS = "/api/v1/reports/sessions/"
TODAY = timezone.now().astimezone(UTC).date()
DAYS = [TODAY - timedelta(days=n) for n in (3, 2, 1, 0)]
RANGE = {"from": DAYS[0].isoformat(), "to": TODAY.isoformat()}


@pytest.fixture
def spend(acme, globex, bob, charlie, dave, eve) -> dict[str, Any]:
    """Spend in acme (charlie on payments, bob without a team) and globex (eve), over four days.

    The three closed days are rolled up; today is only in the log.
    """
    payments = services.team_create(actor=None, organization=acme, name="Payments")
    services.membership_set(
        actor=None, user=charlie, organization=acme, role="developer", team=payments
    )
    laptop, _ = services.key_create(
        actor=None, organization=acme, name="charlie laptop", team=payments, user=charlie
    )
    ci, _ = services.key_create(actor=None, organization=acme, name="bob ci", user=bob)
    globex_key, _ = services.key_create(actor=None, organization=globex, name="eve", user=eve)
    spread = [
        {
            "organization_id": acme.pk,
            "team_id": payments.pk,
            "user_id": charlie.pk,
            "key_id": laptop.pk,
            "key_prefix": laptop.prefix,
            "session_id": "cc-session-1",
        },
        {
            "organization_id": acme.pk,
            "team_id": payments.pk,
            "user_id": charlie.pk,
            "key_id": laptop.pk,
            "key_prefix": laptop.prefix,
            "session_id": "cc-session-2",
            "model_served": "claude-opus-4-1",
        },
        {
            "organization_id": acme.pk,
            "team_id": None,
            "user_id": bob.pk,
            "key_id": ci.pk,
            "key_prefix": ci.prefix,
        },
        {
            "organization_id": globex.pk,
            "team_id": None,
            "user_id": eve.pk,
            "key_id": globex_key.pk,
            "key_prefix": globex_key.prefix,
            "session_id": "cc-session-3",
        },
    ]
    log_rows(1200, spread=spread, days=DAYS)
    for day in DAYS[:-1]:
        usage_rollup(day=day)
    return {"payments": payments, "laptop": laptop, "ci": ci}


def parse_csv(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def cost_of(**filters: Any) -> Decimal:
    return sum(RequestLog.objects.filter(**filters).values_list("cost_usd", flat=True), Decimal(0))


@pytest.mark.parametrize(
    "group_by", ["organization", "team", "user", "key", "model", "day", "session"]
)
def test_it_exports_csv_that_adds_up_to_the_request_log(client_for, alice, spend, group_by) -> None:
    response = client_for(alice).get(COSTS, {**RANGE, "group_by": group_by, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        f'attachment; filename="tollgate-{group_by}-{DAYS[0]}-{TODAY}.csv"'
    )
    rows = parse_csv(response)
    total = sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0))
    assert total == log_cost()
    assert round(total, 2) == round(log_cost(), 2)
    assert sum(int(r["requests"]) for r in rows) == 1200


def test_it_labels_team_rows_for_finance(client_for, bob, spend) -> None:
    response = client_for(bob).get(COSTS, {**RANGE, "group_by": "team", "format": "csv"})
    rows = parse_csv(response)
    assert list(rows[0]) == [
        "organization_id",
        "organization",
        "team_id",
        "team",
        "team_name",
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
    ]
    labels = {(r["organization"], r["team"], r["team_name"]): Decimal(r["cost_usd"]) for r in rows}
    assert labels == {
        ("acme", "payments", "Payments"): cost_of(team_id=spend["payments"].pk),
        ("acme", "", ""): cost_of(key_id=spend["ci"].pk),
    }


def test_it_answers_json_with_totals(client_for, bob, spend) -> None:
    response = client_for(bob).get(COSTS, {**RANGE, "group_by": "key"})
    assert response.status_code == 200
    body = response.json()
    assert (body["group_by"], body["from"], body["to"]) == ("key", RANGE["from"], RANGE["to"])
    acme_cost = cost_of(key_id__in=[spend["laptop"].pk, spend["ci"].pk])
    assert Decimal(body["totals"]["cost_usd"]) == acme_cost
    assert body["totals"]["requests"] == 900
    laptop = next(r for r in body["rows"] if r["key_id"] == spend["laptop"].pk)
    assert (laptop["key_prefix"], laptop["key_name"], laptop["organization"]) == (
        spend["laptop"].prefix,
        "charlie laptop",
        "acme",
    )
    assert "team" not in laptop


def test_it_reports_spend_per_claude_code_session(client_for, charlie, spend) -> None:
    response = client_for(charlie).get(SESSIONS, {**RANGE, "format": "json"})
    assert response.status_code == 200
    rows = {r["session_id"]: r for r in response.json()["rows"]}
    assert set(rows) == {"cc-session-1", "cc-session-2"}
    one = rows["cc-session-1"]
    assert (one["username"], one["key_prefix"]) == ("charlie", spend["laptop"].prefix)
    assert Decimal(one["cost_usd"]) == cost_of(session_id="cc-session-1")
    assert one["first_seen"] < one["last_seen"]


def test_it_keeps_client_supplied_text_from_running_as_a_formula(client_for, charlie, acme) -> None:
    log_row(
        organization_id=acme.pk,
        user_id=charlie.pk,
        created_at=at(TODAY),
        session_id="=HYPERLINK(1)",
    ).save()
    response = client_for(charlie).get(SESSIONS, {**RANGE, "format": "csv", "organization": "acme"})
    assert response["Content-Disposition"].endswith(
        f'filename="tollgate-session-acme-{DAYS[0]}-{TODAY}.csv"'
    )
    assert [r["session_id"] for r in parse_csv(response)] == ["'=HYPERLINK(1)"]


def test_it_shows_a_developer_only_their_own_spend(client_for, charlie, spend) -> None:
    for params in (RANGE, {**RANGE, "organization": "acme"}):
        body = client_for(charlie).get(COSTS, {**params, "group_by": "user"}).json()
        assert [r["username"] for r in body["rows"]] == ["charlie"]
        assert Decimal(body["totals"]["cost_usd"]) == cost_of(user_id=charlie.pk)


def test_it_shows_a_viewer_the_whole_organization(client_for, dave, bob, charlie, spend) -> None:
    body = client_for(dave).get(COSTS, {**RANGE, "group_by": "user"}).json()
    assert sorted(r["username"] for r in body["rows"]) == ["bob", "charlie"]


def test_it_shows_a_platform_admin_everything_or_one_organization(client_for, alice, spend) -> None:
    client = client_for(alice)
    every = client.get(COSTS, {**RANGE, "group_by": "organization"}).json()
    assert sorted(r["organization"] for r in every["rows"]) == ["acme", "globex"]
    one = client.get(COSTS, {**RANGE, "group_by": "organization", "organization": "globex"}).json()
    assert [r["organization"] for r in one["rows"]] == ["globex"]


def test_it_keeps_other_organizations_spend_hidden(client_for, eve, spend) -> None:
    client = client_for(eve)
    body = client.get(COSTS, {**RANGE, "group_by": "organization"}).json()
    assert [r["organization"] for r in body["rows"]] == ["globex"]
    refused = client.get(COSTS, {**RANGE, "organization": "acme"})
    assert refused.status_code == 400
    assert refused.json() == {"organization": ["No organization 'acme'."]}
    assert client.get(COSTS, {**RANGE, "organization": "nope"}).json() == {
        "organization": ["No organization 'nope'."]
    }


def test_it_counts_rows_logged_after_the_rollup(client_for, bob, acme, spend) -> None:
    # Today is not rolled up; yesterday is, and a row for it arrives late.
    log_row(
        created_at=at(DAYS[-1], 10), organization_id=acme.pk, cost_usd=Decimal("0.0000031")
    ).save()
    usage_rollup(day=DAYS[-2])
    body = client_for(bob).get(COSTS, {**RANGE, "group_by": "day"}).json()
    assert Decimal(body["totals"]["cost_usd"]) == cost_of(organization_id=acme.pk)
    assert [r["day"] for r in body["rows"]] == [d.isoformat() for d in DAYS]


def test_it_defaults_to_the_current_month(client_for, bob, spend) -> None:
    body = client_for(bob).get(COSTS).json()
    first = TODAY.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    assert (body["group_by"], body["from"], body["to"]) == ("organization", str(first), str(last))


def test_it_completes_a_range_with_one_bound_to_its_month(client_for, bob) -> None:
    client = client_for(bob)
    body = client.get(COSTS, {"from": "2026-02-10"}).json()
    assert (body["from"], body["to"]) == ("2026-02-10", "2026-02-28")
    body = client.get(COSTS, {"to": "2026-10-15"}).json()
    assert (body["from"], body["to"]) == ("2026-10-01", "2026-10-15")


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        (
            {"group_by": "planet"},
            {
                "group_by": [
                    "Group by one of organization, team, user, key, model, day, session, or two different ones joined by a comma."
                ]
            },
        ),
        (
            {"group_by": "team,team"},
            {
                "group_by": [
                    "Group by one of organization, team, user, key, model, day, session, or two different ones joined by a comma."
                ]
            },
        ),
        (
            {"from": "2026-13-01"},
            {"from": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]},
        ),
        ({"from": "2026-11-30", "to": "2026-11-01"}, {"to": ["Must not be before 'from'."]}),
        ({"from": "2025-01-01", "to": "2026-11-01"}, {"to": ["A report covers at most 366 days."]}),
        ({"format": "xlsx"}, {"format": ['"xlsx" is not a valid choice.']}),
    ],
)
def test_it_explains_bad_queries(client_for, bob, params, errors) -> None:
    response = client_for(bob).get(COSTS, params)
    assert response.status_code == 400
    assert response.json() == errors


def test_it_answers_errors_as_json_even_when_csv_was_asked_for(client_for, bob) -> None:
    response = client_for(bob).get(COSTS, {"format": "csv", "group_by": "planet"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"


def test_it_refuses_anonymous_callers(anonymous, db) -> None:
    assert anonymous.get(COSTS).status_code == 401
    assert anonymous.get(SESSIONS).status_code == 401


def test_it_reports_in_a_fixed_number_of_queries(
    client_for, alice, spend, django_assert_max_num_queries
) -> None:
    client = client_for(alice)
    # token, roll-up state, roll-up, log, then one lookup per kind of label; and the
    # export's audit row (savepoint, chain lock, head, insert, release).
    for group_by in ("key", "session"):
        with django_assert_max_num_queries(6 + 5):
            response = client.get(COSTS, {**RANGE, "group_by": group_by, "format": "csv"})
        assert response.status_code == 200


def test_it_groups_by_two_dimensions_and_still_adds_up(client_for, alice, spend) -> None:
    body = client_for(alice).get(COSTS, {**RANGE, "group_by": "team,model"}).json()
    assert body["group_by"] == "team,model"
    assert {"organization", "team", "team_name", "model", "cost_usd"} <= set(body["rows"][0])
    groups = {(r["organization"], r["team"], r["model"]): Decimal(r["cost_usd"]) for r in body["rows"]}
    assert len(groups) == len(body["rows"])
    assert sum(groups.values()) == log_cost() == Decimal(body["totals"]["cost_usd"])
    payments = {model: cost for (_, team, model), cost in groups.items() if team == "payments"}
    assert payments and all(
        cost == cost_of(team_id=spend["payments"].pk, model_served=model) for model, cost in payments.items()
    )
    csv_rows = parse_csv(client_for(alice).get(COSTS, {**RANGE, "group_by": "team,model", "format": "csv"}))
    assert len(csv_rows) == len(body["rows"])


def test_it_counts_refusals_apart(client_for, alice, spend) -> None:
    RequestLog.objects.bulk_create(
        [
            log_row(
                organization_id=spend["payments"].organization_id,
                status=402,
                provider_id=None,
                created_at=at(DAYS[-1], 7),
            )
        ]
    )
    totals = client_for(alice).get(COSTS, {**RANGE}).json()["totals"]
    assert totals["refusals"] == 1
    assert totals["errors"] >= 1
