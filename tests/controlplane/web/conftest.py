"""A real browser for the console: Playwright driving Debian's chromium against the live server.

The browser is never downloaded (``playwright install`` is not used): it is
the system's /usr/bin/chromium. Tests sign people in through the real form
once (test_console_browser.py); the rest start from a session cookie.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    # Playwright's sync API keeps an event loop running in the test's thread,
    # so Django would refuse the ORM calls a test makes between browser steps
    # (synchronous, and safe there). Per module, not per session, so tests
    # elsewhere never run beside that loop or with the check switched off.
    from playwright.sync_api import sync_playwright

    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()
    if saved is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


class Console:
    """One person's browser tab on the live console."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.base_url = base_url
        self.context = browser.new_context(
            viewport={"width": 1280, "height": 860}, accept_downloads=True, base_url=base_url
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))

    def sign_in_as(self, user: Any) -> Console:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        self.context.add_cookies(
            [{"name": cookie.key, "value": cookie.value, "url": self.base_url}]
        )
        return self

    def go(self, path: str) -> Any:
        response = self.page.goto(path)
        assert response is not None
        return response

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors


@pytest.fixture
def console(chromium: Any, live_server: Any) -> Iterator[Callable[..., Console]]:
    opened: list[Console] = []

    def open_tab(user: Any | None = None) -> Console:
        tab = Console(chromium, live_server.url)
        opened.append(tab)
        return tab.sign_in_as(user) if user is not None else tab

    yield open_tab
    for tab in opened:
        tab.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where page pictures go: docs/screenshots under ``make screenshots``, else the test's tmp dir."""
    target = Path(os.environ.get("TOLLGATE_SCREENSHOTS_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target
