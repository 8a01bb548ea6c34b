"""Identity providers and group mappings through the admin API: admins of the organization
only, the client secret sealed at rest and never returned, every change audited."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from audit.models import AuditEvent
from governance import sealing, services
from identity.models import GroupMapping, IdentityProvider

SECRET = "okta-client-secret-do-not-log"
OKTA = {
    "name": "Okta",
    "preset": "okta",
    "issuer": "https://acme.okta.com/oauth2/default",
    "client_id": "0oa1acme",
    "client_secret": SECRET,
    "allowed_domains": ["Acme.example", "@acme.dev"],
}


def test_it_creates_a_provider_from_a_preset_with_the_secret_sealed(client_for, bob, acme) -> None:
    response = client_for(bob).post(
        "/api/v1/organizations/acme/identity-providers/", OKTA, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body | {"id": 0, "created_at": ""} == {
        "id": 0,
        "organization": "acme",
        "slug": "acme-okta",
        "name": "Okta",
        "preset": "okta",
        "issuer": "https://acme.okta.com/oauth2/default",
        "client_id": "0oa1acme",
        "has_client_secret": True,
        # Okta's preset: its groups scope and claim.
        "scopes": "openid email profile groups",
        "email_claim": "email",
        "groups_claim": "groups",
        "allowed_domains": ["acme.dev", "acme.example"],
        "groups_from_graph": False,
        "enabled": True,
        "created_at": "",
    }
    assert SECRET not in response.content.decode()
    idp = IdentityProvider.objects.get()
    assert SECRET not in idp.client_secret_sealed
    assert sealing.unseal(idp.client_secret_sealed) == SECRET
    event = AuditEvent.objects.get(action="identity_provider.create")
    assert event.actor == bob
    assert SECRET not in json.dumps([event.before, event.after])
    assert event.after["has_client_secret"] is True
    listed = client_for(bob).get("/api/v1/organizations/acme/identity-providers/")
    assert (
        SECRET not in listed.content.decode()
        and idp.client_secret_sealed not in listed.content.decode()
    )


def test_it_takes_each_presets_claim_names(client_for, bob, acme) -> None:
    client = client_for(bob)
    for preset, issuer in [
        ("entra", "https://login.microsoftonline.com/tenant/v2.0"),
        ("keycloak", "https://kc.example/realms/acme"),
        ("google", "https://accounts.google.com"),
    ]:
        response = client.post(
            "/api/v1/organizations/acme/identity-providers/",
            {"name": preset, "preset": preset, "issuer": issuer, "client_id": "c"},
            format="json",
        )
        assert response.status_code == 201, response.json()
    claims = {
        i.preset: (i.email_claim, i.groups_claim, i.scopes) for i in IdentityProvider.objects.all()
    }
    assert claims == {
        "entra": ("email", "groups", "openid email profile"),
        "keycloak": ("email", "groups", "openid email profile"),
        # Google Workspace sends no groups.
        "google": ("email", "", "openid email profile"),
    }


def test_it_updates_only_what_is_sent_and_replaces_the_secret(client_for, bob, acme) -> None:
    client = client_for(bob)
    idp_id = client.post(
        "/api/v1/organizations/acme/identity-providers/", OKTA, format="json"
    ).json()["id"]
    sealed = IdentityProvider.objects.get().client_secret_sealed
    response = client.patch(
        f"/api/v1/identity-providers/{idp_id}/", {"enabled": False}, format="json"
    )
    assert response.status_code == 200, response.json()
    idp = IdentityProvider.objects.get()
    assert (idp.enabled, idp.client_secret_sealed, idp.name) == (False, sealed, "Okta")
    client.patch(
        f"/api/v1/identity-providers/{idp_id}/", {"client_secret": "new-secret"}, format="json"
    )
    assert sealing.unseal(IdentityProvider.objects.get().client_secret_sealed) == "new-secret"
    event = AuditEvent.objects.filter(action="identity_provider.update").order_by("seq").last()
    assert event.after["client_secret_replaced"] is True and "new-secret" not in json.dumps(
        event.after
    )
    assert client.delete(f"/api/v1/identity-providers/{idp_id}/").status_code == 204
    assert not IdentityProvider.objects.exists()
    assert AuditEvent.objects.filter(action="identity_provider.delete").count() == 1


def test_it_refuses_bad_configuration(client_for, bob, acme) -> None:
    client = client_for(bob)
    url = "/api/v1/organizations/acme/identity-providers/"
    assert client.post(url, OKTA | {"scopes": "email profile"}, format="json").json()["scopes"]
    assert (
        client.post(url, OKTA | {"allowed_domains": ["not a domain"]}, format="json").status_code
        == 400
    )
    assert client.post(url, OKTA | {"preset": "auth0"}, format="json").status_code == 400
    assert client.post(url, OKTA | {"issuer": "ftp://x"}, format="json").status_code == 400
    assert not IdentityProvider.objects.exists()


@pytest.mark.parametrize(("persona", "status"), [("charlie", 403), ("dave", 403), ("eve", 404)])
def test_it_keeps_providers_to_the_organizations_admins(
    client_for, bob, acme, persona, status, request
) -> None:
    idp_id = (
        client_for(bob)
        .post("/api/v1/organizations/acme/identity-providers/", OKTA, format="json")
        .json()["id"]
    )
    client = client_for(request.getfixturevalue(persona))
    assert client.get("/api/v1/organizations/acme/identity-providers/").status_code == status
    assert (
        client.post(
            "/api/v1/organizations/acme/identity-providers/", OKTA | {"slug": "x"}, format="json"
        ).status_code
        == status
    )
    assert client.get(f"/api/v1/identity-providers/{idp_id}/").status_code == status
    assert (
        client.patch(
            f"/api/v1/identity-providers/{idp_id}/", {"enabled": False}, format="json"
        ).status_code
        == status
    )
    assert client.delete(f"/api/v1/identity-providers/{idp_id}/").status_code == status
    assert client.get(f"/api/v1/identity-providers/{idp_id}/group-mappings/").status_code == status
    assert IdentityProvider.objects.get().enabled is True


def test_it_answers_anonymous_callers_401(anonymous, bob, acme) -> None:
    assert anonymous.get("/api/v1/organizations/acme/identity-providers/").status_code == 401
    assert anonymous.get("/api/v1/identity-providers/1/group-mappings/").status_code == 401


def test_it_maps_groups_to_a_role_and_a_team(client_for, bob, acme, globex) -> None:
    client = client_for(bob)
    services.team_create(actor=None, organization=acme, name="Platform", slug="platform")
    services.team_create(actor=None, organization=globex, name="Sales", slug="sales")
    idp_id = client.post(
        "/api/v1/organizations/acme/identity-providers/", OKTA, format="json"
    ).json()["id"]
    url = f"/api/v1/identity-providers/{idp_id}/group-mappings/"
    response = client.post(
        url, {"group": "eng-platform", "role": "developer", "team": "platform"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json() | {"id": 0} == {
        "id": 0,
        "group": "eng-platform",
        "role": "developer",
        "team": "platform",
    }
    # Setting a group again changes its mapping.
    client.post(url, {"group": "eng-platform", "role": "admin", "team": "platform"}, format="json")
    assert client.post(url, {"group": "*", "role": "viewer"}, format="json").status_code == 201
    # Another organization's team is not there to map to.
    assert (
        client.post(
            url, {"group": "sales", "role": "viewer", "team": "sales"}, format="json"
        ).status_code
        == 400
    )
    assert client.post(url, {"group": "x", "role": "owner"}, format="json").status_code == 400
    assert [(m["group"], m["role"], m["team"]) for m in client.get(url).json()] == [
        ("*", "viewer", None),
        ("eng-platform", "admin", "platform"),
    ]
    mapping = GroupMapping.objects.get(group="*")
    assert client.delete(f"{url}{mapping.pk}/").status_code == 204
    actions = list(
        AuditEvent.objects.filter(action__startswith="group_mapping.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "group_mapping.set",
        "group_mapping.set",
        "group_mapping.set",
        "group_mapping.delete",
    ]


def test_it_moves_the_client_secret_to_a_new_encryption_key_on_reseal(
    client_for, bob, acme, settings
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    client_for(bob).post("/api/v1/organizations/acme/identity-providers/", OKTA, format="json")
    settings.ENCRYPTION_KEYS = [new, old]
    counts = services.secrets_reseal(actor=None)
    assert counts["identity.IdentityProvider"] == 1
    settings.ENCRYPTION_KEYS = [new]
    assert sealing.unseal(IdentityProvider.objects.get().client_secret_sealed) == SECRET
