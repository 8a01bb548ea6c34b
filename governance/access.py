"""The only way a view gets a governance object for a user, and decides what they may do with it.

A superuser is a platform admin and may do everything. Everyone else acts
through their Membership in an organization: admins manage it, developers
handle their own keys, viewers read. To someone outside an organization it
does not exist: lookups answer 404, never 403, so its name does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from governance.models import Membership, Organization, Role, Team, VirtualKey

User = get_user_model()


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

    def require_manage(self) -> None:
        if not self.can_manage:
            raise PermissionDenied("Only an admin of this organization may do that.")

    def can_change_key(self, key: VirtualKey) -> bool:
        if key.organization_id != self.organization.pk:
            return False
        if self.can_manage:
            return True
        return self.role == Role.DEVELOPER and key.user_id == self.user.pk


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
