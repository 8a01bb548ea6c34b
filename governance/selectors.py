"""Reads of governance state, shaped so a page of results costs a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery

from governance.models import (
    ApiToken,
    Budget,
    BudgetSpend,
    Level,
    McpBundle,
    McpServer,
    McpToolPolicy,
    Membership,
    ModelPrice,
    Organization,
    Provider,
    RateLimit,
    Route,
    RouteTarget,
    Team,
    VirtualKey,
)

User = get_user_model()


def organization_list(*, user: Any) -> QuerySet[Organization]:
    """Organizations the user belongs to (all of them for a platform admin), with their role as ``role``."""
    role = Membership.objects.filter(organization=OuterRef("pk"), user=user).values("role")[:1]
    orgs = Organization.objects.annotate(role=Subquery(role))
    if not user.is_superuser:
        orgs = orgs.filter(memberships__user=user)
    return orgs.order_by("name", "id")


def team_list(*, organization: Organization) -> QuerySet[Team]:
    return (
        Team.objects.filter(organization=organization)
        .select_related("organization")
        .order_by("name", "id")
    )


def user_list(*, user: Any) -> QuerySet[Any]:
    """Users sharing an organization with ``user`` (everyone for a platform admin).

    Each carries ``visible_memberships``: only their memberships in
    organizations the requester can see, so one org's roster does not reveal
    another's.
    """
    memberships = Membership.objects.select_related("organization", "team").order_by(
        "organization__slug"
    )
    users = User.objects.all()
    if not user.is_superuser:
        org_ids = Membership.objects.filter(user=user).values("organization_id")
        users = users.filter(memberships__organization_id__in=org_ids).distinct()
        memberships = memberships.filter(organization_id__in=org_ids)
    return users.prefetch_related(
        Prefetch("memberships", queryset=memberships, to_attr="visible_memberships")
    ).order_by("username")


def key_list(*, organization: Organization, owner: Any | None = None) -> QuerySet[VirtualKey]:
    """Keys of ``organization``; only ``owner``'s when given."""
    keys = VirtualKey.objects.filter(organization=organization).select_related(
        "organization", "team", "user", "created_by"
    )
    if owner is not None:
        keys = keys.filter(user=owner)
    return keys.order_by("-created_at", "-id")


def provider_list() -> QuerySet[Provider]:
    return Provider.objects.order_by("name")


def price_list() -> QuerySet[ModelPrice]:
    return ModelPrice.objects.order_by("model", "provider_id")


def _concerning(owner: Any) -> Q:
    # What a developer sees of the organization's policies: its own and its keys', plus the shared ones.
    return Q(level__in=[Level.ORGANIZATION, Level.TEAM]) | Q(user=owner) | Q(key__user=owner)


def budget_list(*, organization: Organization, owner: Any | None = None) -> QuerySet[Budget]:
    """Budgets of ``organization`` (only those concerning ``owner`` when given).

    Each carries its latest persisted spend as ``spent_usd_latest`` and
    ``spent_period_start``; whether that is the current period is for the caller
    to decide, since rolling periods start at each budget's own anchor.
    """
    latest = BudgetSpend.objects.filter(budget=OuterRef("pk")).order_by("-period_start")
    budgets = (
        Budget.objects.filter(organization=organization)
        .select_related("organization", "team", "user", "key")
        .annotate(
            spent_usd_latest=Subquery(latest.values("spent_usd")[:1]),
            spent_period_start=Subquery(latest.values("period_start")[:1]),
        )
    )
    if owner is not None:
        budgets = budgets.filter(_concerning(owner))
    return budgets.order_by("id")


def rate_limit_list(*, organization: Organization, owner: Any | None = None) -> QuerySet[RateLimit]:
    """Rate limits of ``organization`` (only those concerning ``owner`` when given)."""
    limits = RateLimit.objects.filter(organization=organization).select_related(
        "organization", "team", "user", "key", "provider"
    )
    if owner is not None:
        limits = limits.filter(_concerning(owner))
    return limits.order_by("id")


def route_list(*, organization: Organization | None, owner: Any | None = None) -> QuerySet[Route]:
    """Routes of ``organization``, its teams and its keys; the gateway-wide ones when it is None.

    With ``owner``, key routes only of their keys. Targets come in one more
    query, with their providers, in the order the data plane tries them.
    """
    if organization is None:
        routes = Route.objects.filter(organization=None, team=None, key=None)
    else:
        routes = Route.objects.filter(organization=organization)
    if owner is not None:
        routes = routes.filter(Q(key=None) | Q(key__user=owner))
    targets = RouteTarget.objects.select_related("provider").order_by("tier", "id")
    return (
        routes.select_related("organization", "team", "key")
        .prefetch_related(Prefetch("targets", queryset=targets))
        .order_by("id")
    )


def mcp_server_list() -> QuerySet[McpServer]:
    return McpServer.objects.order_by("name")


def mcp_bundle_list() -> QuerySet[McpBundle]:
    return McpBundle.objects.order_by("name")


def mcp_policy_list(*, organization: Organization, owner: Any | None = None) -> QuerySet[McpToolPolicy]:
    """The organization's MCP tool policies; with ``owner``, only those a developer may see."""
    policies = McpToolPolicy.objects.filter(organization=organization).select_related("organization", "team", "user", "key")
    if owner is not None:
        policies = policies.filter(_concerning(owner))
    return policies.order_by("id")


def api_token_list(*, user: Any) -> QuerySet[ApiToken]:
    """``user``'s API tokens, newest first (never their secrets: those are not kept)."""
    return ApiToken.objects.filter(user=user).select_related("user").order_by("-created_at", "-id")


def api_token_for_secret(*, secret: str) -> ApiToken | None:
    """The token whose digest ``secret`` has, with its user; usable or not."""
    from governance.keys import key_digest

    return ApiToken.objects.select_related("user").filter(digest=key_digest(secret)).first()
