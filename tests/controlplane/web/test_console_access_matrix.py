"""One access layer: every role × action asked through the console and through the REST API
gets the same answer, and that answer is the one the roles promise.

ok: allowed; forbidden: 403; hidden: the organization or object does not
exist for the asker (404, or a 400 naming the unknown organization where the
API takes it in a query string or body).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from governance import services

PERSONAS = ("alice", "bob", "charlie", "dave", "eve")  # platform admin, admin, developer, viewer, outsider


def _outcome(response: Any) -> str:
    code = response.status_code
    if code < 400:
        return "ok"
    if code == 403:
        return "forbidden"
    if code == 404:
        return "hidden"
    if code == 400 and "No organization" in response.content.decode():
        return "hidden"
    return f"status {code}"


class Setup:
    def __init__(self, acme: Any, people: dict[str, Any]) -> None:
        self.acme = acme
        self.people = people
        self.payments = services.team_create(actor=None, organization=acme, name="Payments")
        self.charlies_key, _ = services.key_create(actor=None, organization=acme, name="charlie laptop", user=people["charlie"])
        self.bobs_key, _ = services.key_create(actor=None, organization=acme, name="bob ci", user=people["bob"])


# action -> (through the console, through the API); each takes (setup, persona name, client).
Call = Callable[[Setup, str, Any], Any]
ACTIONS: dict[str, tuple[Call, Call]] = {
    "list keys": (
        lambda s, who, c: c.get("/keys/", {"org": "acme"}),
        lambda s, who, c: c.get("/api/v1/organizations/acme/keys/"),
    ),
    "create own key": (
        lambda s, who, c: c.post("/keys/", {"org": "acme", "name": f"{who} ui", "user": who if who != "alice" else ""}),
        lambda s, who, c: c.post("/api/v1/organizations/acme/keys/", {"name": f"{who} api", **({"user": who} if who != "alice" else {})}, format="json"),
    ),
    "create a key for charlie": (
        lambda s, who, c: c.post("/keys/", {"org": "acme", "name": "for charlie ui", "user": "charlie"}),
        lambda s, who, c: c.post("/api/v1/organizations/acme/keys/", {"name": "for charlie api", "user": "charlie"}, format="json"),
    ),
    "disable charlie's key": (
        lambda s, who, c: c.post(f"/keys/{s.charlies_key.pk}/disable/"),
        lambda s, who, c: c.post(f"/api/v1/keys/{s.charlies_key.pk}/disable/"),
    ),
    "rotate bob's key": (
        lambda s, who, c: c.post(f"/keys/{s.bobs_key.pk}/rotate/", {"grace_hours": "1"}),
        lambda s, who, c: c.post(f"/api/v1/keys/{s.bobs_key.pk}/rotate/", {"grace_seconds": 3600}, format="json"),
    ),
    "set the team budget": (
        lambda s, who, c: c.post("/budgets/set/", {"org": "acme", "target": "team:payments", "amount_usd": "50", "period": "monthly"}),
        lambda s, who, c: c.post("/api/v1/organizations/acme/budgets/", {"level": "team", "team": "payments", "amount_usd": "50", "period": "monthly"}, format="json"),
    ),
    "read budgets": (
        lambda s, who, c: c.get("/budgets/", {"org": "acme"}),
        lambda s, who, c: c.get("/api/v1/organizations/acme/budgets/"),
    ),
    "read the cost report": (
        lambda s, who, c: c.get("/costs/", {"org": "acme", "first": "team"}),
        lambda s, who, c: c.get("/api/v1/reports/costs/", {"organization": "acme", "group_by": "team"}),
    ),
    "read the request log": (
        lambda s, who, c: c.get("/requests/", {"org": "acme"}),
        lambda s, who, c: c.get("/api/v1/requests/", {"organization": "acme"}),
    ),
    "move charlie to payments": (
        lambda s, who, c: c.post("/people/charlie/", {"org": "acme", "team": "payments", "role": "developer"}),
        lambda s, who, c: c.put("/api/v1/organizations/acme/members/charlie/", {"team": "payments", "role": "developer"}, format="json"),
    ),
    "read the audit trail": (
        lambda s, who, c: c.get("/audit/"),
        lambda s, who, c: c.get("/api/v1/audit/"),
    ),
}  # fmt: skip

EXPECTED = {
    #                           alice        bob          charlie      dave         eve
    "list keys":                ("ok",        "ok",        "ok",        "ok",        "hidden"),
    "create own key":           ("ok",        "ok",        "ok",        "forbidden", "hidden"),
    "create a key for charlie": ("ok",        "ok",        "ok",        "forbidden", "hidden"),
    "disable charlie's key":    ("ok",        "ok",        "ok",        "forbidden", "hidden"),
    "rotate bob's key":         ("ok",        "ok",        "hidden",    "forbidden", "hidden"),
    "set the team budget":      ("ok",        "ok",        "forbidden", "forbidden", "hidden"),
    "read budgets":             ("ok",        "ok",        "ok",        "ok",        "hidden"),
    "read the cost report":     ("ok",        "ok",        "ok",        "ok",        "hidden"),
    "read the request log":     ("ok",        "ok",        "ok",        "ok",        "hidden"),
    "move charlie to payments": ("ok",        "ok",        "forbidden", "forbidden", "hidden"),
    "read the audit trail":     ("ok",        "forbidden", "forbidden", "forbidden", "forbidden"),
}  # fmt: skip


@pytest.mark.parametrize("action", list(ACTIONS))
def test_it_answers_every_role_the_same_in_the_console_and_the_api(
    action, acme, alice, bob, charlie, dave, eve, client_for
) -> None:
    people = {"alice": alice, "bob": bob, "charlie": charlie, "dave": dave, "eve": eve}
    through_ui, through_api = ACTIONS[action]
    # Every action can be repeated, so one persona's change never decides the next one's answer.
    setup = Setup(acme, people)
    answers = {}
    for who in PERSONAS:
        browser = Client()
        browser.force_login(people[who])
        ui = _outcome(through_ui(setup, who, browser))
        api = _outcome(through_api(setup, who, client_for(people[who])))
        answers[who] = (ui, api)
    assert {who: ui for who, (ui, _) in answers.items()} == {who: api for who, (_, api) in answers.items()}, answers
    assert tuple(ui for ui, _ in answers.values()) == EXPECTED[action], answers
