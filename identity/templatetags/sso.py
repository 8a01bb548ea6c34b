"""The sign-in page's "Sign in with <provider>" buttons: every enabled identity provider."""

from __future__ import annotations

from django import template
from django.db.models import QuerySet

from identity.models import IdentityProvider

register = template.Library()


@register.simple_tag
def sso_providers() -> QuerySet[IdentityProvider]:
    return (
        IdentityProvider.objects.filter(enabled=True)
        .select_related("organization")
        .order_by("name", "id")
    )
