from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from governance import services
from governance.models import Provider, Route

ROUTES = "/admin/governance/route/"


@pytest.fixture
def staff(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def upstream(db: None) -> Provider:
    return services.provider_create(
        actor=None,
        name="anthropic-main",
        kind="anthropic",
        base_url="https://api.anthropic.com",
        credential="sk-ant-test",
    )


@pytest.fixture
def fallback(db: None) -> Provider:
    return services.provider_create(
        actor=None,
        name="bedrock-east",
        kind="bedrock",
        base_url="https://bedrock-runtime.us-east-1.amazonaws.com",
        credential="aws-test",
    )


def route_form(rows: list[dict], initial: int = 0, **values) -> dict:
    """The route's fields and its inline target rows, as the add or change page posts them."""
    form = {"organization": "", "team": "", "key": "", "model_pattern": "claude-*"} | values
    form |= {
        "targets-TOTAL_FORMS": str(len(rows)),
        "targets-INITIAL_FORMS": str(initial),
        "targets-MIN_NUM_FORMS": "0",
        "targets-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        cells = {"model": "", "weight": "1", "tier": "0"} | row
        form |= {f"targets-{i}-{name}": value for name, value in cells.items()}
    return form


def test_it_adds_a_route_with_its_targets_through_the_service(
    staff: Client, alice, acme, upstream, fallback, committed_snapshot
) -> None:
    rows = [
        {"provider": upstream.pk, "weight": "3"},
        {"provider": fallback.pk, "model": "anthropic.claude-opus-4", "tier": "1"},
    ]
    response = staff.post(f"{ROUTES}add/", route_form(rows, organization=acme.pk))
    assert response.status_code == 302, response.content.decode()[:3000]
    route = Route.objects.get()
    assert (route.organization, route.model_pattern) == (acme, "claude-*")
    targets = [(t.provider, t.model, t.weight, t.tier) for t in route.targets.all()]
    assert targets == [
        (upstream, "", 3, 0),
        (fallback, "anthropic.claude-opus-4", 1, 1),
    ]
    event = AuditEvent.objects.get(action="route.set")
    assert (event.actor, event.target_id, event.before) == (alice, str(route.pk), None)
    published = committed_snapshot()["routes"]
    assert [(r["id"], r["organization_id"], len(r["targets"])) for r in published] == [
        (route.pk, acme.pk, 2)
    ]


def test_it_replaces_a_routes_targets_through_the_service(
    staff: Client, alice, upstream, fallback
) -> None:
    targets = [{"provider": upstream, "model": "", "weight": 1, "tier": 0}]
    route = services.route_set(actor=None, model_pattern="*", targets=targets)
    existing = route.targets.get()
    page = staff.get(f"{ROUTES}{route.pk}/change/")
    assert page.status_code == 200

    # The first row is deleted, a second added; the pattern and scope are read-only here.
    rows = [
        {"id": existing.pk, "route": route.pk, "provider": upstream.pk, "DELETE": "on"},
        {"route": route.pk, "provider": fallback.pk, "weight": "5"},
    ]
    response = staff.post(f"{ROUTES}{route.pk}/change/", route_form(rows, initial=1))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Route.objects.get().pk == route.pk
    assert [(t.provider, t.weight) for t in route.targets.all()] == [(fallback, 5)]
    changed = AuditEvent.objects.get(action="route.set", actor=alice)
    assert [t["provider"] for t in changed.before["targets"]] == ["anthropic-main"]
    assert [t["provider"] for t in changed.after["targets"]] == ["bedrock-east"]


def test_it_deletes_routes_through_the_service(staff: Client, alice, acme, upstream) -> None:
    targets = [{"provider": upstream, "model": "", "weight": 1, "tier": 0}]
    one, two, three = (
        services.route_set(actor=None, model_pattern=p, targets=targets, organization=acme)
        for p in ("a-*", "b-*", "c-*")
    )
    response = staff.post(f"{ROUTES}{one.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    response = staff.post(
        ROUTES, {"action": "delete_selected", "_selected_action": [two.pk, three.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert not Route.objects.exists()
    assert AuditEvent.objects.filter(action="route.delete", actor=alice).count() == 3


@pytest.mark.parametrize(
    ("values", "rows", "message"),
    [
        ({}, [], "at least one target"),
        ({}, [{"weight": "0"}], "Weights are positive integers."),
        ({"team": "sales"}, [{}], "the team&#x27;s organization"),
        ({"organization": None, "team": "platform"}, [{}], "the team&#x27;s organization"),
        ({"organization": None, "key": "ci"}, [{}], "the key&#x27;s organization"),
        ({"team": "platform", "key": "ci"}, [{}], "a team or a key, not both"),
    ],
)
def test_it_refuses_an_invalid_route(
    staff: Client, acme, globex, upstream, values, rows, message
) -> None:
    pks = {
        "acme": acme.pk,
        None: "",
        "sales": services.team_create(actor=None, organization=globex, name="Sales").pk,
        "platform": services.team_create(actor=None, organization=acme, name="Platform").pk,
        "ci": services.key_create(actor=None, organization=acme, name="ci")[0].pk,
    }
    fields = {name: pks[v] for name, v in ({"organization": "acme"} | values).items()}
    rows = [{"provider": upstream.pk} | row for row in rows]
    response = staff.post(f"{ROUTES}add/", route_form(rows, **fields))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Route.objects.exists()
    assert not AuditEvent.objects.filter(action="route.set").exists()


def test_it_lists_routes(staff: Client, acme, upstream) -> None:
    targets = [{"provider": upstream, "model": "", "weight": 1, "tier": 0}]
    services.route_set(actor=None, model_pattern="claude-*", targets=targets, organization=acme)
    response = staff.get(ROUTES)
    assert response.status_code == 200
    assert "claude-*" in response.content.decode()
