"""Who may do what with a key, as a matrix of roles × actions through the REST API.

What an admin sets on a key (disable, allowlist, expiry, budgets and limits)
binds its owner; a key's team is its owner's team; a team member makes
team-less keys only where an admin allowed it.

The key under test belongs to charlie (developer, team payments). bob
(admin) created it limited to claude-sonnet-* and expiring in a week, then
disabled it. alice is a platform admin, frank another developer (team
platform), dave a viewer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from governance import services
from governance.models import KeyStatus, Role, VirtualKey
from tests.controlplane.conftest import PASSWORD

KEYS = "/api/v1/organizations/acme/keys/"
PERSONAS = ["alice", "bob", "charlie", "frank", "dave"]


@pytest.fixture
def ctx(acme, alice, bob, charlie, dave) -> dict[str, Any]:
    payments = services.team_create(actor=None, organization=acme, name="Payments")
    platform = services.team_create(actor=None, organization=acme, name="Platform")
    services.membership_set(actor=None, user=charlie, organization=acme, role=Role.DEVELOPER, team=payments)
    frank = services.user_create(
        actor=None, username="frank", password=PASSWORD, organization=acme, role=Role.DEVELOPER, team=platform
    )
    week = timezone.now() + timedelta(days=7)
    key, _ = services.key_create(
        actor=bob, organization=acme, name="charlie laptop", team=payments, user=charlie,
        allowed_models=["claude-sonnet-*"], expires_at=week,
    )
    services.key_disable(actor=bob, key=key)
    personas = {"alice": alice, "bob": bob, "charlie": charlie, "frank": frank, "dave": dave}
    return {"key": key, "week": week, "personas": personas}


def _when(days: float) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat()


def _create(body: dict[str, Any]) -> Callable[[APIClient, dict[str, Any]], Any]:
    return lambda api, ctx: api.post(KEYS, {"name": "new", **body}, format="json")


def _patch(body: dict[str, Any]) -> Callable[[APIClient, dict[str, Any]], Any]:
    return lambda api, ctx: api.patch(f"/api/v1/keys/{ctx['key'].pk}/", body, format="json")


def _post(verb: str) -> Callable[[APIClient, dict[str, Any]], Any]:
    return lambda api, ctx: api.post(f"/api/v1/keys/{ctx['key'].pk}/{verb}/")


def _key_budget(api: APIClient, ctx: dict[str, Any]) -> Any:
    body = {"level": "key", "key": ctx["key"].pk, "amount_usd": "1000", "period": "monthly"}
    return api.post("/api/v1/organizations/acme/budgets/", body, format="json")


# action: (request, expected status per persona). 404: the key is not theirs to see.
MATRIX: dict[str, tuple[Callable[[APIClient, dict[str, Any]], Any], dict[str, int]]] = {
    # The key goes to the creator's own team when none is named; admins create
    # for themselves here, and alice and bob have no team.
    "create, team omitted": (_create({}), dict(alice=201, bob=201, charlie=201, frank=201, dave=403)),
    "create in another's team": (
        _create({"team": "payments"}),
        dict(alice=201, bob=201, charlie=201, frank=400, dave=403),
    ),
    "create team-less": (_create({"team": None}), dict(alice=201, bob=201, charlie=400, frank=400, dave=403)),
    "enable an admin-disabled key": (_post("enable"), dict(alice=200, bob=200, charlie=403, frank=404, dave=403)),
    "disable": (_post("disable"), dict(alice=200, bob=200, charlie=200, frank=404, dave=403)),
    "rotate": (_post("rotate"), dict(alice=200, bob=200, charlie=200, frank=404, dave=403)),
    "widen the allowlist": (
        _patch({"allowed_models": ["claude-*"]}),
        dict(alice=200, bob=200, charlie=403, frank=404, dave=403),
    ),
    "drop the allowlist": (
        _patch({"allowed_models": []}),
        dict(alice=200, bob=200, charlie=403, frank=404, dave=403),
    ),
    "narrow the allowlist": (
        _patch({"allowed_models": ["claude-sonnet-4-5", "claude-sonnet-4-6*"]}),
        dict(alice=200, bob=200, charlie=200, frank=404, dave=403),
    ),
    "postpone the expiry": (
        _patch({"expires_at": _when(30)}),
        dict(alice=200, bob=200, charlie=403, frank=404, dave=403),
    ),
    "drop the expiry": (_patch({"expires_at": None}), dict(alice=200, bob=200, charlie=403, frank=404, dave=403)),
    "bring the expiry forward": (
        _patch({"expires_at": _when(1)}),
        dict(alice=200, bob=200, charlie=200, frank=404, dave=403),
    ),
    "set a key budget": (_key_budget, dict(alice=201, bob=201, charlie=403, frank=403, dave=403)),
    "allow team-less keys": (
        lambda api, ctx: api.patch("/api/v1/organizations/acme/", {"allow_teamless_keys": True}, format="json"),
        dict(alice=200, bob=200, charlie=403, frank=403, dave=403),
    ),
}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("action", list(MATRIX))
def test_it_decides_key_actions_by_role(client_for, ctx, action: str, persona: str) -> None:
    send, expected = MATRIX[action]
    api = client_for(ctx["personas"][persona])
    before = AuditEvent.objects.count()
    response = send(api, ctx)
    assert response.status_code == expected[persona], (action, persona, response.content)
    if response.status_code >= 400:
        # A refusal changes nothing and leaves no audit row.
        assert AuditEvent.objects.count() == before
        key = VirtualKey.objects.get(pk=ctx["key"].pk)
        assert (key.status, key.allowed_models, key.expires_at) == (
            KeyStatus.DISABLED, ["claude-sonnet-*"], ctx["week"]
        )


def test_it_keeps_an_admins_disable_when_the_owner_disables_again(client_for, ctx) -> None:
    charlie = client_for(ctx["personas"]["charlie"])
    assert charlie.post(f"/api/v1/keys/{ctx['key'].pk}/disable/").status_code == 200
    assert charlie.post(f"/api/v1/keys/{ctx['key'].pk}/enable/").status_code == 403


def test_it_lets_the_owner_enable_a_key_they_disabled_themselves(client_for, ctx) -> None:
    bob, charlie = client_for(ctx["personas"]["bob"]), client_for(ctx["personas"]["charlie"])
    key = ctx["key"].pk
    assert bob.post(f"/api/v1/keys/{key}/enable/").json()["disabled_by_admin"] is False
    assert charlie.post(f"/api/v1/keys/{key}/disable/").json()["disabled_by_admin"] is False
    assert charlie.post(f"/api/v1/keys/{key}/enable/").json()["status"] == "active"


def test_it_keeps_the_admins_ceiling_after_the_owner_narrows(client_for, ctx) -> None:
    charlie = client_for(ctx["personas"]["charlie"])
    url = f"/api/v1/keys/{ctx['key'].pk}/"
    assert charlie.patch(url, {"allowed_models": ["claude-sonnet-4-5"]}, format="json").status_code == 200
    # Back up to the admin's list is allowed; past it is not.
    assert charlie.patch(url, {"allowed_models": ["claude-sonnet-*"]}, format="json").status_code == 200
    assert charlie.patch(url, {"allowed_models": ["claude-opus-4-5"]}, format="json").status_code == 403
    body = charlie.patch(url, {"allowed_models": ["claude-sonnet-4-6"]}, format="json").json()
    assert (body["allowed_models"], body["admin_allowed_models"]) == (["claude-sonnet-4-6"], ["claude-sonnet-*"])


def test_it_refuses_a_wildcard_that_escapes_the_ceiling(client_for, ctx) -> None:
    # "claude-sonnet-[a-z]*" starts with the ceiling's stem, so it stays inside;
    # "claude-sonnet?*" matches "claude-sonnetX…", which the ceiling does not.
    charlie = client_for(ctx["personas"]["charlie"])
    url = f"/api/v1/keys/{ctx['key'].pk}/"
    assert charlie.patch(url, {"allowed_models": ["claude-sonnet-[a-z]*"]}, format="json").status_code == 200
    assert charlie.patch(url, {"allowed_models": ["claude-sonnet?*"]}, format="json").status_code == 403
    assert charlie.patch(url, {"allowed_models": ["claude-[s]onnet-*"]}, format="json").status_code == 403


def test_it_lets_a_team_member_make_team_less_keys_once_an_admin_allows_it(client_for, ctx) -> None:
    charlie = client_for(ctx["personas"]["charlie"])
    assert charlie.post(KEYS, {"name": "x", "team": None}, format="json").status_code == 400
    bob = client_for(ctx["personas"]["bob"])
    assert bob.patch("/api/v1/organizations/acme/", {"allow_teamless_keys": True}, format="json").status_code == 200
    assert AuditEvent.objects.filter(action="organization.update").count() == 1
    response = charlie.post(KEYS, {"name": "x", "team": None}, format="json")
    assert response.status_code == 201 and response.json()["team"] is None
    # Another team stays refused: allowing team-less keys is not allowing any team.
    assert charlie.post(KEYS, {"name": "y", "team": "platform"}, format="json").status_code == 400


def test_it_binds_the_owner_in_the_service_too(ctx) -> None:
    """The console and the Django admin call services directly: the rules hold there as well."""
    from django.core.exceptions import PermissionDenied

    charlie = ctx["personas"]["charlie"]
    with pytest.raises(PermissionDenied):
        services.key_enable(actor=charlie, key=ctx["key"])
    with pytest.raises(PermissionDenied):
        services.allowed_models_set(actor=charlie, target=ctx["key"], patterns=["*"])
    with pytest.raises(PermissionDenied):
        services.key_create(actor=charlie, organization=ctx["key"].organization, name="x", user=ctx["personas"]["frank"])
