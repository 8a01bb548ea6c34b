"""The console's single sign-on page: admins add and edit identity providers and map groups."""

from __future__ import annotations

from django.test import Client

from governance import sealing
from identity import services
from identity.models import GroupMapping, IdentityProvider, ScimToken


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_lets_an_admin_add_a_provider_and_map_a_group(bob, acme) -> None:
    client = _signed_in(bob)
    page = client.get("/single-sign-on/?org=acme")
    assert page.status_code == 200
    assert b"/sso/callback/" in page.content and b"Microsoft Entra ID" in page.content
    response = client.post(
        "/single-sign-on/add/",
        {
            "org": "acme",
            "name": "Entra",
            "preset": "entra",
            "issuer": "https://login.microsoftonline.com/t/v2.0",
            "client_id": "app-id",
            "client_secret": "entra-secret",
            "allowed_domains": "acme.example, acme.dev",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    idp = IdentityProvider.objects.get()
    assert (idp.groups_claim, idp.allowed_domains) == ("groups", ["acme.dev", "acme.example"])
    assert sealing.unseal(idp.client_secret_sealed) == "entra-secret"
    page = client.get("/single-sign-on/?org=acme")
    assert (
        b"entra-secret" not in page.content
        and idp.client_secret_sealed.encode() not in page.content
    )
    client.post(
        f"/single-sign-on/{idp.pk}/mappings/", {"group": "0b1c-eng", "role": "admin", "team": ""}
    )
    assert GroupMapping.objects.get().role == "admin"
    # Editing without a secret keeps the sealed one.
    prefix = f"idp{idp.pk}-"
    client.post(
        f"/single-sign-on/{idp.pk}/",
        {
            prefix + "name": "Entra ID",
            prefix + "preset": "entra",
            prefix + "issuer": idp.issuer,
            prefix + "client_id": "app-id",
            prefix + "scopes": idp.scopes,
            prefix + "email_claim": "email",
            prefix + "groups_claim": "groups",
            prefix + "groups_from_graph": "on",
        },
    )
    idp.refresh_from_db()
    assert (idp.name, idp.enabled, idp.groups_from_graph) == ("Entra ID", False, True)
    assert sealing.unseal(idp.client_secret_sealed) == "entra-secret"


def test_it_keeps_the_page_from_developers_and_viewers(charlie, dave, eve, acme) -> None:
    assert _signed_in(charlie).get("/single-sign-on/?org=acme").status_code == 403
    assert _signed_in(dave).get("/single-sign-on/?org=acme").status_code == 403
    assert _signed_in(eve).get("/single-sign-on/?org=acme").status_code == 404
    assert _signed_in(charlie).post("/single-sign-on/add/", {"org": "acme"}).status_code == 403


def test_it_issues_and_revokes_a_scim_token_once_shown(bob, acme) -> None:
    idp = services.identity_provider_create(
        actor=bob,
        organization=acme,
        name="Okta",
        preset="okta",
        issuer="https://acme.okta.com",
        client_id="c",
    )
    client = _signed_in(bob)
    page = client.post(f"/single-sign-on/{idp.pk}/scim-tokens/", {"name": "okta"}, follow=True)
    token = ScimToken.objects.get()
    shown = page.content.decode()
    assert f"{token.prefix}-" in shown and "/scim/v2/" in shown
    again = client.get("/single-sign-on/?org=acme").content.decode()
    assert f"{token.prefix}-" not in again and f"{token.prefix}…" in again
    client.post(f"/single-sign-on/{idp.pk}/scim-tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None
