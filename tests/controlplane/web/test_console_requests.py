"""Request log explorer and ``/api/v1/requests/``: one filter, the same rows, names instead of ids."""

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
from tests.ledger.factories import log_row


def _browser(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def _log(acme, bob, charlie):
    payments = services.team_create(actor=None, organization=acme, name="Payments")
    services.membership_set(
        actor=None, user=charlie, organization=acme, role="developer", team=payments
    )
    ck, _ = services.key_create(
        actor=None, organization=acme, name="charlie laptop", user=charlie, team=payments
    )
    bk, _ = services.key_create(actor=None, organization=acme, name="bob ci", user=bob)
    now = timezone.now()
    rows = [
        log_row(organization_id=acme.pk, team_id=payments.pk, user_id=charlie.pk, key_id=ck.pk, key_prefix=ck.prefix,
                created_at=now - timedelta(minutes=3), cost_usd=Decimal("0.0123456789"), session_id="s-1", latency_ms=1234.5678),
        log_row(organization_id=acme.pk, team_id=payments.pk, user_id=charlie.pk, key_id=ck.pk, key_prefix=ck.prefix,
                created_at=now - timedelta(minutes=2), status=402, provider_id=None, cost_usd=Decimal(0),
                error_type="billing_error", input_tokens=0, output_tokens=0),
        log_row(organization_id=acme.pk, user_id=bob.pk, key_id=bk.pk, key_prefix=bk.prefix,
                created_at=now - timedelta(minutes=1), cost_usd=Decimal("1.5"), model_served="claude-opus-4-1"),
    ]  # fmt: skip
    RequestLog.objects.bulk_create(rows)
    return payments, ck, bk


def test_it_lists_requests_with_names_and_totals(acme, bob, charlie) -> None:
    _log(acme, bob, charlie)
    page = _browser(bob).get("/requests/").content.decode()
    assert "charlie laptop" in page and "Payments" in page and "(no team)" in page
    assert "1.23 s" in page and "1234.5678" not in page
    assert "$1.51" in page  # 0.0123456789 + 1.5
    assert "402 refused" in page


def test_it_filters_by_team_status_and_session(acme, bob, charlie) -> None:
    _log(acme, bob, charlie)
    browser = _browser(bob)
    by_team = browser.get("/requests/", {"org": "acme", "team": "payments"}).content.decode()
    assert by_team.count("charlie laptop</td>") == 2 and "bob ci</td>" not in by_team
    refused = browser.get("/requests/", {"org": "acme", "status": "refused"}).content.decode()
    assert refused.count("<tr>") == 2  # header + one row
    session = browser.get("/requests/", {"org": "acme", "session": "s-1"}).content.decode()
    assert "$0.0123" in session


def test_it_shows_a_developer_only_their_own_requests(acme, bob, charlie) -> None:
    _log(acme, bob, charlie)
    page = _browser(charlie).get("/requests/").content.decode()
    assert "charlie laptop" in page and "bob ci</td>" not in page
    api = Client()
    api.force_login(charlie)
    assert {r["key_name"] for r in api.get("/api/v1/requests/").json()["results"]} == {
        "charlie laptop"
    }


def test_it_answers_the_api_with_the_same_filters_and_a_cursor(
    client_for, acme, bob, charlie
) -> None:
    payments, ck, _ = _log(acme, bob, charlie)
    client = client_for(bob)
    body = client.get(
        "/api/v1/requests/", {"organization": "acme", "team": "payments", "limit": 1}
    ).json()
    assert len(body["results"]) == 1 and body["next"]
    first = body["results"][0]
    assert (first["team"], first["user"], first["key_name"], first["outcome"]) == (
        "Payments",
        "charlie",
        "charlie laptop",
        "refused",
    )
    second = client.get(body["next"]).json()
    assert second["results"][0]["cost_usd"] == "0.0123456789" and second["next"] is None
    assert client.get("/api/v1/requests/", {"team": "payments"}).status_code == 400
    assert client.get("/api/v1/requests/", {"status": "nonsense"}).status_code == 400


def test_it_hides_requests_from_outsiders(client_for, acme, bob, charlie, eve) -> None:
    _log(acme, bob, charlie)
    assert client_for(eve).get("/api/v1/requests/").json()["results"] == []
    assert client_for(eve).get("/api/v1/requests/", {"organization": "acme"}).status_code == 400
    assert _browser(eve).get("/requests/?org=acme").status_code == 404


def test_it_shows_one_requests_detail(acme, bob, charlie, eve) -> None:
    _log(acme, bob, charlie)
    row = RequestLog.objects.get(session_id="s-1")
    page = _browser(bob).get(f"/requests/{row.request_id}/").content.decode()
    assert "charlie laptop" in page and "s-1" in page and "$0.012346" in page
    # The row's user is not the signed-in one: the top bar still names bob.
    assert '<span class="who">bob' in page and "charlie</td>" in page
    assert _browser(eve).get(f"/requests/{row.request_id}/").status_code == 404


def test_it_downloads_the_filtered_set_as_csv(acme, bob, charlie) -> None:
    _log(acme, bob, charlie)
    response = _browser(bob).get("/requests/export.csv", {"org": "acme", "team": "payments"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2 and {r["team"] for r in rows} == {"Payments"}
    assert sorted(r["cost_usd"] for r in rows) == ["0.0000000000", "0.0123456789"]


def test_it_pages_the_log_in_constant_queries(acme, bob, charlie) -> None:
    _log(acme, bob, charlie)
    browser = _browser(bob)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert browser.get("/requests/").status_code == 200
        return len(queries)

    few = count()
    RequestLog.objects.bulk_create(
        [
            log_row(organization_id=acme.pk, user_id=bob.pk, created_at=timezone.now())
            for _ in range(60)
        ]
    )
    # One query per kind of name on the page, however many rows.
    assert count() <= few
