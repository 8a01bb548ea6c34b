from __future__ import annotations

import pytest

from audit.models import AuditEvent
from governance import services
from governance.models import Organization, Team, VirtualKey

ORG = "/api/v1/organizations/acme/"
TEAM = "/api/v1/organizations/acme/teams/platform/"
PATTERNS = {"allowed_models": ["claude-sonnet-*", "claude-haiku-*"]}


@pytest.fixture
def platform(acme) -> Team:
    return services.team_create(actor=None, organization=acme, name="Platform")


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_it_sets_an_organizations_allowlist(
    client_for, acme, persona, request, committed_snapshot
) -> None:
    actor = request.getfixturevalue(persona)
    response = client_for(actor).patch(ORG, PATTERNS, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["allowed_models"] == PATTERNS["allowed_models"]
    assert body["role"] == ("admin" if persona == "bob" else None)
    assert Organization.objects.get(pk=acme.pk).allowed_models == PATTERNS["allowed_models"]
    event = AuditEvent.objects.get(action="organization.allowed_models")
    assert (event.actor, event.target_id) == (actor, str(acme.pk))
    assert (event.before, event.after) == ({"allowed_models": []}, PATTERNS)
    published = committed_snapshot()["organizations"]
    assert published[0]["allowed_models"] == PATTERNS["allowed_models"]

    listed = client_for(actor).get("/api/v1/organizations/").json()["results"]
    assert listed[0]["allowed_models"] == PATTERNS["allowed_models"]


def test_it_clears_an_allowlist_with_an_empty_list(client_for, acme, bob) -> None:
    services.allowed_models_set(actor=None, target=acme, patterns=["claude-*"])
    response = client_for(bob).patch(ORG, {"allowed_models": []}, format="json")
    assert response.json()["allowed_models"] == []


def test_it_sets_a_teams_allowlist(client_for, bob, platform, committed_snapshot) -> None:
    response = client_for(bob).patch(TEAM, PATTERNS, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["allowed_models"] == PATTERNS["allowed_models"]
    event = AuditEvent.objects.get(action="team.allowed_models")
    assert (event.actor, event.target_id, event.after) == (bob, str(platform.pk), PATTERNS)
    assert committed_snapshot()["teams"][0]["allowed_models"] == PATTERNS["allowed_models"]

    listed = client_for(bob).get("/api/v1/organizations/acme/teams/").json()["results"]
    assert listed[0]["allowed_models"] == PATTERNS["allowed_models"]


def test_it_lets_a_developer_narrow_their_own_key(client_for, acme, charlie) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="mine", user=charlie)
    response = client_for(charlie).patch(f"/api/v1/keys/{key.pk}/", PATTERNS, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["allowed_models"] == PATTERNS["allowed_models"]
    assert VirtualKey.objects.get(pk=key.pk).allowed_models == PATTERNS["allowed_models"]
    event = AuditEvent.objects.get(action="key.allowed_models")
    assert (event.actor, event.target_id, event.after) == (charlie, str(key.pk), PATTERNS)


@pytest.mark.parametrize("persona", ["charlie", "dave"])
def test_it_refuses_org_and_team_allowlists_to_developers_and_viewers(
    client_for, acme, platform, persona, request
) -> None:
    client = client_for(request.getfixturevalue(persona))
    assert client.patch(ORG, PATTERNS, format="json").status_code == 403
    assert client.patch(TEAM, PATTERNS, format="json").status_code == 403
    assert Organization.objects.get(pk=acme.pk).allowed_models == []
    assert not AuditEvent.objects.filter(action__endswith=".allowed_models").exists()


def test_it_guards_key_allowlists_like_other_key_changes(
    client_for, acme, bob, charlie, dave, eve
) -> None:
    bobs, _ = services.key_create(actor=None, organization=acme, name="bobs", user=bob)
    charlies, _ = services.key_create(actor=None, organization=acme, name="c", user=charlie)

    def status(user, key) -> int:
        return (
            client_for(user).patch(f"/api/v1/keys/{key.pk}/", PATTERNS, format="json").status_code
        )

    assert status(charlie, bobs) == 404
    assert status(dave, charlies) == 403
    assert status(eve, charlies) == 404
    response = client_for(bob).patch(f"/api/v1/keys/{charlies.pk}/", PATTERNS, format="json")
    assert response.status_code == 200
    assert AuditEvent.objects.get(action="key.allowed_models").actor == bob


def test_it_hides_the_organization_and_its_teams_from_outsiders(client_for, platform, eve) -> None:
    client = client_for(eve)
    assert client.patch(ORG, PATTERNS, format="json").status_code == 404
    assert client.patch(TEAM, PATTERNS, format="json").status_code == 404


def test_it_answers_404_for_a_missing_team(client_for, bob) -> None:
    response = client_for(bob).patch(
        "/api/v1/organizations/acme/teams/nowhere/", PATTERNS, format="json"
    )
    assert response.status_code == 404


def test_it_asks_anonymous_callers_to_sign_in(anonymous, acme, platform) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="k")
    assert anonymous.patch(ORG, PATTERNS, format="json").status_code == 401
    assert anonymous.patch(TEAM, PATTERNS, format="json").status_code == 401
    assert anonymous.patch(f"/api/v1/keys/{key.pk}/", PATTERNS, format="json").status_code == 401


@pytest.mark.parametrize(
    "body",
    [{}, {"allowed_models": "claude-*"}, {"allowed_models": [""]}, {"allowed_models": ["  "]}],
)
def test_it_rejects_an_invalid_allowlist(client_for, acme, bob, platform, body) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="k")
    client = client_for(bob)
    for url in (ORG, TEAM, f"/api/v1/keys/{key.pk}/"):
        response = client.patch(url, body, format="json")
        assert response.status_code == 400, url
        assert "allowed_models" in response.json()
    assert not AuditEvent.objects.filter(action__endswith=".allowed_models").exists()
