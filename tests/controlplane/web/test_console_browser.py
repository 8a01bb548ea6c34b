"""The console in a real browser (chromium): what a person clicks and sees."""

from __future__ import annotations

from allauth.mfa.totp.internal.auth import (
    format_hotp_value,
    hotp_value,
    yield_hotp_counters_from_time,
)

from audit.models import AuditEvent
from tests.controlplane.conftest import PASSWORD


def _totp_now(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


def test_it_signs_in_and_turns_on_an_authenticator_app(console, charlie) -> None:
    tab = console()
    page = tab.page
    tab.go("/")
    page.wait_for_url("**/accounts/login/?next=/")
    page.fill("#id_login", "charlie")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(tab.base_url + "/")
    assert page.locator(".topbar-user .who").inner_text().startswith("charlie")

    # Turn on TOTP from the account menu, as a person would, reading the secret off the page.
    page.click("text=Two-factor")
    page.click("text=Activate")
    # Changing how one signs in asks for the password again.
    page.wait_for_url("**/accounts/reauthenticate/**")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/accounts/2fa/totp/activate/")
    secret = page.locator("#authenticator_secret").input_value()
    page.fill("input[name=code]", _totp_now(secret))
    page.click("main button[type=submit]")
    page.wait_for_url("**/accounts/2fa/**")
    page.click("text=Sign out")
    page.wait_for_url("**/accounts/login/")

    # Signing in again now takes the code as well.
    page.fill("#id_login", "charlie")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/accounts/2fa/authenticate/")
    page.fill("input[name=code]", _totp_now(secret))
    page.click("main button[type=submit]")
    page.wait_for_url(tab.base_url + "/")
    assert AuditEvent.objects.filter(action="auth.signin", actor=charlie).count() == 2
