"""The console's navigation: which pages a signed-in person is shown, in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    url: str
    active: bool


def _item(request: HttpRequest, label: str, name: str, *, exact: bool = False) -> NavItem:
    url = reverse(name)
    path = request.path
    active = path == url if exact or url == "/" else path.startswith(url)
    return NavItem(label=label, url=url, active=active)


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    sections = [
        {
            "title": "",
            "items": [_item(request, "Overview", "home"), _item(request, "My usage", "me")],
        },
        {
            "title": "Observe",
            "items": [
                _item(request, "Request log", "requests"),
                _item(request, "Cost reports", "costs"),
            ],
        },
        {
            "title": "Govern",
            "items": [
                _item(request, "Keys", "keys"),
                _item(request, "Budgets and limits", "budgets"),
                _item(request, "Teams and people", "people"),
            ],
        },
        {"title": "Developers", "items": [_item(request, "REST API", "api-swagger")]},
    ]
    if user.is_superuser:
        sections[1]["items"].append(_item(request, "Audit log", "audit"))
        sections[2]["items"].append(_item(request, "Providers and prices", "providers"))
        sections[2]["items"].append(_item(request, "MCP servers", "mcp"))
        sections[2]["items"].append(_item(request, "Single sign-on", "sso"))
        sections.append(
            {"title": "Platform", "items": [_item(request, "Django admin", "admin:index")]}
        )
    return {"nav_sections": sections}
