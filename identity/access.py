"""How a view gets an identity provider or a group mapping for a user: as for the rest of
governance (governance/access.py), outsiders get 404 and members who may not change it 403."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from governance.access import OrganizationAccess
from governance.models import Membership
from identity.models import GroupMapping, IdentityProvider


def identity_provider_for_change(*, user: Any, idp_id: int) -> IdentityProvider:
    idp = IdentityProvider.objects.select_related("organization").filter(pk=idp_id).first()
    if idp is None:
        raise Http404("No such identity provider.")
    role = None
    if not user.is_superuser:
        role = (
            Membership.objects.filter(user=user, organization_id=idp.organization_id)
            .values_list("role", flat=True)
            .first()
        )
        if role is None:
            raise Http404("No such identity provider.")
    if not OrganizationAccess(organization=idp.organization, user=user, role=role).can_manage:
        raise PermissionDenied(
            "Only an admin of this organization may see or change its single sign-on."
        )
    return idp


def group_mapping_for_change(*, user: Any, idp_id: int, mapping_id: int) -> GroupMapping:
    idp = identity_provider_for_change(user=user, idp_id=idp_id)
    mapping = (
        GroupMapping.objects.select_related("team", "identity_provider__organization")
        .filter(pk=mapping_id, identity_provider=idp)
        .first()
    )
    if mapping is None:
        raise Http404("No such group mapping.")
    return mapping
