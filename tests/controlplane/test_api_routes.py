from __future__ import annotations

import pytest

from audit.models import AuditEvent
from governance import services
from governance.models import Provider, Route

GATEWAY = "/api/v1/routes/"
ROUTES = "/api/v1/organizations/acme/routes/"


def provider(name: str, kind: str = "anthropic") -> Provider:
    return services.provider_create(
        actor=None,
        name=name,
        kind=kind,
        base_url="https://api.anthropic.com" if kind == "anthropic" else "https://example.test",
        credential="sk-test",
    )


@pytest.fixture
def upstream(db: None) -> Provider:
    return provider("anthropic-main")


@pytest.fixture
def fallback(db: None) -> Provider:
    return provider("bedrock-east", kind="bedrock")


def route_for(upstream: Provider, pattern: str = "claude-*", **scope) -> Route:
    targets = [{"provider": upstream, "model": "", "weight": 1, "tier": 0}]
    return services.route_set(actor=None, model_pattern=pattern, targets=targets, **scope)


def test_it_sets_a_gateway_route_and_replaces_its_targets(
    client_for, alice, upstream, fallback, committed_snapshot
) -> None:
    client = client_for(alice)
    body = {
        "model_pattern": "claude-opus-*",
        "targets": [
            {"provider": "anthropic-main", "weight": 3},
            {"provider": "bedrock-east", "model": "anthropic.claude-opus-4", "tier": 1},
        ],
    }
    response = client.post(GATEWAY, body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    route = Route.objects.get()
    assert created == created | {
        "id": route.pk,
        "scope": "gateway",
        "organization": None,
        "team": None,
        "key": None,
        "key_prefix": None,
        "model_pattern": "claude-opus-*",
    }
    assert created["targets"] == [
        {
            "provider": "anthropic-main",
            "provider_kind": "anthropic",
            "model": "",
            "weight": 3,
            "tier": 0,
        },
        {
            "provider": "bedrock-east",
            "provider_kind": "bedrock",
            "model": "anthropic.claude-opus-4",
            "weight": 1,
            "tier": 1,
        },
    ]
    event = AuditEvent.objects.get(action="route.set")
    assert (event.actor, event.target_id, event.before) == (alice, str(route.pk), None)
    assert [t["provider"] for t in event.after["targets"]] == ["anthropic-main", "bedrock-east"]

    # The same pattern at the same scope is the same route, its targets replaced.
    replaced = {"model_pattern": "claude-opus-*", "targets": [{"provider": "bedrock-east"}]}
    response = client.post(GATEWAY, replaced, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["id"] == route.pk
    assert [t["provider"] for t in response.json()["targets"]] == ["bedrock-east"]
    second = AuditEvent.objects.filter(action="route.set").order_by("-id").first()
    assert len(second.before["targets"]) == 2 and len(second.after["targets"]) == 1

    listed = client.get(GATEWAY).json()
    assert [r["id"] for r in listed["results"]] == [route.pk]

    published = committed_snapshot()["routes"]
    assert [(r["id"], r["organization_id"], r["model_pattern"]) for r in published] == [
        (route.pk, None, "claude-opus-*")
    ]
    assert published[0]["targets"] == [
        {"provider_id": fallback.pk, "model": "", "weight": 1, "tier": 0}
    ]


def test_it_sets_routes_on_an_organization_a_team_and_a_key(
    client_for, bob, charlie, acme, upstream, committed_snapshot
) -> None:
    team = services.team_create(actor=None, organization=acme, name="Platform")
    key, _ = services.key_create(actor=None, organization=acme, name="ci", user=charlie)
    client = client_for(bob)
    targets = [{"provider": "anthropic-main"}]
    for scope in ({}, {"team": "platform"}, {"key": key.pk}):
        body = scope | {"model_pattern": "claude-*", "targets": targets}
        response = client.post(ROUTES, body, format="json")
        assert response.status_code == 201, response.json()

    listed = {r["scope"]: r for r in client.get(ROUTES).json()["results"]}
    assert set(listed) == {"organization", "team", "key"}
    assert all(r["organization"] == "acme" for r in listed.values())
    assert (listed["organization"]["team"], listed["organization"]["key"]) == (None, None)
    assert (listed["team"]["team"], listed["team"]["key"]) == ("platform", None)
    assert (listed["key"]["key"], listed["key"]["key_prefix"]) == (key.pk, key.prefix)
    assert AuditEvent.objects.filter(action="route.set", actor=bob).count() == 3

    published = {
        (r["organization_id"], r["team_id"], r["key_id"]) for r in committed_snapshot()["routes"]
    }
    assert published == {(acme.pk, None, None), (acme.pk, team.pk, None), (acme.pk, None, key.pk)}


def test_it_keeps_gateway_routes_out_of_organization_lists(client_for, bob, acme, upstream) -> None:
    route_for(upstream)
    mine = route_for(upstream, organization=acme)
    assert [r["id"] for r in client_for(bob).get(ROUTES).json()["results"]] == [mine.pk]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"targets": [{"provider": "nowhere"}]}, "targets"),
        ({"targets": [{"provider": "anthropic-main", "weight": 0}]}, "targets"),
        ({"targets": [{"provider": "anthropic-main", "tier": -1}]}, "targets"),
        ({"targets": [{"provider": "anthropic-main", "weight": 2**31}]}, "targets"),
        ({"targets": [{"model": "claude-opus-4"}]}, "targets"),
        ({"targets": []}, "targets"),
        ({"targets": None}, "targets"),
        ({"model_pattern": ""}, "model_pattern"),
        ({"team": "sales"}, "team"),
        ({"team": "nowhere"}, "team"),
        ({"key": 999999}, "key"),
        ({"key": "theirs"}, "key"),
        ({"team": "platform", "key": "mine"}, "key"),
    ],
)
def test_it_rejects_an_invalid_route(client_for, bob, acme, globex, upstream, body, field) -> None:
    services.team_create(actor=None, organization=acme, name="Platform")
    services.team_create(actor=None, organization=globex, name="Sales")
    keys = {
        "mine": services.key_create(actor=None, organization=acme, name="mine")[0].pk,
        "theirs": services.key_create(actor=None, organization=globex, name="theirs")[0].pk,
    }
    if isinstance(body.get("key"), str):
        body = body | {"key": keys[body["key"]]}
    full = {"model_pattern": "claude-*", "targets": [{"provider": "anthropic-main"}]} | body
    response = client_for(bob).post(ROUTES, full, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Route.objects.exists()
    assert not AuditEvent.objects.filter(action="route.set").exists()


def test_it_rejects_an_unknown_provider_on_a_gateway_route(client_for, alice, upstream) -> None:
    body = {"model_pattern": "*", "targets": [{"provider": "anthropic-main"}, {"provider": "x"}]}
    response = client_for(alice).post(GATEWAY, body, format="json")
    assert response.status_code == 400
    assert "No provider 'x'." in response.json()["targets"]
    assert not Route.objects.exists()


@pytest.mark.parametrize("persona", ["bob", "charlie", "dave", "eve"])
def test_it_keeps_gateway_routes_to_platform_admins(
    client_for, acme, upstream, persona, request
) -> None:
    route = route_for(upstream)
    client = client_for(request.getfixturevalue(persona))
    body = {"model_pattern": "*", "targets": [{"provider": "anthropic-main"}]}
    assert client.get(GATEWAY).status_code == 403
    assert client.post(GATEWAY, body, format="json").status_code == 403
    # To anyone else a gateway route is not there at all.
    assert client.delete(f"/api/v1/routes/{route.pk}/").status_code == 404
    assert Route.objects.count() == 1


def test_it_lets_platform_admins_manage_an_organizations_routes(
    client_for, alice, acme, upstream
) -> None:
    client = client_for(alice)
    body = {"model_pattern": "claude-*", "targets": [{"provider": "anthropic-main"}]}
    response = client.post(ROUTES, body, format="json")
    assert response.status_code == 201
    assert response.json()["scope"] == "organization"
    assert client.get(ROUTES).json()["count"] == 1


@pytest.mark.parametrize("persona", ["charlie", "dave"])
def test_it_refuses_route_writes_to_developers_and_viewers(
    client_for, acme, upstream, persona, request
) -> None:
    route = route_for(upstream, organization=acme)
    client = client_for(request.getfixturevalue(persona))
    body = {"model_pattern": "claude-*", "targets": [{"provider": "anthropic-main", "weight": 9}]}
    assert client.post(ROUTES, body, format="json").status_code == 403
    assert client.delete(f"/api/v1/routes/{route.pk}/").status_code == 403
    assert client.get(ROUTES).json()["count"] == 1
    assert route.targets.get().weight == 1


def test_it_hides_routes_from_outsiders(client_for, acme, eve, upstream) -> None:
    route = route_for(upstream, organization=acme)
    client = client_for(eve)
    body = {"model_pattern": "claude-*", "targets": [{"provider": "anthropic-main"}]}
    assert client.get(ROUTES).status_code == 404
    assert client.post(ROUTES, body, format="json").status_code == 404
    assert client.delete(f"/api/v1/routes/{route.pk}/").status_code == 404
    assert Route.objects.filter(pk=route.pk).exists()


def test_it_asks_anonymous_callers_to_sign_in(anonymous, acme, upstream) -> None:
    route = route_for(upstream, organization=acme)
    assert anonymous.get(ROUTES).status_code == 401
    assert anonymous.get(GATEWAY).status_code == 401
    assert anonymous.delete(f"/api/v1/routes/{route.pk}/").status_code == 401


def test_it_shows_developers_the_key_routes_of_their_own_keys_only(
    client_for, acme, bob, charlie, upstream
) -> None:
    team = services.team_create(actor=None, organization=acme, name="Platform")
    mine, _ = services.key_create(actor=None, organization=acme, name="mine", user=charlie)
    theirs, _ = services.key_create(actor=None, organization=acme, name="theirs", user=bob)
    shared = route_for(upstream, organization=acme)
    teams = route_for(upstream, organization=acme, team=team)
    own = route_for(upstream, organization=acme, key=mine)
    hidden = route_for(upstream, organization=acme, key=theirs)

    results = client_for(charlie).get(ROUTES).json()["results"]
    assert [r["id"] for r in results] == [shared.pk, teams.pk, own.pk]
    assert client_for(charlie).delete(f"/api/v1/routes/{hidden.pk}/").status_code == 404
    assert client_for(charlie).delete(f"/api/v1/routes/{own.pk}/").status_code == 403
    assert client_for(bob).get(ROUTES).json()["count"] == 4


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_it_lets_admins_delete_an_organization_route(
    client_for, acme, upstream, persona, request, committed_snapshot
) -> None:
    actor = request.getfixturevalue(persona)
    route = route_for(upstream, organization=acme)
    response = client_for(actor).delete(f"/api/v1/routes/{route.pk}/")
    assert response.status_code == 204
    assert not Route.objects.exists()
    event = AuditEvent.objects.get(action="route.delete")
    assert (event.actor, event.target_id) == (actor, str(route.pk))
    assert event.before["model_pattern"] == "claude-*"
    assert committed_snapshot()["routes"] == []


def test_it_lets_platform_admins_delete_a_gateway_route(
    client_for, alice, upstream, committed_snapshot
) -> None:
    route = route_for(upstream)
    assert client_for(alice).delete(f"/api/v1/routes/{route.pk}/").status_code == 204
    assert AuditEvent.objects.get(action="route.delete").actor == alice
    assert committed_snapshot()["routes"] == []


def test_it_answers_404_for_a_missing_route(client_for, alice) -> None:
    assert client_for(alice).delete("/api/v1/routes/999999/").status_code == 404


def test_it_lists_routes_in_constant_queries(
    client_for, acme, alice, bob, charlie, upstream, fallback, django_assert_num_queries
) -> None:
    team = services.team_create(actor=None, organization=acme, name="Platform")
    two = [
        {"provider": upstream, "model": "", "weight": 2, "tier": 0},
        {"provider": fallback, "model": "anthropic.claude", "weight": 1, "tier": 1},
    ]
    for n in range(5):
        pattern = f"claude-{n}-*"
        services.route_set(actor=None, model_pattern=pattern, targets=two)
        services.route_set(actor=None, model_pattern=pattern, targets=two, organization=acme)
        route_for(upstream, pattern, organization=acme, team=team)
        key, _ = services.key_create(actor=None, organization=acme, name=f"k{n}", user=charlie)
        route_for(fallback, pattern, organization=acme, key=key)

    admin, platform = client_for(bob), client_for(alice)
    # token, membership, organization, count, page (scope joined), targets with providers
    with django_assert_num_queries(6):
        response = admin.get(ROUTES)
    assert response.json()["count"] == 15
    assert sum(len(r["targets"]) for r in response.json()["results"]) == 20

    # token, count, page, targets with providers
    with django_assert_num_queries(4):
        response = platform.get(GATEWAY)
    assert response.json()["count"] == 5
