from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from governance import services
from governance.models import Organization


def test_it_lists_only_the_organizations_a_user_belongs_to(client_for, bob, eve) -> None:
    response = client_for(bob).get("/api/v1/organizations/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"][0]["slug"] == "acme"
    assert body["results"][0]["role"] == "admin"


def test_it_lists_every_organization_for_a_platform_admin(client_for, alice, acme, globex) -> None:
    results = client_for(alice).get("/api/v1/organizations/").json()["results"]
    assert [(o["slug"], o["role"]) for o in results] == [("acme", None), ("globex", None)]


def test_it_lets_a_platform_admin_create_an_organization(
    client_for, alice, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client_for(alice).post(
            "/api/v1/organizations/", {"name": "Initech"}, format="json"
        )
    assert response.status_code == 201
    assert response.json()["slug"] == "initech"
    assert len(callbacks) == 1  # one snapshot publish per transaction
    event = AuditEvent.objects.get(action="organization.create")
    assert event.actor == alice
    assert event.target_id == str(Organization.objects.get(slug="initech").pk)


def test_it_refuses_organization_creation_to_an_org_admin(client_for, bob) -> None:
    response = client_for(bob).post("/api/v1/organizations/", {"name": "Bobco"}, format="json")
    assert response.status_code == 403
    assert not Organization.objects.filter(slug="bobco").exists()


def test_it_reports_a_duplicate_slug_as_a_field_error(client_for, alice, acme) -> None:
    response = client_for(alice).post(
        "/api/v1/organizations/", {"name": "Acme again", "slug": "acme"}, format="json"
    )
    assert response.status_code == 400
    assert "slug" in response.json()


@pytest.mark.django_db
def test_it_lists_organizations_in_constant_queries(client_for, alice) -> None:
    client = client_for(alice)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/api/v1/organizations/").status_code == 200
        return len(ctx)

    services.organization_create(actor=None, name="First")
    few = count()
    for i in range(15):
        services.organization_create(actor=None, name=f"Org {i}")
    assert count() == few
