"""The page where an engineer confirms the code Claude Code's /login shows (chromium)."""

from __future__ import annotations

from typing import Any

from devicelogin import services as device
from devicelogin.models import AuthorizationStatus, DeviceAuthorization, DeviceSignin
from governance.models import KeyStatus


def test_it_confirms_the_code_only_when_asked_and_signs_the_device_out_from_my_usage(
    console: Any, charlie: Any, screenshots: Any
) -> None:
    auth, _device_code = device.device_start(client_address="127.0.0.1", user_agent="claude-code/2.1.330")
    tab = console()
    # Not signed in yet: the console's sign-in first, then back to the code.
    tab.go(f"/device/?user_code={auth.user_code}")
    assert "/accounts/login/" in tab.page.url and "user_code" in tab.page.url

    tab = console(charlie)
    tab.go(f"/device/?user_code={auth.user_code}")
    assert tab.page.locator("#user_code").input_value() == auth.user_code
    tab.page.screenshot(path=str(screenshots / "device-confirm.png"), full_page=True)
    auth.refresh_from_db()
    assert auth.status == AuthorizationStatus.PENDING  # showing the code confirms nothing

    tab.page.locator("button", has_text="Confirm and sign in").click()
    tab.page.locator("#device-done").wait_for()
    assert "signed in" in tab.page.locator("h1").inner_text()
    signin = DeviceSignin.objects.select_related("key").get(user=charlie)
    assert DeviceAuthorization.objects.get(pk=auth.pk).status == AuthorizationStatus.APPROVED

    tab.go("/me/")
    row = tab.page.locator("#devices tbody tr")
    assert signin.key.prefix in row.inner_text()
    tab.page.screenshot(path=str(screenshots / "my-usage-devices.png"), full_page=True)
    row.locator("button", has_text="Sign out").click()
    tab.page.locator(".message.success").wait_for()
    signin.key.refresh_from_db()
    assert signin.key.status == KeyStatus.DISABLED
    assert tab.page.locator("#devices tbody tr").count() == 0


def test_a_wrong_code_says_so_and_signs_nothing_in(console: Any, charlie: Any) -> None:
    tab = console(charlie)
    tab.go("/device/")
    tab.page.locator("#user_code").fill("BBBB-BBBB")
    tab.page.locator("button", has_text="Confirm and sign in").click()
    tab.page.locator(".message.error").wait_for()
    assert "unknown or has expired" in tab.page.locator(".message.error").inner_text()
    assert not DeviceSignin.objects.exists()
