"""SCIM 2.0 provisioning as Okta and Entra ID speak it: a bearer token per identity
provider, Users and Groups, group mappings applied on every change, and deactivation
disabling the person's keys (in the snapshot the data plane reads) and sign-ins."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from audit.models import AuditEvent
from governance import services as governance
from governance.keys import key_digest
from governance.models import KeyStatus, Membership, Role
from identity import services
from identity.claims import Person, SignInRefused
from identity.models import IdentityLink, ScimToken

User = get_user_model()
SCIM = "application/scim+json"


@pytest.fixture
def okta(bob: Any, acme: Any) -> Any:
    idp = services.identity_provider_create(
        actor=bob,
        organization=acme,
        name="Okta",
        preset="okta",
        issuer="https://acme.okta.com/oauth2/default",
        client_id="c",
        allowed_domains=["acme.example"],
    )
    platform = governance.team_create(
        actor=bob, organization=acme, name="Platform", slug="platform"
    )
    services.group_mapping_set(
        actor=bob, idp=idp, group="Engineering", role=Role.DEVELOPER, team=platform
    )
    return idp


def _scim(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def scim(okta: Any, bob: Any) -> APIClient:
    _, secret = services.scim_token_issue(actor=bob, idp=okta, name="okta provisioning")
    return _scim(secret)


def _post(client: APIClient, path: str, body: dict[str, Any]) -> Any:
    return client.generic("POST", path, data=json.dumps(body), content_type=SCIM)


def _patch(client: APIClient, path: str, operations: list[dict[str, Any]]) -> Any:
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}
    return client.generic("PATCH", path, data=json.dumps(body), content_type=SCIM)


ADA = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "ada@acme.example",
    "externalId": "00u1ada",
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
    "emails": [{"value": "ada@acme.example", "primary": True, "type": "work"}],
    "active": True,
}


def test_it_issues_tokens_to_admins_only_and_keeps_only_their_digest(
    client_for, bob, charlie, eve, okta
) -> None:
    url = f"/api/v1/identity-providers/{okta.pk}/scim-tokens/"
    response = client_for(bob).post(url, {"name": "okta"}, format="json")
    assert response.status_code == 201, response.json()
    secret = response.json()["token"]
    token = ScimToken.objects.get(prefix=response.json()["prefix"])
    assert secret.startswith(token.prefix) and token.digest == key_digest(secret)
    assert secret not in client_for(bob).get(url).content.decode()
    assert client_for(charlie).post(url, {}, format="json").status_code == 403
    assert client_for(eve).get(url).status_code == 404
    assert _scim(secret).get("/scim/v2/Users").status_code == 200
    assert client_for(bob).delete(f"{url}{token.pk}/").json()["revoked_at"]
    refused = _scim(secret).get("/scim/v2/Users")
    assert refused.status_code == 401 and refused.json()["schemas"] == [
        "urn:ietf:params:scim:api:messages:2.0:Error"
    ]


def test_it_refuses_callers_without_a_token(anonymous, okta) -> None:
    assert anonymous.get("/scim/v2/Users").status_code == 401
    assert _scim("tgscim-00000000-nope").get("/scim/v2/Users").status_code == 401
    # An API token of an admin is not a SCIM token.
    assert anonymous.get("/scim/v2/Groups", HTTP_AUTHORIZATION="Token tgapi-x").status_code == 401


def test_it_provisions_a_user_and_maps_their_groups(scim, okta) -> None:
    created = _post(scim, "/scim/v2/Users", ADA)
    assert created.status_code == 201, created.json()
    assert created["Content-Type"].startswith(SCIM)
    body = created.json()
    assert (body["userName"], body["externalId"], body["active"], body["name"]["givenName"]) == (
        "ada@acme.example",
        "00u1ada",
        True,
        "Ada",
    )
    assert _post(scim, "/scim/v2/Users", ADA).status_code == 409
    listed = scim.get("/scim/v2/Users", {"filter": 'userName eq "ada@acme.example"'}).json()
    assert (listed["totalResults"], listed["Resources"][0]["id"]) == (1, body["id"])
    assert (
        scim.get("/scim/v2/Users", {"filter": 'userName eq "nobody@acme.example"'}).json()[
            "totalResults"
        ]
        == 0
    )
    ada = User.objects.get(email="ada@acme.example")
    # Provisioned, but in no mapped group yet: no membership.
    assert not Membership.objects.filter(user=ada).exists()

    group = _post(
        scim, "/scim/v2/Groups", {"displayName": "Engineering", "members": [{"value": body["id"]}]}
    )
    assert group.status_code == 201, group.json()
    assert [m["value"] for m in group.json()["members"]] == [body["id"]]
    membership = Membership.objects.get(user=ada)
    assert (membership.role, membership.team.slug) == (Role.DEVELOPER, "platform")
    assert (
        AuditEvent.objects.filter(action="sso.groups_change", actor_label="scim:acme-okta").count()
        == 1
    )

    # Out of the group: out of the organization, keys disabled.
    key, _ = governance.key_create(
        actor=None, organization=okta.organization, name="k", user=ada, team=membership.team
    )
    gid = group.json()["id"]
    removed = _patch(
        scim,
        f"/scim/v2/Groups/{gid}",
        [{"op": "remove", "path": f'members[value eq "{body["id"]}"]'}],
    )
    assert removed.status_code == 200, removed.json()
    key.refresh_from_db()
    assert key.status == KeyStatus.DISABLED and not Membership.objects.filter(user=ada).exists()
    # Back in: the membership returns, the key stays off until an admin enables it.
    _patch(
        scim,
        f"/scim/v2/Groups/{gid}",
        [{"op": "add", "path": "members", "value": [{"value": body["id"]}]}],
    )
    ada.refresh_from_db()
    key.refresh_from_db()
    assert (
        ada.is_active
        and Membership.objects.filter(user=ada).exists()
        and key.status == KeyStatus.DISABLED
    )


def test_it_deactivates_keys_and_sign_ins_the_way_entra_sends_it(
    scim, okta, committed_snapshot
) -> None:
    uid = _post(scim, "/scim/v2/Users", ADA).json()["id"]
    _post(scim, "/scim/v2/Groups", {"displayName": "Engineering", "members": [{"value": uid}]})
    ada = User.objects.get(email="ada@acme.example")
    team = Membership.objects.get(user=ada).team
    key, _ = governance.key_create(
        actor=None, organization=okta.organization, name="laptop", user=ada, team=team
    )
    person = Person(
        subject="00u1ada",
        email="ada@acme.example",
        email_verified=True,
        name="",
        groups=("Engineering",),
    )
    # The provisioned person signs in through the provider and is the same account.
    assert services.sso_sign_in(idp=okta, person=person).pk == ada.pk

    # Entra ID's form: a replace with path "active" and the string "False".
    response = _patch(
        scim, f"/scim/v2/Users/{uid}", [{"op": "Replace", "path": "active", "value": "False"}]
    )
    assert response.status_code == 200 and response.json()["active"] is False
    ada.refresh_from_db()
    key.refresh_from_db()
    assert (ada.is_active, key.status) == (False, KeyStatus.DISABLED)
    published = {k["id"]: k for k in committed_snapshot()["keys"]}
    assert published[key.pk]["status"] == KeyStatus.DISABLED
    with pytest.raises(SignInRefused) as refused:
        services.sso_sign_in(idp=okta, person=person)
    assert refused.value.reason == "suspended"
    assert "scim.user_deactivate" in AuditEvent.objects.filter(
        actor_label="scim:acme-okta"
    ).values_list("action", flat=True)

    # Okta's form: replace with a value object. Back on, the groups apply again.
    _patch(scim, f"/scim/v2/Users/{uid}", [{"op": "replace", "value": {"active": True}}])
    ada.refresh_from_db()
    assert ada.is_active and Membership.objects.get(user=ada).role == Role.DEVELOPER
    assert services.sso_sign_in(idp=okta, person=person).pk == ada.pk

    assert scim.delete(f"/scim/v2/Users/{uid}").status_code == 204
    assert scim.get(f"/scim/v2/Users/{uid}").status_code == 404
    ada.refresh_from_db()
    assert not ada.is_active and not IdentityLink.objects.filter(user=ada, scim=True).exists()


def test_it_keeps_each_providers_people_to_itself(scim, okta, eve, globex) -> None:
    uid = _post(scim, "/scim/v2/Users", ADA).json()["id"]
    other = services.identity_provider_create(
        actor=eve,
        organization=globex,
        name="Entra",
        preset="entra",
        issuer="https://login.example/t/v2.0",
        client_id="c",
    )
    _, secret = services.scim_token_issue(actor=eve, idp=other)
    theirs = _scim(secret)
    assert theirs.get("/scim/v2/Users").json()["totalResults"] == 0
    assert theirs.get(f"/scim/v2/Users/{uid}").status_code == 404
    assert (
        _patch(
            theirs, f"/scim/v2/Users/{uid}", [{"op": "replace", "path": "active", "value": False}]
        ).status_code
        == 404
    )
    assert (
        _post(
            theirs, "/scim/v2/Groups", {"displayName": "x", "members": [{"value": uid}]}
        ).status_code
        == 400
    )
    assert User.objects.get(email="ada@acme.example").is_active


def test_it_refuses_addresses_outside_the_allowed_domains(scim) -> None:
    response = _post(scim, "/scim/v2/Users", ADA | {"userName": "m@evil.example", "emails": []})
    assert response.status_code == 400 and "outside the domains" in response.json()["detail"]
    assert scim.get("/scim/v2/Users", {"filter": "title sw x"}).status_code == 400
    assert scim.get("/scim/v2/ServiceProviderConfig").json()["patch"] == {"supported": True}


@pytest.fixture
def _state_in_tmp(settings: Any) -> None:
    """Keep the session's snapshot and spool, where the gateway process reads (the
    control-plane default moves them into each test's own directory)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


