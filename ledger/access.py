"""Whose spend a user may read: the report counterpart of governance.access.

Platform admins see every organization; admins and viewers see their
organizations whole; developers see only their own requests.
"""

from __future__ import annotations

from typing import Any

from governance.access import organization_access
from governance.models import Membership, Role
from ledger.selectors import ReportScope

_SEE_WHOLE_ORGANIZATION = (Role.ADMIN, Role.VIEWER)


def report_scope(*, user: Any, organization: str | None) -> ReportScope:
    """The scope of ``user``'s reports, narrowed to the organization slug when given.

    An organization the user cannot see is a validation error on
    ``organization``, worded as for one that does not exist.
    """
    if organization:
        org = organization_access(user=user, slug=organization, field="organization")
        org_ids = frozenset({org.organization.pk})
        if org.is_platform_admin or org.role in _SEE_WHOLE_ORGANIZATION:
            return ReportScope(organization_ids=org_ids)
        return ReportScope(
            organization_ids=frozenset(), own_organization_ids=org_ids, user_id=user.pk
        )
    if user.is_superuser:
        return ReportScope(organization_ids=None)
    whole, own = set(), set()
    for org_id, role in Membership.objects.filter(user=user).values_list("organization_id", "role"):
        (whole if role in _SEE_WHOLE_ORGANIZATION else own).add(org_id)
    return ReportScope(
        organization_ids=frozenset(whole), own_organization_ids=frozenset(own), user_id=user.pk
    )


def own_report_scope(*, user: Any) -> ReportScope:
    """Only ``user``'s own requests, in every organization they belong to, whatever their role."""
    org_ids = frozenset(
        Membership.objects.filter(user=user).values_list("organization_id", flat=True)
    )
    return ReportScope(organization_ids=frozenset(), own_organization_ids=org_ids, user_id=user.pk)
