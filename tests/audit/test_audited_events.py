"""Security-relevant acts on the chain, with who, from where and with what client."""

from __future__ import annotations

from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.verify import audit_verify
from governance import services

PASSWORD = "a long test password"
AGENT = {"HTTP_USER_AGENT": "tollgate-audit-test/1.0", "HTTP_X_REQUEST_ID": "req-audit-1"}


def test_it_records_sign_ins_failed_and_successful(alice, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    alice.set_password(PASSWORD)
    alice.save()
    browser = Client()
    browser.post("/accounts/login/", {"login": "alice", "password": "wrong"}, **AGENT)
    browser.post("/accounts/login/", {"login": "alice", "password": PASSWORD}, **AGENT)
    failed = AuditEvent.objects.get(action="auth.signin_failed")
    signed_in = AuditEvent.objects.get(action="auth.signin")
    assert failed.seq < signed_in.seq
    for event in (failed, signed_in):
        assert (event.ip, event.user_agent, event.request_id) == ("127.0.0.1", "tollgate-audit-test/1.0", "req-audit-1")
    assert signed_in.actor == alice
    assert audit_verify().intact


def test_it_records_a_token_issued_used_and_revoked(alice):
    api = APIClient()
    issued = api.post("/api/v1/auth/token/", {"username": "alice", "password": "alice-password-1", "name": "ci"}, format="json", **AGENT)
    assert issued.status_code == 200, issued.content
    secret = issued.json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert api.get("/api/v1/organizations/", **AGENT).status_code == 200
    assert api.get("/api/v1/organizations/", **AGENT).status_code == 200  # the same minute: no second row
    token_id = issued.json()["id"]
    assert api.delete(f"/api/v1/auth/tokens/{token_id}/", **AGENT).status_code in (200, 204)
    actions = list(
        AuditEvent.objects.filter(action__startswith="auth.api_token").order_by("seq").values_list("action", flat=True)
    )
    assert actions == ["auth.api_token_issue", "auth.api_token_use", "auth.api_token_revoke"]
    use = AuditEvent.objects.get(action="auth.api_token_use")
    assert use.actor == alice and use.after == {"prefix": issued.json()["prefix"], "first_use": True}
    assert (use.ip, use.user_agent) == ("127.0.0.1", "tollgate-audit-test/1.0")
    assert secret not in str(list(AuditEvent.objects.values()))
    assert audit_verify().intact


def test_it_records_a_report_export(alice, acme):
    api = APIClient()
    token, secret = services.api_token_issue(actor=alice)
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    response = api.get(
        "/api/v1/reports/costs/",
        {"group_by": "team", "format": "csv", "organization": "acme", "from": "2026-11-01", "to": "2026-11-30"},
        **AGENT,
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    export = AuditEvent.objects.get(action="report.export")
    assert export.actor == alice and export.request_id == "req-audit-1"
    assert export.after == {
        "format": "csv", "group_by": "team", "organization": "acme", "from": "2026-11-01", "to": "2026-11-30", "rows": 0,
    }
    # JSON answers to the API caller are reads, not files leaving the system.
    api.get("/api/v1/reports/costs/", {"group_by": "team", "organization": "acme"})
    assert AuditEvent.objects.filter(action="report.export").count() == 1


def test_it_records_a_request_log_export_from_the_console(alice, acme):
    from governance.models import Role

    bob = services.user_create(actor=alice, username="bob", email="bob@example.com", organization=acme, role=Role.ADMIN)
    browser = Client()
    browser.force_login(bob)
    response = browser.get("/requests/export.csv", {"org": "acme", "status": "error"}, **AGENT)
    assert response.status_code == 200
    b"".join(response.streaming_content)
    export = AuditEvent.objects.get(action="request_log.export")
    assert (export.actor, export.target_id, export.user_agent) == (bob, "acme", "tollgate-audit-test/1.0")
    assert export.after == {"format": "csv", "organization": "acme", "filters": {"org": "acme", "status": "error"}}


def test_it_records_a_focus_chargeback_export(alice, acme):
    api = APIClient()
    api.force_authenticate(alice)
    response = api.get("/api/v1/reports/focus/", {"organization": "acme", "month": "2026-11"})
    assert response.status_code == 200, response.content
    export = AuditEvent.objects.get(action="report.export")
    assert export.after == {"format": "focus-csv", "organization": "acme", "month": "2026-11", "rows": 0}
