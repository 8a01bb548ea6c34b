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
    from django.core.cache import cache
    from django.test import RequestFactory

    from controlplane.signin import _counters

    # Earlier tests' failed sign-ins from this address may still count against it.
    for key, _ in _counters(RequestFactory().get("/", REMOTE_ADDR="127.0.0.1"), "charlie"):
        cache.delete_many([key, f"{key}:until", f"{key}:audited"])
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


def test_it_creates_a_key_and_shows_the_secret_exactly_once(
    console, bob, charlie, screenshots
) -> None:
    tab = console(bob)
    page = tab.page
    tab.go("/keys/")
    page.click("#create-key summary")
    page.fill("input[name=name]", "charlie laptop")
    page.select_option("select[name=user]", "charlie")
    page.click("#create-key button[type=submit]")
    secret = page.locator("#new-secret").inner_text()
    assert secret.startswith("tg-")
    assert f"ANTHROPIC_AUTH_TOKEN={secret}" in page.locator("#claude-lines").inner_text()
    page.screenshot(path=str(screenshots / "keys-created.png"), full_page=True)
    assert page.locator("#keys tbody tr").count() == 1

    tab.go("/keys/")
    assert page.locator("#new-secret").count() == 0
    assert secret not in page.content()
    assert "charlie laptop" in page.locator("#keys").inner_text()


def test_it_shows_a_developer_only_their_own_keys(console, acme, bob, charlie) -> None:
    from governance import services

    services.key_create(actor=None, organization=acme, name="bob's key", user=bob)
    services.key_create(actor=None, organization=acme, name="charlie's key", user=charlie)
    tab = console(charlie)
    tab.go("/keys/")
    listed = tab.page.locator("#keys tbody tr").all_inner_texts()
    assert len(listed) == 1 and "charlie's key" in listed[0]
