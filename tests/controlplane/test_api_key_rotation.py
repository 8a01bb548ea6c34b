from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from governance import services
from governance.keys import key_digest
from governance.models import VirtualKey


def rotate_url(key: VirtualKey) -> str:
    return f"/api/v1/keys/{key.pk}/rotate/"


def test_it_rotates_a_key_and_shows_the_new_secret_once(
    client_for, acme, charlie, committed_snapshot
) -> None:
    key, old_secret = services.key_create(actor=None, organization=acme, name="ci", user=charlie)
    client = client_for(charlie)
    response = client.post(rotate_url(key), {"grace_seconds": 3600}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    secret = body["secret"]
    assert secret != old_secret
    # The prefix names the key in lists and logs, so it survives the rotation.
    assert (body["id"], body["prefix"]) == (key.pk, key.prefix)
    assert secret.startswith(key.prefix)
    assert "digest" not in body and "previous_digest" not in body

    rotated = VirtualKey.objects.get(pk=key.pk)
    assert rotated.digest == key_digest(secret)
    assert rotated.previous_digest == key_digest(old_secret)
    until = rotated.previous_valid_until
    assert timedelta(minutes=59) < until - timezone.now() <= timedelta(hours=1)
    assert body["previous_valid_until"] is not None

    event = AuditEvent.objects.get(action="key.rotate")
    assert (event.actor, event.target_id) == (charlie, str(key.pk))
    assert event.after["grace_seconds"] == 3600
    assert secret not in json.dumps(event.after) and old_secret not in json.dumps(event.after)

    published = committed_snapshot()["keys"]
    assert [(k["digest"], k["previous_digest"]) for k in published] == [
        (rotated.digest, rotated.previous_digest)
    ]

    listed = client.get("/api/v1/organizations/acme/keys/").content.decode()
    assert secret not in listed
    assert rotated.digest not in listed and rotated.previous_digest not in listed


def test_it_drops_the_old_secret_at_once_without_grace(client_for, acme, bob) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="leaked")
    response = client_for(bob).post(rotate_url(key))
    assert response.status_code == 200
    assert response.json()["previous_valid_until"] is None
    rotated = VirtualKey.objects.get(pk=key.pk)
    assert (rotated.previous_digest, rotated.previous_valid_until) == ("", None)


@pytest.mark.parametrize("grace", [-1, 31 * 86400, "soon"])
def test_it_rejects_an_invalid_grace_period(client_for, acme, bob, grace) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="ci")
    response = client_for(bob).post(rotate_url(key), {"grace_seconds": grace}, format="json")
    assert response.status_code == 400
    assert "grace_seconds" in response.json()
    assert VirtualKey.objects.get(pk=key.pk).digest == key.digest
    assert not AuditEvent.objects.filter(action="key.rotate").exists()


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_it_lets_admins_rotate_any_key_of_the_org(
    client_for, acme, charlie, persona, request
) -> None:
    actor = request.getfixturevalue(persona)
    key, _ = services.key_create(actor=None, organization=acme, name="c", user=charlie)
    assert client_for(actor).post(rotate_url(key)).status_code == 200
    assert AuditEvent.objects.get(action="key.rotate").actor == actor


def test_it_refuses_rotation_to_a_viewer(client_for, acme, charlie, dave) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="c", user=charlie)
    assert client_for(dave).post(rotate_url(key)).status_code == 403
    assert VirtualKey.objects.get(pk=key.pk).digest == key.digest


def test_it_hides_other_keys_from_rotation(client_for, acme, bob, charlie, eve) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="bobs", user=bob)
    assert client_for(charlie).post(rotate_url(key)).status_code == 404
    assert client_for(eve).post(rotate_url(key)).status_code == 404
    assert not AuditEvent.objects.filter(action="key.rotate").exists()


def test_it_asks_anonymous_callers_to_sign_in(anonymous, acme) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="ci")
    assert anonymous.post(rotate_url(key)).status_code == 401


def test_it_answers_404_for_a_missing_key(client_for, alice) -> None:
    assert client_for(alice).post("/api/v1/keys/999999/rotate/").status_code == 404
