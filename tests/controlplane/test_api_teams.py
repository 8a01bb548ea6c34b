from __future__ import annotations

from audit.models import AuditEvent
from governance import services
from governance.models import Team


def test_it_lets_an_org_admin_create_a_team(client_for, bob, acme) -> None:
    response = client_for(bob).post(
        "/api/v1/organizations/acme/teams/", {"name": "Platform"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["slug"] == "platform"
    team = Team.objects.get(organization=acme, slug="platform")
    event = AuditEvent.objects.get(action="team.create")
    assert (event.actor, event.target_id) == (bob, str(team.pk))


def test_it_refuses_team_creation_to_a_developer(client_for, charlie) -> None:
    response = client_for(charlie).post(
        "/api/v1/organizations/acme/teams/", {"name": "Mine"}, format="json"
    )
    assert response.status_code == 403
    assert not Team.objects.exists()


def test_it_lets_developers_and_viewers_list_teams(client_for, acme, charlie, dave) -> None:
    services.team_create(actor=None, organization=acme, name="Platform")
    for user in (charlie, dave):
        results = client_for(user).get("/api/v1/organizations/acme/teams/").json()["results"]
        assert [t["slug"] for t in results] == ["platform"]


def test_it_hides_an_organization_from_outsiders(client_for, acme, eve) -> None:
    client = client_for(eve)
    assert client.get("/api/v1/organizations/acme/teams/").status_code == 404
    assert (
        client.post("/api/v1/organizations/acme/teams/", {"name": "X"}, format="json").status_code
        == 404
    )
    # An organization that does not exist answers the same.
    assert client.get("/api/v1/organizations/nowhere/teams/").status_code == 404


def test_it_lets_a_platform_admin_manage_any_organization(client_for, alice, acme) -> None:
    response = client_for(alice).post(
        "/api/v1/organizations/acme/teams/", {"name": "Ops"}, format="json"
    )
    assert response.status_code == 201


def test_it_lists_teams_in_constant_queries(
    client_for, acme, charlie, django_assert_num_queries
) -> None:
    for i in range(20):
        services.team_create(actor=None, organization=acme, name=f"Team {i}")
    client = client_for(charlie)
    # token, membership, organization, count, page
    with django_assert_num_queries(5):
        response = client.get("/api/v1/organizations/acme/teams/")
    assert response.json()["count"] == 20
