from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent
from governance import sealing, services
from governance.models import Provider

CREDENTIAL = "sk-ant-api03-test-credential-do-not-log"
NEW_PROVIDER = {
    "name": "anthropic-main",
    "kind": "anthropic",
    "base_url": "https://api.anthropic.com/",
    "credential": CREDENTIAL,
}


def test_it_stores_a_provider_credential_sealed_and_never_returns_it(
    client_for, alice, committed_snapshot
) -> None:
    response = client_for(alice).post("/api/v1/providers/", NEW_PROVIDER, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["has_credential"] is True
    assert body["base_url"] == "https://api.anthropic.com"
    assert CREDENTIAL not in response.content.decode()

    provider = Provider.objects.get(name="anthropic-main")
    assert CREDENTIAL not in provider.credential_sealed
    assert sealing.unseal(provider.credential_sealed) == CREDENTIAL

    event = AuditEvent.objects.get(action="provider.create")
    assert event.actor == alice
    assert CREDENTIAL not in json.dumps([event.before, event.after])

    listed = client_for(alice).get("/api/v1/providers/")
    assert CREDENTIAL not in listed.content.decode()
    assert provider.credential_sealed not in listed.content.decode()
    assert listed.json()["results"][0]["has_credential"] is True

    # The data plane gets the sealed form only, and unseals it in memory.
    published = committed_snapshot()["providers"]
    assert [p["credential_sealed"] for p in published] == [provider.credential_sealed]


@pytest.mark.parametrize("persona", ["bob", "charlie", "eve"])
def test_it_keeps_providers_to_platform_admins(client_for, persona, request) -> None:
    client = client_for(request.getfixturevalue(persona))
    assert client.get("/api/v1/providers/").status_code == 403
    assert client.post("/api/v1/providers/", NEW_PROVIDER, format="json").status_code == 403
    assert not Provider.objects.exists()


def test_it_rejects_an_unknown_provider_kind(client_for, alice) -> None:
    response = client_for(alice).post(
        "/api/v1/providers/", NEW_PROVIDER | {"kind": "palm"}, format="json"
    )
    assert response.status_code == 400
    assert "kind" in response.json()


def test_it_reports_a_duplicate_provider_name(client_for, alice) -> None:
    services.provider_create(actor=None, **NEW_PROVIDER)
    response = client_for(alice).post("/api/v1/providers/", NEW_PROVIDER, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_it_lists_providers_in_constant_queries(
    client_for, alice, django_assert_num_queries
) -> None:
    for i in range(10):
        services.provider_create(actor=None, **NEW_PROVIDER | {"name": f"p{i}"})
    client = client_for(alice)
    # token, count, page
    with django_assert_num_queries(3):
        response = client.get("/api/v1/providers/")
    assert response.json()["count"] == 10


def test_it_adds_and_removes_further_credentials(client_for, alice, bob) -> None:
    from audit.models import AuditEvent
    from governance.models import ProviderCredential

    provider = services.provider_create(actor=None, **NEW_PROVIDER)
    url = f"/api/v1/providers/{provider.id}/credentials/"
    response = client_for(alice).post(url, {"name": "second", "credential": "sk-second-secret", "weight": 3}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["weight"] == 3 and "credential" not in response.json()
    stored = ProviderCredential.objects.get()
    assert "sk-second-secret" not in stored.credential_sealed
    listed = client_for(alice).get(url)
    assert listed.status_code == 200 and "sk-second" not in listed.content.decode()
    assert client_for(bob).post(url, {"name": "x", "credential": "y"}, format="json").status_code == 403
    assert client_for(alice).delete(f"{url}{stored.id}/").status_code == 204
    assert list(AuditEvent.objects.filter(action__startswith="provider.credential").values_list("action", flat=True)) == [
        "provider.credential_remove",
        "provider.credential_add",
    ]
