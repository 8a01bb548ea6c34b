"""``/api/v1/`` answers with its entry points, and the API's docs work offline."""

from __future__ import annotations

import re

from django.contrib.staticfiles import finders
from django.test import Client


def test_it_lists_the_entry_points_at_the_api_root(client_for, bob) -> None:
    response = client_for(bob).get("/api/v1/")
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == "bob"
    assert body["links"]["organizations"] == "http://testserver/api/v1/organizations/"
    assert body["links"]["cost_report"] == "http://testserver/api/v1/reports/costs/"


def test_it_links_only_to_pages_that_answer(client_for, alice) -> None:
    client = client_for(alice)
    for url in client.get("/api/v1/").json()["links"].values():
        assert client.get(url.removeprefix("http://testserver")).status_code == 200, url


def test_it_refuses_the_api_root_to_anonymous_callers(anonymous) -> None:
    response = anonymous.get("/api/v1/")
    assert response.status_code in (401, 403)
    assert response["Content-Type"] == "application/json"


def test_it_serves_swagger_ui_from_the_package_not_a_cdn(bob) -> None:
    browser = Client()
    browser.force_login(bob)
    page = browser.get("/api/v1/schema/swagger/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    scripts = [a for a in assets if a.endswith(".js") or a.endswith(".css")]
    assert scripts, page
    for asset in scripts:
        assert asset.startswith("/static/drf_spectacular_sidecar/"), asset
        assert finders.find(asset.removeprefix("/static/")), asset
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()
