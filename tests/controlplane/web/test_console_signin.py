"""The console's sign-in: local accounts through django-allauth, TOTP as a second
step, password reset by mail, the same throttle and audit as every password check."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from audit.models import AuditEvent
from governance.sealing import unseal
from tests.controlplane.conftest import PASSWORD

LOGIN = "/accounts/login/"


def _sign_in(browser: Client, username: str, password: str = PASSWORD, **extra: str):
    return browser.post(LOGIN, {"login": username, "password": password, **extra})


def _totp_now(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


def test_it_sends_an_anonymous_visitor_to_the_sign_in_page(db) -> None:
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"
    page = Client().get(response["Location"]).content.decode()
    assert "Sign in" in page and 'name="login"' in page and "Forgot your password?" in page


def test_it_signs_in_a_viewer_and_audits_it(dave) -> None:
    browser = Client()
    response = _sign_in(browser, "dave")
    assert response.status_code == 302 and response["Location"] == "/"
    page = browser.get("/me/").content.decode()
    assert "Acme" in page and "Viewer" in page and "dave" in page
    event = AuditEvent.objects.get(action="auth.signin")
    assert (event.actor, event.target_label, event.after) == (dave, "dave", {"method": "password"})


def test_it_refuses_a_wrong_password_and_audits_it(bob) -> None:
    browser = Client()
    response = _sign_in(browser, "bob", "wrong")
    assert response.status_code == 200 and "_auth_user_id" not in browser.session
    assert "not correct" in response.content.decode()
    failed = AuditEvent.objects.get(action="auth.signin_failed")
    assert (failed.actor_label, failed.target_label) == ("anonymous", "bob")
    assert not AuditEvent.objects.filter(action="auth.signin").exists()


def test_it_throttles_the_console_sign_in_with_the_api_counters(bob, anonymous) -> None:
    browser = Client()
    for _ in range(5):
        _sign_in(browser, "bob", "wrong")
    # Failures through the API count against the same account.
    for _ in range(5):
        anonymous.post(
            "/api/v1/auth/token/", {"username": "bob", "password": "wrong"}, format="json"
        )
    response = _sign_in(browser, "bob")
    assert "_auth_user_id" not in browser.session
    assert re.search(
        r"Too many failed sign-ins\. Try again in \d+ minute", response.content.decode()
    )
    assert AuditEvent.objects.filter(action="auth.signin_failed").count() == 10
    assert AuditEvent.objects.filter(action="auth.signin_throttled").count() == 1


def test_it_has_no_self_service_sign_up(db) -> None:
    response = Client().get("/accounts/signup/")
    assert response.status_code == 200
    assert "Sign Up Closed" in response.content.decode()
    assert (
        Client()
        .post("/accounts/signup/", {"username": "mallory", "password1": "x" * 20})
        .status_code
        == 200
    )
    assert not get_user_model().objects.filter(username="mallory").exists()


def test_it_asks_for_a_totp_code_after_the_password(charlie) -> None:
    secret = generate_totp_secret()
    TOTP.activate(charlie, secret)
    stored = Authenticator.objects.get(user=charlie, type=Authenticator.Type.TOTP).data["secret"]
    # The secret is sealed at rest like a provider credential.
    assert stored != secret and unseal(stored) == secret

    browser = Client()
    response = _sign_in(browser, "charlie")
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/authenticate/"
    assert "_auth_user_id" not in browser.session
    wrong = "000000" if _totp_now(secret) != "000000" else "111111"
    response = browser.post("/accounts/2fa/authenticate/", {"code": wrong})
    assert response.status_code == 200 and "_auth_user_id" not in browser.session
    assert AuditEvent.objects.get(action="auth.mfa_failed").target_label == "charlie"

    response = browser.post("/accounts/2fa/authenticate/", {"code": _totp_now(secret)})
    assert response.status_code == 302
    assert browser.session["_auth_user_id"] == str(charlie.pk)
    assert AuditEvent.objects.filter(action="auth.signin", actor=charlie).count() == 1


def test_it_mails_a_password_reset_link_that_sets_a_new_password(charlie) -> None:
    browser = Client()
    response = browser.post("/accounts/password/reset/", {"email": "charlie@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["charlie@example.com"]
    link = re.search(
        r"http://testserver(/accounts/password/reset/key/\S+)", mail.outbox[0].body
    ).group(1)
    form = browser.get(link, follow=True)
    assert form.status_code == 200
    new = "a brand new long password"
    response = browser.post(form.redirect_chain[-1][0], {"password1": new, "password2": new})
    assert response.status_code == 302
    charlie.refresh_from_db()
    assert charlie.check_password(new)
    assert _sign_in(Client(), "charlie", new).status_code == 302


def test_it_prints_mail_on_the_terminal_in_the_embedded_default() -> None:
    # pytest-django swaps the mail backend for the tests, so read the setting as `make run` would.
    env = {k: v for k, v in os.environ.items() if k != "TOLLGATE_ENV"}
    script = "import django; django.setup(); from django.conf import settings; print(settings.EMAIL_BACKEND)"
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env | {"DJANGO_SETTINGS_MODULE": "controlplane.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "django.core.mail.backends.console.EmailBackend"


def test_it_shows_the_admin_link_only_to_platform_admins(alice, bob) -> None:
    admin_browser, org_admin = Client(), Client()
    admin_browser.force_login(alice)
    org_admin.force_login(bob)
    assert 'href="/admin/"' in admin_browser.get("/").content.decode()
    assert 'href="/admin/"' not in org_admin.get("/").content.decode()
    assert admin_browser.get("/admin/").status_code == 200
    # An organization admin is not staff: the Django admin is for platform admins.
    assert org_admin.get("/admin/", follow=True).status_code == 403


def test_it_signs_out_on_post_only(bob) -> None:
    browser = Client()
    browser.force_login(bob)
    browser.post("/accounts/logout/")
    assert "_auth_user_id" not in browser.session


def test_it_keeps_totp_working_across_an_encryption_key_rotation(charlie, settings) -> None:
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old, new = settings.ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    secret = generate_totp_secret()
    TOTP.activate(charlie, secret)
    settings.ENCRYPTION_KEYS = [new, old]
    call_command("reseal", stdout=io.StringIO())
    settings.ENCRYPTION_KEYS = [new]
    assert (
        AuditEvent.objects.filter(action="secret.reseal", target_type="mfa.authenticator").count()
        == 1
    )

    browser = Client()
    _sign_in(browser, "charlie")
    response = browser.post("/accounts/2fa/authenticate/", {"code": _totp_now(secret)})
    assert response.status_code == 302
    assert browser.session["_auth_user_id"] == str(charlie.pk)
