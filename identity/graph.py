"""Entra ID's group overage: past 200 groups the ID token carries a pointer instead of
the list, and the groups must be asked of Microsoft Graph with the sign-in's access token
(https://learn.microsoft.com/graph/api/directoryobject-getmemberobjects)."""

from __future__ import annotations

import requests
from django.conf import settings

from identity.claims import SignInRefused
from identity.models import IdentityProvider


def graph_groups(*, idp: IdentityProvider, access_token: str) -> tuple[str, ...]:
    if not idp.groups_from_graph:
        raise SignInRefused(
            "group_overage",
            f"{idp.name} says you are in too many groups to list in the sign-in, and group lookup "
            "through Microsoft Graph is off for it; ask your admin to turn it on.",
        )
    url = settings.SSO_GRAPH_URL.rstrip("/") + "/v1.0/me/getMemberObjects"
    try:
        response = requests.post(
            url,
            json={"securityEnabledOnly": False},
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=settings.SSO_HTTP_TIMEOUT_SECONDS,
        )
        response.raise_for_status()
        values = response.json().get("value")
    except (requests.RequestException, ValueError) as exc:
        raise SignInRefused(
            "group_overage",
            f"{idp.name} says you are in too many groups to list in the sign-in, and Microsoft Graph "
            "did not give them (the app needs GroupMember.Read.All); ask your admin.",
            error=str(exc)[:300],
        ) from exc
    if not isinstance(values, list):
        raise SignInRefused("group_overage", "Microsoft Graph answered without a list of groups.")
    return tuple(sorted({str(v) for v in values}))
