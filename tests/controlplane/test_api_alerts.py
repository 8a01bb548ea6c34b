from __future__ import annotations

import pytest

from audit.models import AuditEvent
from governance import sealing
from governance.models import AlertChannel, Budget

CHANNELS = "/api/v1/organizations/acme/alert-channels/"


def test_it_adds_a_signed_webhook_and_shows_its_secret_once(client_for, bob) -> None:
    client = client_for(bob)
    url = "https://hooks.example.com/tollgate/T0K3N"
    response = client.post(CHANNELS, {"name": "finance", "kind": "webhook", "url": url}, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert len(created["signing_secret"]) > 30 and created["destination"] == "hooks.example.com"
    channel = AlertChannel.objects.get()
    # The URL and the secret are sealed at rest and kept out of the audit trail.
    assert url not in channel.url_sealed and sealing.unseal(channel.url_sealed) == url
    assert sealing.unseal(channel.secret_sealed) == created["signing_secret"]
    event = AuditEvent.objects.get(action="alert_channel.create")
    assert url not in str(event.after) and created["signing_secret"] not in str(event.after)
    listed = client.get(CHANNELS).json()["results"]
    assert listed == [{k: v for k, v in created.items() if k != "signing_secret"}]


def test_it_takes_an_email_channel_without_a_url(client_for, bob) -> None:
    client = client_for(bob)
    assert client.post(CHANNELS, {"name": "lead", "kind": "email", "email": "lead@example.com"}, format="json").status_code == 201
    refused = client.post(CHANNELS, {"name": "x", "kind": "email", "url": "https://a.example"}, format="json")
    assert refused.status_code == 400
    refused = client.post(CHANNELS, {"name": "y", "kind": "slack"}, format="json")
    assert refused.status_code == 400 and "url" in refused.json()


@pytest.mark.parametrize("persona", ["charlie", "dave", "eve"])
def test_it_keeps_alert_channels_to_the_organizations_admins(client_for, persona, request) -> None:
    client = client_for(request.getfixturevalue(persona))
    body = {"name": "x", "kind": "slack", "url": "https://hooks.slack.com/services/T/B/X"}
    assert client.post(CHANNELS, body, format="json").status_code in (403, 404)
    assert client.get("/api/v1/organizations/acme/alert-deliveries/").status_code in (403, 404)
    assert not AlertChannel.objects.exists()


def test_it_deletes_a_channel(client_for, bob) -> None:
    client = client_for(bob)
    created = client.post(CHANNELS, {"name": "chat", "kind": "slack", "url": "https://hooks.slack.com/services/T/B/X"}, format="json").json()
    assert client.delete(f"{CHANNELS}{created['id']}/").status_code == 204
    assert not AlertChannel.objects.exists()
    assert AuditEvent.objects.filter(action="alert_channel.delete").count() == 1


def test_it_sets_a_budgets_alert_thresholds(client_for, bob) -> None:
    client = client_for(bob)
    budgets = "/api/v1/organizations/acme/budgets/"
    body = {"level": "organization", "amount_usd": "100", "period": "monthly"}
    created = client.post(budgets, body, format="json").json()
    assert created["alert_thresholds"] == [75, 90, 100]
    changed = client.post(budgets, body | {"alert_thresholds": [95, 50]}, format="json").json()
    assert changed["alert_thresholds"] == [50, 95] and Budget.objects.get().alert_thresholds == [50, 95]
    kept = client.post(budgets, body | {"amount_usd": "200"}, format="json").json()
    assert kept["alert_thresholds"] == [50, 95]
    assert client.post(budgets, body | {"alert_thresholds": [0]}, format="json").status_code == 400
