"""The only way a view gets a governance object for a user, and decides what they may do with it.

A superuser is a platform admin and may do everything. Everyone else acts
through their Membership in an organization: admins manage it, developers
handle their own keys, viewers read. To someone outside an organization it
does not exist: lookups answer 404, never 403, so its name does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from governance.models import (
    ApiToken,
    Budget,
    Level,
    McpToolPolicy,
    Membership,
    Organization,
    Provider,
    RateLimit,
    Role,
    Route,
    Team,
    VirtualKey,
)

User = get_user_model()
Policy = TypeVar("Policy", Budget, RateLimit, McpToolPolicy)


@dataclass(frozen=True, slots=True)
class OrganizationAccess:
    organization: Organization
    user: Any
    # None for a platform admin who is not a member.
    role: str | None

    @property
    def is_platform_admin(self) -> bool:
        return bool(self.user.is_superuser)

    @property
    def can_manage(self) -> bool:
        return self.is_platform_admin or self.role == Role.ADMIN

    @property
    def sees_every_key(self) -> bool:
        return self.can_manage or self.role == Role.VIEWER

    @property
    def can_create_keys(self) -> bool:
        """Admins make keys for anyone, developers for themselves; viewers none."""
        return self.can_manage or self.role == Role.DEVELOPER

    def require_manage(self) -> None:
        if not self.can_manage:
            raise PermissionDenied("Only an admin of this organization may do that.")

    def can_change_key(self, key: VirtualKey) -> bool:
        if key.organization_id != self.organization.pk:
            return False
        if self.can_manage:
            return True
        return self.role == Role.DEVELOPER and key.user_id == self.user.pk


def actor_role(*, actor: Any, organization: Organization) -> str | None:
    """What ``actor`` may do in ``organization`` when a service acts for them.

    Services call this rather than trusting their caller: what binds a key's
    owner must bind them in the API, the console and the Django admin alike.
    A platform admin and the system itself (no user: migrations, commands,
    bootstrap) count as admins.
    """
    if getattr(actor, "pk", None) is None or actor.is_superuser:
        return Role.ADMIN
    return (
        Membership.objects.filter(user=actor, organization=organization)
        .values_list("role", flat=True)
        .first()
    )


def actor_manages(*, actor: Any, organization: Organization) -> bool:
    return actor_role(actor=actor, organization=organization) == Role.ADMIN


def key_change_require(*, actor: Any, key: VirtualKey) -> bool:
    """Refuse ``actor`` a change to ``key`` unless they manage its organization or
    own it as a developer; return whether they manage it."""
    role = actor_role(actor=actor, organization=key.organization)
    if role == Role.ADMIN:
        return True
    if role == Role.DEVELOPER and key.user_id == actor.pk:
        return False
    raise PermissionDenied("You may not change this key.")


def key_team_for_create(
    *, access: OrganizationAccess, owner: Any | None, slug: str | None, given: bool
) -> Team | None:
    """The team a new key goes to: the one named, or (when none is named) the
    owner's own team, so a team member's keys land in their team by default."""
    if slug:
        return team_in(access=access, slug=slug)
    if given or owner is None:
        return None
    return (
        Team.objects.filter(memberships__user=owner, memberships__organization=access.organization)
        .first()
    )


def user_for_change(*, user: Any, user_id: int) -> Any:
    """A user named in the URL: those who share no organization with ``user`` answer 404.

    Whether ``user`` may change them is the service's rule (user_set_active).
    """
    found = User.objects.filter(pk=user_id)
    if not user.is_superuser:
        org_ids = Membership.objects.filter(user=user).values("organization_id")
        found = found.filter(memberships__organization_id__in=org_ids)
    target = found.distinct().first()
    if target is None:
        raise Http404("No such user.")
    return target


def api_token_for_change(*, user: Any, token_id: int) -> ApiToken:
    """An API token ``user`` may revoke: their own (any, for a platform admin); others answer 404."""
    tokens = ApiToken.objects.select_related("user").filter(pk=token_id)
    if not user.is_superuser:
        tokens = tokens.filter(user=user)
    token = tokens.first()
    if token is None:
        raise Http404("No such token.")
    return token


def platform_admin_require(*, user: Any) -> None:
    if not user.is_superuser:
        raise PermissionDenied("Only a platform admin may do that.")


def organization_access(*, user: Any, slug: str, field: str | None = None) -> OrganizationAccess:
    """The organization named ``slug`` as ``user`` may see it.

    With ``field``, the slug came from a request body: an unknown or invisible
    organization is a validation error on that field rather than a 404.
    """
    role = (
        Membership.objects.filter(user=user, organization__slug=slug)
        .values_list("role", flat=True)
        .first()
    )
    org = None
    if role is not None or user.is_superuser:
        org = Organization.objects.filter(slug=slug).first()
    if org is None:
        if field is not None:
            raise ValidationError({field: f"No organization '{slug}'."})
        raise Http404("No such organization.")
    return OrganizationAccess(organization=org, user=user, role=role)


def team_in(*, access: OrganizationAccess, slug: str, field: str = "team") -> Team:
    team = Team.objects.filter(organization=access.organization, slug=slug).first()
    if team is None:
        raise ValidationError({field: f"No team '{slug}' in {access.organization.slug}."})
    return team


def member_in(*, access: OrganizationAccess, username: str, field: str = "user") -> Any:
    """A user of the organization; outsiders and unknown names get the same answer."""
    user = User.objects.filter(
        username=username, memberships__organization=access.organization
    ).first()
    if user is None:
        raise ValidationError({field: f"No member '{username}' in {access.organization.slug}."})
    return user


def key_owner_for_create(*, access: OrganizationAccess, username: str | None) -> Any | None:
    """Who a new key belongs to: admins choose any member (or no one); developers only themselves."""
    if access.can_manage:
        return member_in(access=access, username=username) if username else None
    if access.role == Role.DEVELOPER:
        if username and username != access.user.get_username():
            raise PermissionDenied("A developer may create keys only for themselves.")
        return access.user
    raise PermissionDenied("Viewers cannot create keys.")


def key_for_change(*, user: Any, key_id: int) -> VirtualKey:
    """A key ``user`` may disable or enable.

    A key the user cannot list (another developer's, another organization's)
    answers 404; one they can list but not change (as a viewer) answers 403.
    """
    key = (
        VirtualKey.objects.select_related("organization", "team", "user", "created_by")
        .filter(pk=key_id)
        .first()
    )
    if key is None:
        raise Http404("No such key.")
    role = None
    if not user.is_superuser:
        role = (
            Membership.objects.filter(user=user, organization_id=key.organization_id)
            .values_list("role", flat=True)
            .first()
        )
        if role is None:
            raise Http404("No such key.")
    access = OrganizationAccess(organization=key.organization, user=user, role=role)
    if access.can_change_key(key):
        return key
    if not access.sees_every_key:
        raise Http404("No such key.")
    raise PermissionDenied("You may not change this key.")


def team_of(*, access: OrganizationAccess, slug: str) -> Team:
    """A team named in the URL: unknown answers 404, as a missing page does."""
    team = (
        Team.objects.select_related("organization")
        .filter(organization=access.organization, slug=slug)
        .first()
    )
    if team is None:
        raise Http404("No such team.")
    return team


def key_in(*, access: OrganizationAccess, key_id: int, field: str = "key") -> VirtualKey:
    """A key of the organization named in a request body.

    A developer may only name their own keys; another's answers like a missing one.
    """
    keys = VirtualKey.objects.filter(organization=access.organization, pk=key_id)
    if not access.sees_every_key:
        keys = keys.filter(user=access.user)
    key = keys.first()
    if key is None:
        raise ValidationError({field: f"No key {key_id} in {access.organization.slug}."})
    return key


def provider_named(*, name: str, field: str = "provider") -> Provider:
    """Providers are platform-wide; anyone writing a policy may name one."""
    provider = Provider.objects.filter(name=name).first()
    if provider is None:
        raise ValidationError({field: f"No provider '{name}'."})
    return provider


def policy_visible(*, access: OrganizationAccess, policy: Budget | RateLimit | McpToolPolicy) -> bool:
    """Whether a budget or rate limit shows to ``access``: those who see every key see
    all; a developer sees the organization's and teams' and those of themselves and their keys."""
    if access.sees_every_key:
        return True
    if policy.level in (Level.ORGANIZATION, Level.TEAM):
        return True
    if policy.user_id is not None and policy.user_id == access.user.pk:
        return True
    return policy.key is not None and policy.key.user_id == access.user.pk


def _policy_for_change(*, model: type[Policy], user: Any, pk: int) -> Policy:
    policy = model.objects.select_related("organization", "key").filter(pk=pk).first()
    if policy is None:
        raise Http404("No such policy.")
    role = None
    if not user.is_superuser:
        role = (
            Membership.objects.filter(user=user, organization_id=policy.organization_id)
            .values_list("role", flat=True)
            .first()
        )
        if role is None:
            raise Http404("No such policy.")
    access = OrganizationAccess(organization=policy.organization, user=user, role=role)
    if access.can_manage:
        return policy
    if not policy_visible(access=access, policy=policy):
        raise Http404("No such policy.")
    raise PermissionDenied("Only an admin of this organization may change its policies.")


def budget_for_change(*, user: Any, budget_id: int) -> Budget:
    """A budget ``user`` may change: admins only; members who can see it get 403, others 404."""
    return _policy_for_change(model=Budget, user=user, pk=budget_id)


def rate_limit_for_change(*, user: Any, rate_limit_id: int) -> RateLimit:
    """A rate limit ``user`` may change, decided as for budgets."""
    return _policy_for_change(model=RateLimit, user=user, pk=rate_limit_id)


def mcp_policy_for_change(*, user: Any, policy_id: int) -> McpToolPolicy:
    """An MCP tool policy ``user`` may change, decided as for budgets."""
    return _policy_for_change(model=McpToolPolicy, user=user, pk=policy_id)


def policy_targets(
    *, access: OrganizationAccess, team: str | None, user: str | None, key: int | None
) -> dict[str, Any]:
    """The team, member and key a budget or rate limit names, each looked up in the organization.

    Which of them a level needs is the service's rule; this only resolves names.
    """
    return {
        "team": team_in(access=access, slug=team) if team else None,
        "user": member_in(access=access, username=user) if user else None,
        "key": key_in(access=access, key_id=key) if key is not None else None,
    }


def route_scope(*, access: OrganizationAccess, team: str | None, key: int | None) -> dict[str, Any]:
    """The organization, team and key a route of ``access``'s organization names.

    The data plane files a route under its key before its team, so one naming
    both would silently be a key route; asking for one of them keeps that plain.
    """
    if team and key is not None:
        raise ValidationError({"key": "A route names a team or a key, not both."})
    return {
        "organization": access.organization,
        "team": team_in(access=access, slug=team) if team else None,
        "key": key_in(access=access, key_id=key) if key is not None else None,
    }


def route_targets(*, targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Targets as route_set takes them: each provider name looked up (one query for all)."""
    names = {t["provider"] for t in targets}
    providers = {p.name: p for p in Provider.objects.filter(name__in=names)}
    missing = sorted(names - providers.keys())
    if missing:
        raise ValidationError({"targets": f"No provider '{missing[0]}'."})
    return [t | {"provider": providers[t["provider"]]} for t in targets]


def route_visible(*, access: OrganizationAccess, route: Route) -> bool:
    """Whether an organization's route shows to ``access``: as for policies, a developer
    sees the organization's and teams' routes and those of their own keys."""
    if access.sees_every_key or route.key is None:
        return True
    return route.key.user_id == access.user.pk


def route_for_change(*, user: Any, route_id: int) -> Route:
    """A route ``user`` may replace or delete.

    Gateway routes belong to platform admins and do not exist for anyone else;
    an organization's route is decided as for its budgets: admins change it,
    members who can see it get 403, others 404.
    """
    route = Route.objects.select_related("organization", "team", "key").filter(pk=route_id).first()
    if route is None:
        raise Http404("No such route.")
    if user.is_superuser:
        return route
    if route.organization is None:
        raise Http404("No such route.")
    role = (
        Membership.objects.filter(user=user, organization_id=route.organization_id)
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        raise Http404("No such route.")
    access = OrganizationAccess(organization=route.organization, user=user, role=role)
    if access.can_manage:
        return route
    if not route_visible(access=access, route=route):
        raise Http404("No such route.")
    raise PermissionDenied("Only an admin of this organization may change its routes.")
