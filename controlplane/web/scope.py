"""Which organization a console page shows, decided by the same access function the API uses.

Pages take ``?org=<slug>``; without it, the first organization the person
sees. An organization they cannot see answers 404, as it does in the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from governance import access, selectors
from governance.access import OrganizationAccess
from governance.models import Organization


@dataclass(frozen=True, slots=True)
class PageScope:
    access: OrganizationAccess | None
    organizations: list[Organization]

    @property
    def organization(self) -> Organization | None:
        return self.access.organization if self.access else None

    def context(self) -> dict[str, Any]:
        return {"scope": self, "org": self.organization, "org_access": self.access}


def page_scope(request: HttpRequest) -> PageScope:
    organizations = list(selectors.organization_list(user=request.user))
    slug = request.GET.get("org") or request.POST.get("org")
    if not slug and organizations:
        slug = organizations[0].slug
    found = access.organization_access(user=request.user, slug=slug) if slug else None
    return PageScope(access=found, organizations=organizations)
