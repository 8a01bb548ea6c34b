from __future__ import annotations

import pytest

from audit.models import AuditEvent
from devicelogin.settings_policy import checksum
from governance import services

URL = "/api/v1/organizations/acme/managed-settings/"


def test_an_admin_sets_the_organizations_and_a_teams_settings(client_for, bob, acme) -> None:
    services.team_create(actor=None, organization=acme, name="Payments")
    client = client_for(bob)
    assert client.get(URL).status_code == 404
    document = {"env": {"DISABLE_TELEMETRY": "1"}, "permissions": {"deny": ["Bash(curl:*)"]}}
    answer = client.put(URL, {"settings": document}, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["checksum"] == checksum(document) and answer.json()["team"] is None
    assert client.get(URL).json()["settings"] == document
    team = client.put(f"{URL}?team=payments", {"settings": {"model": "claude-sonnet-4-5"}}, format="json")
    assert team.status_code == 200 and team.json()["team"] == "payments"
    assert client.get(URL).json()["settings"] == document  # the organization's, unchanged
    assert AuditEvent.objects.filter(action="managed_settings.set").count() == 2


def test_it_refuses_settings_the_gateway_would_not_honour(client_for, bob, acme) -> None:
    services.allowed_models_set(actor=None, target=acme, patterns=["claude-haiku-*"])
    client = client_for(bob)
    refused = client.put(URL, {"settings": {"availableModels": ["claude-opus-4-1"]}}, format="json")
    assert refused.status_code == 400 and "allowlist" in str(refused.json())
    assert client.put(URL, {"settings": {"env": {"A": 1}}}, format="json").status_code == 400
    assert client.put(URL, {"settings": ["not", "an", "object"]}, format="json").status_code == 400


@pytest.mark.parametrize("persona", ["charlie", "dave", "eve"])
def test_only_the_organizations_admins_see_or_set_them(client_for, persona, request) -> None:
    client = client_for(request.getfixturevalue(persona))
    assert client.put(URL, {"settings": {}}, format="json").status_code in (403, 404)
    assert client.get(URL).status_code in (403, 404)
