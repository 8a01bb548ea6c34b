from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.controlplane.conftest import PASSWORD

ROUTES = [
    ("get", "/api/v1/organizations/"),
    ("post", "/api/v1/organizations/"),
    ("get", "/api/v1/organizations/acme/teams/"),
    ("post", "/api/v1/organizations/acme/teams/"),
    ("get", "/api/v1/organizations/acme/keys/"),
    ("post", "/api/v1/organizations/acme/keys/"),
    ("post", "/api/v1/keys/1/disable/"),
    ("post", "/api/v1/keys/1/enable/"),
    ("get", "/api/v1/users/"),
    ("post", "/api/v1/users/"),
    ("get", "/api/v1/providers/"),
    ("post", "/api/v1/providers/"),
    ("get", "/api/v1/prices/"),
    ("put", "/api/v1/prices/claude-sonnet-4-5/"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), ROUTES)
def test_it_requires_credentials(anonymous: APIClient, method: str, url: str) -> None:
    response = getattr(anonymous, method)(url, {}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_it_rejects_a_made_up_token(anonymous: APIClient) -> None:
    anonymous.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert anonymous.get("/api/v1/organizations/").status_code == 401


def test_it_issues_a_token_that_authenticates(anonymous: APIClient, bob) -> None:
    response = anonymous.post(
        "/api/v1/auth/token/", {"username": "bob", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]

    again = anonymous.post(
        "/api/v1/auth/token/", {"username": "bob", "password": PASSWORD}, format="json"
    )
    # A new token each time: the old one is not kept, so it cannot be handed out again.
    assert again.json()["token"] != token and again.json()["token"].startswith("tgapi-")

    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    orgs = anonymous.get("/api/v1/organizations/").json()["results"]
    assert [o["slug"] for o in orgs] == ["acme"]


def test_it_refuses_a_token_for_a_wrong_password(anonymous: APIClient, bob) -> None:
    response = anonymous.post(
        "/api/v1/auth/token/", {"username": "bob", "password": "not it"}, format="json"
    )
    assert response.status_code == 400
    assert "token" not in response.json()


def test_it_refuses_a_token_for_an_inactive_user(anonymous: APIClient, bob) -> None:
    bob.is_active = False
    bob.save()
    response = anonymous.post(
        "/api/v1/auth/token/", {"username": "bob", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 400


def test_it_audits_each_token_handed_out(db, django_user_model) -> None:
    from rest_framework.test import APIClient

    from audit.models import AuditEvent

    django_user_model.objects.create_user("dora", password="dora-password-1")
    for _ in range(2):
        response = APIClient().post("/api/v1/auth/token/", {"username": "dora", "password": "dora-password-1"})
        assert response.status_code == 200
    events = list(AuditEvent.objects.filter(action="auth.api_token_issue").order_by("id"))
    assert len({e.after["prefix"] for e in events}) == 2
    assert all(e.actor_label == "dora" for e in events)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("4bf92f3577b34da6a3ce929d0e0e4736", True),
        ("Root=1-67891233-abcdef012345678912345678", True),
        ("<script>alert(1)</script>", False),
        ("id with spaces", False),
        ("x" * 65, False),
        ("é-unicode", False),
    ],
)
def test_it_keeps_a_request_id_only_when_it_looks_like_one(db, django_user_model, sent: str, kept: bool) -> None:
    from audit.models import AuditEvent

    django_user_model.objects.create_user("erin", password="erin-password-1")
    response = APIClient().post("/api/v1/auth/token/", {"username": "erin", "password": "erin-password-1"},
                                HTTP_X_REQUEST_ID=sent)
    assert response.status_code == 200
    stored = AuditEvent.objects.get(action="auth.api_token_issue").request_id
    assert response["X-Request-Id"] == stored
    assert (stored == sent) is kept
    if not kept:
        assert len(stored) == 32 and stored.isalnum()
