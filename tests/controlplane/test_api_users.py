from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from governance import services
from governance.models import Membership, Role
from tests.controlplane.conftest import PASSWORD

User = get_user_model()


def test_it_lets_an_org_admin_add_a_user_to_a_team(client_for, bob, acme) -> None:
    services.team_create(actor=None, organization=acme, name="Platform")
    response = client_for(bob).post(
        "/api/v1/users/",
        {
            "username": "frank",
            "email": "frank@example.com",
            "password": PASSWORD,
            "organization": "acme",
            "role": "developer",
            "team": "platform",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "password" not in body
    assert body["memberships"] == [
        {"organization": "acme", "role": "developer", "team": "platform"}
    ]
    frank = User.objects.get(username="frank")
    assert frank.check_password(PASSWORD)
    assert AuditEvent.objects.filter(
        action="user.create", actor=bob, target_id=str(frank.pk)
    ).exists()
    assert AuditEvent.objects.filter(action="membership.set", actor=bob).exists()


def test_it_creates_sso_only_users_without_a_password(client_for, bob) -> None:
    response = client_for(bob).post(
        "/api/v1/users/", {"username": "grace", "organization": "acme"}, format="json"
    )
    assert response.status_code == 201
    grace = User.objects.get(username="grace")
    assert not grace.has_usable_password()
    assert Membership.objects.get(user=grace).role == Role.DEVELOPER


def test_it_rejects_a_weak_password(client_for, bob) -> None:
    response = client_for(bob).post(
        "/api/v1/users/",
        {"username": "heidi", "password": "password", "organization": "acme"},
        format="json",
    )
    assert response.status_code == 400
    assert "password" in response.json()
    assert not User.objects.filter(username="heidi").exists()


def test_it_refuses_user_creation_to_a_developer(client_for, charlie) -> None:
    response = client_for(charlie).post(
        "/api/v1/users/", {"username": "ivan", "organization": "acme"}, format="json"
    )
    assert response.status_code == 403
    assert not User.objects.filter(username="ivan").exists()


def test_it_refuses_user_creation_in_someone_elses_organization(client_for, eve, acme) -> None:
    response = client_for(eve).post(
        "/api/v1/users/", {"username": "ivan", "organization": "acme"}, format="json"
    )
    # Unknown and invisible organizations read the same, so acme's existence does not leak.
    assert response.status_code == 400
    assert response.json() == {"organization": ["No organization 'acme'."]}
    assert not User.objects.filter(username="ivan").exists()


def test_it_rejects_a_team_of_another_organization(client_for, bob, globex) -> None:
    services.team_create(actor=None, organization=globex, name="Sales")
    response = client_for(bob).post(
        "/api/v1/users/",
        {"username": "judy", "organization": "acme", "team": "sales"},
        format="json",
    )
    assert response.status_code == 400
    assert "team" in response.json()


def test_it_lists_only_users_sharing_an_organization(client_for, bob, charlie, eve) -> None:
    results = client_for(bob).get("/api/v1/users/").json()["results"]
    assert [u["username"] for u in results] == ["bob", "charlie"]


def test_it_shows_only_memberships_in_organizations_the_requester_sees(
    client_for, bob, charlie, globex
) -> None:
    services.membership_set(actor=None, user=charlie, organization=globex, role=Role.ADMIN)
    results = client_for(bob).get("/api/v1/users/").json()["results"]
    charlie_row = next(u for u in results if u["username"] == "charlie")
    assert [m["organization"] for m in charlie_row["memberships"]] == ["acme"]


def test_it_lists_every_user_for_a_platform_admin(client_for, alice, bob, eve) -> None:
    results = client_for(alice).get("/api/v1/users/").json()["results"]
    assert [u["username"] for u in results] == ["alice", "bob", "eve"]


def test_it_lists_users_in_constant_queries(
    client_for, bob, acme, django_assert_num_queries
) -> None:
    for i in range(20):
        services.user_create(actor=None, username=f"user{i}", organization=acme)
    client = client_for(bob)
    # token, count, page, memberships
    with django_assert_num_queries(4):
        response = client.get("/api/v1/users/")
    assert response.json()["count"] == 21


@pytest.mark.parametrize(
    ("persona", "target", "expected"),
    [
        ("alice", "charlie", 200),
        ("bob", "charlie", 200),
        ("bob", "alice", 404),  # a platform admin outside acme is not in bob's roster
        ("bob", "eve", 404),
        ("bob", "bob", 403),
        ("charlie", "dave", 403),
        ("dave", "charlie", 403),
        ("eve", "charlie", 404),
    ],
)
def test_it_decides_who_may_deactivate_whom(
    client_for, alice, bob, charlie, dave, eve, persona, target, expected, request, committed_snapshot
) -> None:
    from audit.models import AuditEvent
    from governance.models import VirtualKey

    actor, user = request.getfixturevalue(persona), request.getfixturevalue(target)
    response = client_for(actor).post(f"/api/v1/users/{user.pk}/deactivate/")
    assert response.status_code == expected, response.content
    user.refresh_from_db()
    assert user.is_active is (expected != 200)
    assert AuditEvent.objects.filter(action="user.deactivate").count() == (expected == 200)
    if expected == 200:
        assert response.json()["is_active"] is False
        key = VirtualKey.objects.filter(user=user).first()
        assert key is None or key.status == "active"  # the keys stay as they were; the snapshot says why


def test_it_refuses_an_org_admin_a_user_who_is_also_elsewhere(client_for, bob, charlie, globex) -> None:
    services.membership_set(actor=None, user=charlie, organization=globex, role="developer")
    assert client_for(bob).post(f"/api/v1/users/{charlie.pk}/deactivate/").status_code == 403


def test_it_carries_the_users_state_in_the_snapshot(client_for, acme, alice, charlie, committed_snapshot) -> None:
    services.key_create(actor=None, organization=acme, name="c", user=charlie)
    assert client_for(alice).post(f"/api/v1/users/{charlie.pk}/deactivate/").status_code == 200
    assert [k["user_active"] for k in committed_snapshot()["keys"]] == [False]
