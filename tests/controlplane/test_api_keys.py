from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from governance import services
from governance.keys import key_digest
from governance.models import KeyStatus, VirtualKey

KEYS = "/api/v1/organizations/acme/keys/"


def test_it_creates_a_key_and_shows_its_secret_once(
    client_for, bob, charlie, acme, committed_snapshot
) -> None:
    platform = services.team_create(actor=None, organization=acme, name="Platform")
    services.membership_set(actor=None, user=charlie, organization=acme, role="developer", team=platform)
    client = client_for(bob)
    response = client.post(
        KEYS,
        {
            "name": "charlie laptop",
            "team": "platform",
            "user": "charlie",
            "allowed_models": ["claude-sonnet-*"],
            "expires_at": (timezone.now() + timedelta(days=30)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    secret = body["secret"]
    assert secret.startswith(body["prefix"])
    assert (body["team"], body["user"], body["created_by"]) == ("platform", "charlie", "bob")
    assert body["allowed_models"] == ["claude-sonnet-*"]
    assert "digest" not in body

    key = VirtualKey.objects.get(pk=body["id"])
    assert key.digest == key_digest(secret)
    event = AuditEvent.objects.get(action="key.create")
    assert (event.actor, event.target_id) == (bob, str(key.pk))
    assert secret not in json.dumps(event.after)

    # The data plane learns of the key from the snapshot published on commit.
    published = committed_snapshot()["keys"]
    assert [(k["id"], k["digest"]) for k in published] == [(key.pk, key.digest)]

    listed = client.get(KEYS)
    assert secret not in listed.content.decode()
    assert key.digest not in listed.content.decode()
    assert "secret" not in listed.json()["results"][0]


def test_it_gives_a_developers_key_to_the_developer(client_for, charlie) -> None:
    response = client_for(charlie).post(KEYS, {"name": "mine"}, format="json")
    assert response.status_code == 201
    assert response.json()["user"] == "charlie"


def test_it_refuses_a_developer_a_key_for_someone_else(client_for, bob, charlie) -> None:
    response = client_for(charlie).post(KEYS, {"name": "bobs", "user": "bob"}, format="json")
    assert response.status_code == 403
    assert not VirtualKey.objects.exists()


def test_it_refuses_key_creation_to_a_viewer(client_for, dave) -> None:
    response = client_for(dave).post(KEYS, {"name": "look"}, format="json")
    assert response.status_code == 403
    assert not VirtualKey.objects.exists()


def test_it_refuses_a_key_for_a_user_outside_the_organization(client_for, bob, eve) -> None:
    response = client_for(bob).post(KEYS, {"name": "x", "user": "eve"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"user": ["No member 'eve' in acme."]}


def test_it_rejects_an_expiry_in_the_past(client_for, bob) -> None:
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = client_for(bob).post(KEYS, {"name": "old", "expires_at": past}, format="json")
    assert response.status_code == 400
    assert "expires_at" in response.json()


def test_it_hides_keys_from_outsiders(client_for, acme, bob, eve) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="acme key")
    client = client_for(eve)
    assert client.get(KEYS).status_code == 404
    assert client.post(KEYS, {"name": "x"}, format="json").status_code == 404
    assert client.post(f"/api/v1/keys/{key.pk}/disable/").status_code == 404
    assert VirtualKey.objects.get(pk=key.pk).status == KeyStatus.ACTIVE


def test_it_lists_only_a_developers_own_keys(client_for, acme, bob, charlie, dave) -> None:
    services.key_create(actor=None, organization=acme, name="bobs", user=bob)
    services.key_create(actor=None, organization=acme, name="charlies", user=charlie)
    services.key_create(actor=None, organization=acme, name="service")

    def names(user) -> list[str]:
        return sorted(k["name"] for k in client_for(user).get(KEYS).json()["results"])

    assert names(charlie) == ["charlies"]
    assert names(dave) == ["bobs", "charlies", "service"]
    assert names(bob) == ["bobs", "charlies", "service"]


def test_it_lets_a_developer_disable_and_enable_their_own_key(
    client_for, acme, charlie, committed_snapshot
) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="mine", user=charlie)
    client = client_for(charlie)
    response = client.post(f"/api/v1/keys/{key.pk}/disable/")
    assert response.status_code == 200
    assert response.json()["status"] == "disabled"
    assert [k["status"] for k in committed_snapshot()["keys"]] == ["disabled"]
    event = AuditEvent.objects.get(action="key.disable")
    assert (event.actor, event.target_id) == (charlie, str(key.pk))
    assert (event.before["status"], event.after["status"]) == ("active", "disabled")

    response = client.post(f"/api/v1/keys/{key.pk}/enable/")
    assert response.json()["status"] == "active"
    assert AuditEvent.objects.filter(action="key.enable", actor=charlie).count() == 1


def test_it_hides_another_developers_key(client_for, acme, bob, charlie) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="bobs", user=bob)
    assert client_for(charlie).post(f"/api/v1/keys/{key.pk}/disable/").status_code == 404
    assert VirtualKey.objects.get(pk=key.pk).status == KeyStatus.ACTIVE


def test_it_refuses_a_viewer_key_changes(client_for, acme, charlie, dave) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="c", user=charlie)
    assert client_for(dave).post(f"/api/v1/keys/{key.pk}/disable/").status_code == 403
    assert not AuditEvent.objects.filter(action="key.disable").exists()


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_it_lets_admins_disable_any_key_of_the_org(
    client_for, acme, charlie, persona, request
) -> None:
    actor = request.getfixturevalue(persona)
    key, _ = services.key_create(actor=None, organization=acme, name="c", user=charlie)
    response = client_for(actor).post(f"/api/v1/keys/{key.pk}/disable/")
    assert response.status_code == 200
    assert AuditEvent.objects.get(action="key.disable").actor == actor


def test_it_answers_404_for_a_missing_key(client_for, alice) -> None:
    assert client_for(alice).post("/api/v1/keys/999999/enable/").status_code == 404


def test_it_lists_keys_in_constant_queries(
    client_for, acme, bob, charlie, django_assert_num_queries
) -> None:
    team = services.team_create(actor=None, organization=acme, name="Platform")
    services.membership_set(actor=None, user=charlie, organization=acme, role="developer", team=team)
    for i in range(20):
        services.key_create(actor=bob, organization=acme, name=f"k{i}", team=team, user=charlie)
    client = client_for(bob)
    # token, membership, organization, count, page (with team, user, creator joined)
    with django_assert_num_queries(5):
        response = client.get(KEYS)
    assert response.json()["count"] == 20
