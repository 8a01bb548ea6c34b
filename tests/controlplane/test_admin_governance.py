from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from governance import sealing, services
from governance.keys import key_digest
from governance.models import (
    KeyStatus,
    Membership,
    ModelPrice,
    Organization,
    Provider,
    Team,
    VirtualKey,
)

CREDENTIAL = "sk-ant-admin-form-credential"


@pytest.fixture
def staff(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def test_it_adds_an_organization_through_the_service(staff: Client, alice) -> None:
    response = staff.post(
        "/admin/governance/organization/add/", {"name": "Initech", "slug": "initech"}
    )
    assert response.status_code == 302
    org = Organization.objects.get(slug="initech")
    event = AuditEvent.objects.get(action="organization.create")
    assert (event.actor, event.target_id) == (alice, str(org.pk))


def test_it_offers_no_edit_or_delete_without_a_service(staff: Client, acme) -> None:
    page = staff.get(f"/admin/governance/organization/{acme.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert staff.post(f"/admin/governance/organization/{acme.pk}/delete/").status_code == 403


def test_it_adds_a_team_through_the_service(staff: Client, alice, acme) -> None:
    response = staff.post(
        "/admin/governance/team/add/", {"organization": acme.pk, "name": "Ops", "slug": "ops"}
    )
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="team.create").actor == alice
    assert Team.objects.filter(organization=acme, slug="ops").exists()


def test_it_changes_a_membership_through_the_service(staff: Client, alice, acme, charlie) -> None:
    membership = Membership.objects.get(user=charlie)
    response = staff.post(
        f"/admin/governance/membership/{membership.pk}/change/", {"role": "viewer", "team": ""}
    )
    assert response.status_code == 302
    assert Membership.objects.get(pk=membership.pk).role == "viewer"
    event = AuditEvent.objects.filter(action="membership.set", actor=alice).get()
    assert (event.before["role"], event.after["role"]) == ("developer", "viewer")


def test_it_refuses_a_membership_team_of_another_org(staff: Client, acme, globex, charlie) -> None:
    sales = services.team_create(actor=None, organization=globex, name="Sales")
    membership = Membership.objects.get(user=charlie)
    response = staff.post(
        f"/admin/governance/membership/{membership.pk}/change/",
        {"role": "developer", "team": sales.pk},
    )
    assert response.status_code == 200
    assert "another organization" in response.content.decode()


def test_it_adds_a_key_and_shows_the_secret_once(staff: Client, alice, acme, charlie) -> None:
    response = staff.post(
        "/admin/governance/virtualkey/add/",
        {
            "organization": acme.pk,
            "name": "ci",
            "team": "",
            "user": charlie.pk,
            "allowed_models": "claude-sonnet-*\nclaude-haiku-*\n",
            "expires_at_0": "",
            "expires_at_1": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    key = VirtualKey.objects.get(name="ci")
    assert key.allowed_models == ["claude-sonnet-*", "claude-haiku-*"]
    assert key.created_by == alice
    assert AuditEvent.objects.get(action="key.create").actor == alice

    # The page after the redirect shows the secret; no later page does.
    first = staff.get(response["Location"]).content.decode()
    secret = first.split("shown only now, is: ", 1)[1].split("<", 1)[0].strip()
    assert key_digest(secret) == key.digest
    for page in (
        staff.get("/admin/governance/virtualkey/"),
        staff.get(f"/admin/governance/virtualkey/{key.pk}/change/"),
    ):
        assert page.status_code == 200
        assert secret not in page.content.decode()
        assert key.digest not in page.content.decode()


def test_it_refuses_a_key_for_a_non_member(staff: Client, acme, eve) -> None:
    response = staff.post(
        "/admin/governance/virtualkey/add/",
        {"organization": acme.pk, "name": "x", "user": eve.pk, "allowed_models": ""},
    )
    assert response.status_code == 200
    assert "not a member of acme" in response.content.decode()
    assert not VirtualKey.objects.exists()


def test_it_disables_and_enables_keys_with_admin_actions(staff: Client, alice, acme) -> None:
    keys = [services.key_create(actor=None, organization=acme, name=f"k{i}")[0] for i in range(2)]
    ids = [k.pk for k in keys]
    response = staff.post(
        "/admin/governance/virtualkey/", {"action": "disable_keys", "_selected_action": ids}
    )
    assert response.status_code == 302
    assert set(VirtualKey.objects.values_list("status", flat=True)) == {KeyStatus.DISABLED}
    assert AuditEvent.objects.filter(action="key.disable", actor=alice).count() == 2

    staff.post("/admin/governance/virtualkey/", {"action": "enable_keys", "_selected_action": ids})
    assert set(VirtualKey.objects.values_list("status", flat=True)) == {KeyStatus.ACTIVE}
    assert AuditEvent.objects.filter(action="key.enable", actor=alice).count() == 2


def test_it_seals_a_provider_credential_entered_in_the_admin(staff: Client, alice) -> None:
    response = staff.post(
        "/admin/governance/provider/add/",
        {
            "name": "anthropic",
            "kind": "anthropic",
            "base_url": "https://api.anthropic.com",
            "is_active": "on",
            "credential": CREDENTIAL,
        },
    )
    assert response.status_code == 302
    provider = Provider.objects.get(name="anthropic")
    assert CREDENTIAL not in provider.credential_sealed
    assert sealing.unseal(provider.credential_sealed) == CREDENTIAL
    assert AuditEvent.objects.get(action="provider.create").actor == alice

    page = staff.get(f"/admin/governance/provider/{provider.pk}/change/").content.decode()
    assert CREDENTIAL not in page
    assert provider.credential_sealed not in page


def test_it_requires_a_credential_for_a_new_provider(staff: Client) -> None:
    response = staff.post(
        "/admin/governance/provider/add/",
        {"name": "p", "kind": "anthropic", "base_url": "https://api.anthropic.com"},
    )
    assert response.status_code == 200
    assert not Provider.objects.exists()


def test_it_keeps_the_credential_when_the_admin_leaves_it_empty(staff: Client, alice) -> None:
    provider = services.provider_create(
        actor=None,
        name="p",
        kind="anthropic",
        base_url="https://old.example",
        credential=CREDENTIAL,
    )
    sealed = provider.credential_sealed
    response = staff.post(
        f"/admin/governance/provider/{provider.pk}/change/",
        {"base_url": "https://new.example", "is_active": "on", "credential": ""},
    )
    assert response.status_code == 302
    provider.refresh_from_db()
    assert (provider.base_url, provider.credential_sealed) == ("https://new.example", sealed)
    event = AuditEvent.objects.get(action="provider.update")
    assert event.actor == alice
    assert (event.before["base_url"], event.after["base_url"]) == (
        "https://old.example",
        "https://new.example",
    )
    assert event.after["credential_changed"] is False
    assert CREDENTIAL not in json.dumps([event.before, event.after])


def test_it_sets_a_price_through_the_service(staff: Client, alice) -> None:
    price = ModelPrice.objects.order_by("model").first()
    assert price is not None
    response = staff.post(
        f"/admin/governance/modelprice/{price.pk}/change/",
        {
            "input_per_mtok": "1",
            "output_per_mtok": "2",
            "cache_write_per_mtok": "0",
            "cache_read_per_mtok": "0",
        },
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="price.set")
    assert event.actor == alice
    assert event.before["input_per_mtok"] == str(price.input_per_mtok)
    assert Decimal(event.after["input_per_mtok"]) == 1


def test_it_rejects_a_negative_price_in_the_admin(staff: Client) -> None:
    response = staff.post(
        "/admin/governance/modelprice/add/",
        {
            "model": "m",
            "input_per_mtok": "-1",
            "output_per_mtok": "1",
            "cache_write_per_mtok": "0",
            "cache_read_per_mtok": "0",
        },
    )
    assert response.status_code == 200
    assert not ModelPrice.objects.filter(model="m").exists()


@pytest.mark.parametrize(
    "model", ["organization", "team", "membership", "provider", "virtualkey", "modelprice"]
)
def test_it_lists_every_governance_model(staff: Client, acme, charlie, model: str) -> None:
    assert staff.get(f"/admin/governance/{model}/").status_code == 200
    assert staff.get(f"/admin/governance/{model}/add/").status_code == 200


def test_it_lists_keys_in_constant_queries(
    staff: Client, acme, charlie, django_assert_num_queries
) -> None:
    team = services.team_create(actor=None, organization=acme, name="Platform")
    services.membership_set(actor=None, user=charlie, organization=acme, role="developer", team=team)
    services.key_create(actor=None, organization=acme, name="first", team=team, user=charlie)
    staff.get("/admin/governance/virtualkey/")  # warm the session and content types

    with CaptureQueriesContext(connection) as few:
        staff.get("/admin/governance/virtualkey/")
    for i in range(15):
        services.key_create(actor=None, organization=acme, name=f"k{i}", team=team, user=charlie)
    with django_assert_num_queries(len(few)):
        staff.get("/admin/governance/virtualkey/")
