"""Password sign-in is throttled per account and per address, failures are
audited, and API tokens are stored only as digests that expire and revoke."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from governance import services
from governance.keys import key_digest
from governance.models import ApiToken
from tests.controlplane.conftest import PASSWORD

TOKEN = "/api/v1/auth/token/"


def _token(client: APIClient, username: str, password: str) -> int:
    return client.post(TOKEN, {"username": username, "password": password}, format="json").status_code


def test_it_stops_a_password_guesser_before_the_right_password(anonymous: APIClient, bob) -> None:
    answers = [_token(anonymous, "bob", f"guess {i}") for i in range(100)]
    assert answers[:10] == [400] * 10
    assert set(answers[10:]) == {429}
    # The right password, once throttled, is refused as well: the guesser learns nothing.
    response = anonymous.post(TOKEN, {"username": "bob", "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 900
    assert "token" not in response.json()


def test_it_throttles_an_account_from_every_address(bob) -> None:
    for i in range(10):
        assert _token(APIClient(REMOTE_ADDR=f"10.0.0.{i}"), "bob", "wrong") == 400
    assert _token(APIClient(REMOTE_ADDR="10.0.1.1"), "bob", PASSWORD) == 429


def test_it_throttles_an_address_guessing_many_accounts(bob, charlie) -> None:
    attacker = APIClient(REMOTE_ADDR="203.0.113.9")
    answers = [_token(attacker, f"user{i}", "wrong") for i in range(30)]
    assert set(answers) == {400}
    assert _token(attacker, "charlie", PASSWORD) == 429
    # Someone else still signs in as charlie.
    assert _token(APIClient(REMOTE_ADDR="198.51.100.1"), "charlie", PASSWORD) == 200


def test_it_resets_an_accounts_count_on_success(anonymous: APIClient, bob) -> None:
    for _ in range(9):
        assert _token(anonymous, "bob", "wrong") == 400
    assert _token(anonymous, "bob", PASSWORD) == 200
    assert [_token(anonymous, "bob", "wrong") for _ in range(9)] == [400] * 9


def test_it_audits_failures_and_the_start_of_a_throttle(anonymous: APIClient, bob) -> None:
    for _ in range(12):
        _token(anonymous, "bob", "wrong")
    _token(anonymous, "nobody", "wrong")
    failed = AuditEvent.objects.filter(action="auth.signin_failed")
    assert failed.count() == 11
    assert failed.filter(target_label="bob").count() == 10
    assert failed.get(target_label="nobody").after == {"username": "nobody", "known_user": False}
    # The two throttled attempts leave one row, not one each.
    assert AuditEvent.objects.filter(action="auth.signin_throttled", target_label="bob").count() == 1
    assert all(e.ip == "127.0.0.1" for e in failed)


def test_it_sends_the_admin_login_to_the_throttled_console_sign_in(db, alice) -> None:
    browser = Client()
    response = browser.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    for _ in range(10):
        response = browser.post("/accounts/login/", {"login": "alice", "password": "wrong"})
        assert response.status_code == 200 and "_auth_user_id" not in browser.session
    response = browser.post("/accounts/login/?next=/admin/", {"login": "alice", "password": PASSWORD})
    assert "_auth_user_id" not in browser.session
    assert b"Too many failed sign-ins" in response.content


def test_it_stores_only_a_digest_with_a_visible_prefix(anonymous: APIClient, bob) -> None:
    body = anonymous.post(TOKEN, {"username": "bob", "password": PASSWORD, "name": "ci"}, format="json").json()
    secret = body["token"]
    token = ApiToken.objects.get()
    assert secret.startswith(token.prefix + "-") and body["prefix"] == token.prefix
    assert token.digest == key_digest(secret)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM governance_apitoken")
        assert secret not in repr(cursor.fetchall())
    assert timedelta(days=89) < token.expires_at - timezone.now() <= timedelta(days=90)


def test_it_lists_tokens_without_their_secrets(client_for, anonymous: APIClient, bob, charlie) -> None:
    secret = anonymous.post(TOKEN, {"username": "bob", "password": PASSWORD}, format="json").json()["token"]
    listed = client_for(bob).get("/api/v1/auth/tokens/").json()["results"]
    assert len(listed) == 2 and secret not in repr(listed)  # client_for's and this one
    assert all(t["prefix"].startswith("tgapi-") for t in listed)
    assert client_for(charlie).get("/api/v1/auth/tokens/").json()["count"] == 1


def test_it_refuses_an_expired_token(anonymous: APIClient, bob) -> None:
    token, secret = services.api_token_issue(actor=bob, lifetime=timedelta(days=1))
    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert anonymous.get("/api/v1/organizations/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = anonymous.get("/api/v1/organizations/")
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_it_revokes_a_token_at_once(client_for, anonymous: APIClient, bob, charlie) -> None:
    token, secret = services.api_token_issue(actor=bob)
    anonymous.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert anonymous.get("/api/v1/organizations/").status_code == 200
    assert client_for(charlie).delete(f"/api/v1/auth/tokens/{token.pk}/").status_code == 404
    assert client_for(bob).delete(f"/api/v1/auth/tokens/{token.pk}/").status_code == 204
    assert anonymous.get("/api/v1/organizations/").status_code == 401
    assert AuditEvent.objects.filter(action="auth.api_token_revoke", actor=bob).count() == 1


def test_it_refuses_a_deactivated_users_token(client_for, alice, charlie) -> None:
    client = client_for(charlie)
    assert client.get("/api/v1/organizations/").status_code == 200
    services.user_set_active(actor=alice, user=charlie, is_active=False)
    assert client.get("/api/v1/organizations/").status_code == 401


def test_it_lists_no_secret_in_the_django_admin(db, alice, bob) -> None:
    _, secret = services.api_token_issue(actor=bob)
    browser = Client()
    browser.force_login(alice)
    page = browser.get("/admin/governance/apitoken/")
    assert page.status_code == 200 and secret not in page.content.decode()
    assert browser.get("/admin/authtoken/").status_code == 404


def test_it_migrates_plain_text_tokens_to_digests(tmp_path) -> None:
    """On a database of its own (a fresh process on SQLite), so the suite's stays as it is."""
    import os
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOLLGATE_", "DATABASE_URL", "REDIS_URL"))}
    env |= {"DJANGO_SETTINGS_MODULE": "controlplane.settings", "TOLLGATE_DATA_DIR": str(tmp_path)}

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    manage("migrate", "-v", "0")
    manage("migrate", "governance", "0008", "-v", "0")
    db = sqlite3.connect(tmp_path / "tollgate.sqlite3")
    db.execute("INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined) VALUES ('!', 0, 'bob', '', '', '', 0, 1, '2026-01-01')")
    db.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer, created datetime)")
    db.execute("INSERT INTO authtoken_token VALUES (?, 1, '2026-01-01 00:00:00')", ["a" * 40])
    db.commit()
    db.close()
    manage("migrate", "-v", "0")
    db = sqlite3.connect(tmp_path / "tollgate.sqlite3")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    rows = db.execute("SELECT user_id, prefix, digest FROM governance_apitoken").fetchall()
    db.close()
    assert "authtoken_token" not in tables
    assert [r[:2] for r in rows] == [(1, "legacy-aaaaaaaa")]
    digest = manage("shell", "-c", "from governance.keys import key_digest; print(key_digest('" + "a" * 40 + "'))")
    assert rows[0][2] == digest.strip().splitlines()[-1]
