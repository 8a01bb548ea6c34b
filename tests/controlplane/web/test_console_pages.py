"""Every console page in chromium at 1280 px, with a month of traffic: it renders without a
script error, and its picture is kept (under ``make screenshots``, in docs/screenshots)."""

from __future__ import annotations

import pytest

from ledger.models import RequestLog
from tests.controlplane.web.demo import demo_world

PAGES = [
    ("overview", "/"),
    ("my-usage", "/me/"),
    ("keys", "/keys/"),
    ("budgets", "/budgets/"),
    ("requests", "/requests/"),
    ("costs", "/costs/?org=acme&first=team&second=model"),
    ("people", "/people/"),
    ("audit", "/audit/"),
    ("providers", "/providers/"),
    ("single-sign-on", "/single-sign-on/"),
    ("mcp", "/mcp/"),
    ("api-docs", "/api/v1/schema/swagger/"),
]


@pytest.fixture
def demo(transactional_db):
    return demo_world()


def test_it_renders_every_page(console, demo, screenshots) -> None:
    # A platform admin sees every page of the navigation.
    tab = console(demo["alice"])
    tab.go("/")
    linked = tab.page.locator("nav.sidebar a.nav-link").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    # Every page the navigation offers is pictured here.
    assert set(linked) - {"/admin/"} <= {path.split("?")[0] for _, path in PAGES}, linked
    for name, path in PAGES:
        response = tab.go(path)
        assert response.status == 200, (name, response.status)
        tab.page.wait_for_load_state("networkidle")
        # The API's docs run long: their first screen says enough.
        tab.page.screenshot(path=str(screenshots / f"{name}.png"), full_page=name != "api-docs")
    row = RequestLog.objects.filter(status=200).first()
    tab.go(f"/requests/{row.request_id}/")
    tab.page.screenshot(path=str(screenshots / "request-detail.png"), full_page=True)
    # The charts drew: uPlot leaves a canvas in each.
    tab.go("/")
    assert tab.page.locator("#chart-team canvas").count() == 1
    assert tab.page.locator("#chart-model canvas").count() == 1


def test_it_renders_the_pages_people_see_before_signing_in(console, demo, screenshots) -> None:
    tab = console()
    tab.go("/accounts/login/")
    tab.page.screenshot(path=str(screenshots / "sign-in.png"))
    developer = console(demo["people"]["charlie"])
    developer.go("/")
    developer.page.wait_for_load_state("networkidle")
    developer.page.screenshot(path=str(screenshots / "overview-developer.png"), full_page=True)
    developer.go("/accounts/2fa/")
    developer.page.screenshot(path=str(screenshots / "two-factor.png"), full_page=True)