BODY = b'{"model":"claude-sonnet-4-6","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}'


# Real commits, so the on-commit snapshot publish runs as in production.
@pytest.mark.django_db(transaction=True)
def test_it_cuts_a_deactivated_persons_key_on_the_data_plane_within_a_second(
    world, gateway, publish
) -> None:
    idp = services.identity_provider_create(
        actor=world.alice,
        organization=world.acme,
        name="Entra",
        preset="entra",
        issuer="https://l.example/t/v2.0",
        client_id="c",
    )
    _, secret = services.scim_token_issue(actor=world.alice, idp=idp)
    client = _scim(secret)
    # charlie already has an account in this organization alone: SCIM takes it over.
    uid = _post(
        client, "/scim/v2/Users", ADA | {"userName": "charlie@example.com", "emails": []}
    ).json()["id"]
    assert IdentityLink.objects.get(pk=uid).user == world.charlie
    publish()

    def status() -> int:
        return httpx.post(
            f"{gateway.url}/v1/messages",
            content=BODY,
            headers={"x-api-key": world.secret, "content-type": "application/json"},
            timeout=5,
        ).status_code

    assert status() == 200
    _patch(client, f"/scim/v2/Users/{uid}", [{"op": "Replace", "path": "active", "value": "False"}])
    deactivated_at = time.monotonic()
    refused_after = None
    while time.monotonic() - deactivated_at < 3:
        if status() == 401:
            refused_after = time.monotonic() - deactivated_at
            break
        time.sleep(0.01)
    assert refused_after is not None and refused_after < 1.0, refused_after
